// How a service credential is presented upstream, with the key-name default and the label of the
// credential field for each method (the table in the CLI credential-entry issue). Shared by the
// browser form; the CLI keeps the same table in src/cli/service-auth.ts.
export interface AuthMethod {
  keyName: string | null;
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
  token_exchange: { keyName: null, label: 'Token' },
};

/** Methods offered for a custom endpoint (token_exchange is catalog-defined only). */
export const CUSTOM_METHODS = ['bearer', 'header', 'query', 'basic', 'body', 'none'];
