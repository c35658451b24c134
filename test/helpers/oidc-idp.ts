// A real OpenID Provider for tests: the certified `oidc-provider` package on 127.0.0.1, port 0,
// with its development login/consent pages (any password; the login name picks the account).
import { createServer, type Server } from 'node:http';
import Provider from 'oidc-provider';

export interface Idp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
}

export interface IdpAccount {
  email?: string;
  email_verified?: boolean;
  preferred_username?: string;
  name?: string;
}

export async function startIdp(redirectUri: string, accounts: Record<string, IdpAccount>): Promise<Idp> {
  const server: Server = createServer();
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const clientId = 'nexus-console';
  const clientSecret = 'idp-client-secret-for-tests-0123456789';
  const provider = new Provider(issuer, {
    clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: [redirectUri], grant_types: ['authorization_code'], response_types: ['code'] }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, sub) {
      const a = accounts[sub] ?? {};
      return { accountId: sub, claims: async () => ({ sub, ...a }) };
    },
  });
  server.on('request', provider.callback());
  return {
    issuer,
    clientId,
    clientSecret,
    close: () => new Promise<void>((res) => {
      server.closeAllConnections();
      server.close(() => res());
    }),
  };
}
