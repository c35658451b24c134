// Built-in catalog: common services with their base URL and how they take a credential, so adding one
// is a slug and a secret. Endpoint URLs that point at localhost are defaults for services usually
// self-hosted behind a node.
import type { AuthMethod } from '../../protocol/credentials.ts';

export interface CatalogEntry {
  slug: string;
  label: string;
  endpoint_url: string;
  auth_method: AuthMethod;
  auth_key_name: string | null;
  docs_url: string;
}

export const CATALOG: readonly CatalogEntry[] = Object.freeze([
  { slug: 'openai', label: 'OpenAI', endpoint_url: 'https://api.openai.com', auth_method: 'bearer', auth_key_name: 'authorization', docs_url: 'https://platform.openai.com/docs/api-reference' },
  { slug: 'anthropic', label: 'Anthropic', endpoint_url: 'https://api.anthropic.com', auth_method: 'header', auth_key_name: 'x-api-key', docs_url: 'https://docs.anthropic.com/en/api' },
  { slug: 'gemini', label: 'Google Gemini', endpoint_url: 'https://generativelanguage.googleapis.com', auth_method: 'header', auth_key_name: 'x-goog-api-key', docs_url: 'https://ai.google.dev/api' },
  { slug: 'mistral', label: 'Mistral AI', endpoint_url: 'https://api.mistral.ai', auth_method: 'bearer', auth_key_name: 'authorization', docs_url: 'https://docs.mistral.ai/api/' },
  { slug: 'openrouter', label: 'OpenRouter', endpoint_url: 'https://openrouter.ai/api', auth_method: 'bearer', auth_key_name: 'authorization', docs_url: 'https://openrouter.ai/docs' },
  { slug: 'github', label: 'GitHub', endpoint_url: 'https://api.github.com', auth_method: 'bearer', auth_key_name: 'authorization', docs_url: 'https://docs.github.com/rest' },
  { slug: 'gitlab', label: 'GitLab', endpoint_url: 'https://gitlab.com/api/v4', auth_method: 'header', auth_key_name: 'private-token', docs_url: 'https://docs.gitlab.com/ee/api/rest/' },
  { slug: 'slack', label: 'Slack', endpoint_url: 'https://slack.com/api', auth_method: 'bearer', auth_key_name: 'authorization', docs_url: 'https://api.slack.com/web' },
  { slug: 'discord', label: 'Discord', endpoint_url: 'https://discord.com/api/v10', auth_method: 'bot_bearer', auth_key_name: 'authorization', docs_url: 'https://discord.com/developers/docs/reference' },
  { slug: 'telegram', label: 'Telegram Bot API', endpoint_url: 'https://api.telegram.org', auth_method: 'path', auth_key_name: 'bot', docs_url: 'https://core.telegram.org/bots/api' },
  { slug: 'notion', label: 'Notion', endpoint_url: 'https://api.notion.com', auth_method: 'bearer', auth_key_name: 'authorization', docs_url: 'https://developers.notion.com/reference' },
  { slug: 'linear', label: 'Linear', endpoint_url: 'https://api.linear.app', auth_method: 'header', auth_key_name: 'authorization', docs_url: 'https://developers.linear.app/docs' },
  { slug: 'jira', label: 'Jira Cloud', endpoint_url: 'https://your-domain.atlassian.net', auth_method: 'basic', auth_key_name: 'authorization', docs_url: 'https://developer.atlassian.com/cloud/jira/platform/rest/v3/' },
  { slug: 'stripe', label: 'Stripe', endpoint_url: 'https://api.stripe.com', auth_method: 'bearer', auth_key_name: 'authorization', docs_url: 'https://docs.stripe.com/api' },
  { slug: 'grafana', label: 'Grafana', endpoint_url: 'http://localhost:3000', auth_method: 'bearer', auth_key_name: 'authorization', docs_url: 'https://grafana.com/docs/grafana/latest/developers/http_api/' },
  { slug: 'ollama', label: 'Ollama', endpoint_url: 'http://localhost:11434', auth_method: 'none', auth_key_name: null, docs_url: 'https://github.com/ollama/ollama/blob/main/docs/api.md' },
  { slug: 'vllm', label: 'vLLM (OpenAI-compatible)', endpoint_url: 'http://localhost:8000', auth_method: 'bearer', auth_key_name: 'authorization', docs_url: 'https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html' },
  { slug: 'home-assistant', label: 'Home Assistant', endpoint_url: 'http://localhost:8123', auth_method: 'bearer', auth_key_name: 'authorization', docs_url: 'https://developers.home-assistant.io/docs/api/rest/' },
].map((e) => Object.freeze(e as CatalogEntry)));

export function catalogEntry(slug: string): CatalogEntry | undefined {
  return CATALOG.find((e) => e.slug === slug);
}
