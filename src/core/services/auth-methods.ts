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

/**
 * The agent's --secret-format for each auth method (protocol/credentials.ts SECRET_FORMATS); null for
 * `none`, which needs nothing stored. The line always names the format: an agent that does not know
 * it refuses the command instead of storing the secret as a bearer token.
 */
export const AGENT_FORMAT: Record<string, string | null> = {
  bearer: 'bearer',
  bot_bearer: 'bot',
  header: 'raw',
  query: 'query',
  path: 'path',
  basic: 'basic',
  body: 'body',
  none: null,
};

/**
 * The `nexus agent credentials add` line for a service routed through a node; null when its auth
 * method stores no credential. The agent injects a credential only into requests under the URL it
 * was stored with, so it names the service's endpoint; `--header` carries the header, query
 * parameter, path prefix or JSON field.
 */
export function agentCredentialLine(slug: string, endpoint: string, authMethod: string, keyName?: string | null): string | null {
  // A method this table does not know is named as it is: an agent that does not know it refuses it.
  const format = Object.hasOwn(AGENT_FORMAT, authMethod) ? AGENT_FORMAT[authMethod] : authMethod;
  if (format === null) return null;
  return `nexus agent credentials add --service ${slug} --url ${endpoint}${keyName ? ` --header ${keyName}` : ''} --secret-format ${format}`;
}
