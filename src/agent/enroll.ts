// `nexus agent enroll`: trade a single-use registration token for the node's long-lived credentials.
import type { AgentHome } from './home.ts';
import { AgentError } from './home.ts';
import { loadIdentity, saveIdentity, type NodeIdentity } from './state.ts';
import { hubFetch } from './hub-egress.ts';
import { untrustedHint } from './tls.ts';

/** ws(s)://host[/prefix]/ws → http(s)://host[/prefix] */
export function httpBase(hubUrl: string): string {
  let u: URL;
  try {
    u = new URL(hubUrl);
  } catch {
    throw new AgentError(`--url "${hubUrl}" is not a URL (expected ws://HOST/ws or wss://HOST/ws)`, 2);
  }
  const base = u.pathname.replace(/\/ws\/?$/, '').replace(/\/$/, '');
  if (u.protocol === 'http:' || u.protocol === 'https:') {
    // The appliance's own address, pasted as is: say what the hub's address is instead.
    throw new AgentError(`--url is the hub's WebSocket address: ${u.protocol === 'https:' ? 'wss' : 'ws'}://${u.host}${base}/ws, not ${u.protocol}//…`, 2);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new AgentError(`--url must start with ws:// or wss://, got ${u.protocol}//`, 2);
  return `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}${base}`;
}

/** ws(s)://host[/prefix][/ws] → ws(s)://host[/prefix]/ws: what the agent dials, whichever was given. */
export function hubSocketUrl(hubUrl: string): string {
  return `${httpBase(hubUrl).replace(/^http/, 'ws')}/ws`;
}

/** ws(s)://host[/prefix]/ws → http(s)://host[/prefix]/api/internal/things/enroll */
export function enrollUrl(hubUrl: string): URL {
  return new URL(`${httpBase(hubUrl)}/api/internal/things/enroll`);
}

export async function enroll(home: AgentHome, hubUrl: string, token: string, opts: { force?: boolean; ca?: string } = {}): Promise<NodeIdentity> {
  const existing = loadIdentity(home);
  if (existing && !opts.force) {
    throw new AgentError(`this ${home.profile ? `profile "${home.profile}"` : 'agent home'} is already enrolled as node ${existing.nodeId}; --force replaces it (to enroll this node again with a new token), --profile NAME keeps it and enrolls another`);
  }
  if (!token.startsWith('nx_nreg_')) throw new AgentError('--token must be a registration token (nx_nreg_…)', 2);
  const url = enrollUrl(hubUrl);
  let res: Response;
  try {
    res = await hubFetch(opts.ca)(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ registration_token: token }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    if (err instanceof AgentError) throw err; // a malformed HTTPS_PROXY, said as it is
    const why = untrustedHint(err) ?? ((err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message);
    throw new AgentError(`cannot reach ${url.origin}: ${why}`);
  }
  const body = (await res.json().catch(() => null)) as { node_id?: string; auth_token?: string; signing_secret?: string; error?: { code?: unknown; message?: string } } | null;
  if (!res.ok || !body?.node_id || !body.auth_token || !body.signing_secret) {
    const e = body?.error;
    // No enrollment route there. The path before /ws is the appliance's base path, so a path from
    // another product's guide (wss://HOST/api/v1/nodes/ws) lands here: name the address to use.
    const atRoot = hubSocketUrl(`${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}`);
    const hint = res.status !== 404 ? ''
      : atRoot !== hubSocketUrl(hubUrl) ? `; use --url ${atRoot} (the hub's WebSocket is /ws on the appliance's address)`
        : `; is ${url.host} a Nexus appliance?`;
    throw new AgentError(`enrollment refused (${res.status}${e?.code ? `, code ${String(e.code)}` : ''}): ${e?.message ?? 'unexpected answer'}${hint}`);
  }
  // Stored as the socket's address: `--url wss://host` enrolls (the enroll URL is derived from the
  // host) and must not leave the agent dialling `/` forever.
  const id: NodeIdentity = { hubUrl: hubSocketUrl(hubUrl), nodeId: body.node_id, authToken: body.auth_token, signingSecret: body.signing_secret, enrolledAt: new Date().toISOString(), ...(opts.ca ? { ca: opts.ca } : {}) };
  saveIdentity(home, id);
  return id;
}

/** The rotate answer (POST /api/v1/nodes/{id}/rotate), as `nexus agent rotate` reads it. */
export interface RotatedPair {
  node_id?: unknown;
  auth_token?: unknown;
  signing_secret?: unknown;
}

/**
 * Installs credentials the appliance minted by rotation (POST /api/v1/nodes/{id}/rotate) in place of
 * the enrolled ones: same node, same hub, same CA. They must be for this node (a pair meant for
 * another node would lock this one out). Nothing is checked with the hub: after a rotation the old
 * pair is refused already, so there is nothing to lose.
 */
export function installRotated(home: AgentHome, pair: RotatedPair): NodeIdentity {
  const existing = loadIdentity(home);
  if (!existing) throw new AgentError(`not enrolled yet (${home.dir}); a rotated pair replaces an enrolled node's credentials: run nexus agent enroll first`);
  const { node_id: nodeId, auth_token: authToken, signing_secret: secret } = pair;
  if (typeof authToken !== 'string' || !/^nx_nauth_[A-Za-z0-9_-]{16,100}$/.test(authToken)) throw new AgentError('the auth token must be a node auth token (nx_nauth_…)', 2);
  if (typeof secret !== 'string' || !/^[A-Za-z0-9_-]{16,200}$/.test(secret)) throw new AgentError('the signing secret is missing or malformed', 2);
  if (nodeId !== undefined && nodeId !== existing.nodeId) {
    throw new AgentError(`these credentials are for node ${typeof nodeId === 'string' ? nodeId.slice(0, 64) : '(not a string)'}, but this ${home.profile ? `profile "${home.profile}"` : 'agent home'} is node ${existing.nodeId}`);
  }
  const id: NodeIdentity = { ...existing, authToken, signingSecret: secret };
  saveIdentity(home, id);
  return id;
}
