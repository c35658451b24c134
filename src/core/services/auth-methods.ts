// How a service credential is presented upstream: the default key name and the label of the
// credential field for each method (the table of the CLI credential-entry issue). One table for
// the CLI (`nexus service add|update`) and the console's /cli/add-credential and /services pages.
export interface AuthMethod {
  /** Default auth_key_name; null where the method has none. */
  keyName: string | null;
  /** Label of the credential input; null when no credential is asked (none). */
  label: string | null;
}

export const AUTH_METHODS: Record<string, AuthMethod> = {
  bearer: { keyName: 'Authorization', label: 'Bearer Token' },
  bot_bearer: { keyName: 'Authorization', label: 'Bot Token' },
  header: { keyName: 'X-API-Key', label: 'API Key' },
  query: { keyName: 'key', label: 'API Key' },
  path: { keyName: 'bot', label: 'Path Token' },
  basic: { keyName: null, label: 'Username:Password' },
  body: { keyName: 'app_secret', label: 'App Secret' },
  none: { keyName: null, label: null },
};

/** Methods offered for a custom endpoint. */
export const CUSTOM_METHODS = ['bearer', 'header', 'query', 'basic', 'body', 'none'];

/** The agent's --secret-format for each auth method it can inject (protocol/credentials.ts). */
const AGENT_FORMAT: Record<string, string> = { bearer: 'bearer', header: 'raw', query: 'query', basic: 'basic' };

/**
 * The `nexus agent credentials add` line for a service routed through a node. The agent injects a
 * credential only into requests under the URL it was stored with, so it names the service's endpoint.
 */
export function agentCredentialLine(slug: string, endpoint: string, authMethod: string, keyName?: string | null): string {
  const format = Object.hasOwn(AGENT_FORMAT, authMethod) ? AGENT_FORMAT[authMethod] : undefined;
  const flags = format ? `${keyName ? ` --header ${keyName}` : ''} --secret-format ${format}` : '';
  return `nexus agent credentials add --service ${slug} --url ${endpoint}${flags}`;
}
