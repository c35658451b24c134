// How a service credential is presented upstream: the default key name and the label of the
// credential field for each method (the table of the CLI credential-entry issue). One table for
// the CLI (`nexus service add`) and the console's /cli/add-credential page.
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
