// Services the proxy serves (`/api/v1/keys`): direct (the appliance holds the credential, sealed with
// the master key, and injects it) or through nodes (the credential stays on the agent's host; the
// appliance keeps only the slug → nodes binding). A service is one or the other, never both:
// `update` switches the mode and the proxy sees the change on its very next request (it reads the
// binding per request; the WRR state follows the binding, see routing.ts). The mode is kept with the
// service, not read off its binding: a node-routed service whose nodes are all deleted stays
// node-routed with none (the proxy answers 503, 8002) and becomes direct only when told to.
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../core/context.ts';
import { AppError } from '../../core/errors/errors.ts';
import type { Principal } from '../../core/identity/identity.ts';
import { literalAddressClass } from '../../core/services/endpoint-addresses.ts';
import { AUTH_METHODS, type AuthMethod } from '../../protocol/credentials.ts';
import { catalogEntry } from './catalog.ts';
import type { NodesService } from './nodes-service.ts';
import { createServicesStore, type ServiceNode, type ServiceRow } from './services-store.ts';

export interface CreateServiceInput {
  catalog?: string;
  slug?: string;
  label?: string;
  endpoint_url?: string;
  auth_method?: AuthMethod;
  auth_key_name?: string;
  credential?: string;
  nodes?: Array<{ node_id: string; priority?: number; weight?: number }>;
}

/** PATCH /api/v1/keys/{id}: absent fields stay; `nodes` replaces the whole binding; null clears. */
export interface UpdateServiceInput {
  label?: string | null;
  endpoint_url?: string;
  auth_method?: AuthMethod;
  auth_key_name?: string | null;
  credential?: string | null;
  nodes?: Array<{ node_id: string; priority?: number; weight?: number }>;
}

/** What an update did, for the audit entry (never the secret itself), and what the caller should know. */
export interface UpdateOutcome {
  service: ServiceView;
  fields: string[];
  credential: 'kept' | 'replaced' | 'dropped' | 'none';
  warnings: string[];
}

export interface ServiceView {
  id: string;
  slug: string;
  label: string | null;
  endpoint_url: string;
  auth_method: AuthMethod;
  auth_key_name: string | null;
  routed_via: 'direct' | 'node';
  has_credential: boolean;
  nodes: ServiceNode[];
  proxy_url: string;
  created_at: string;
}

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

export const serviceAad = (id: string) => `service:${id}`;

/** The endpoint as stored: http(s), no userinfo, query or fragment, no trailing slash. */
function parseEndpoint(endpoint: string): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new AppError('validation_failed', 'endpoint_url is not a URL', { details: { param: 'endpoint_url' } });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AppError('validation_failed', 'endpoint_url must be http or https', { details: { param: 'endpoint_url' } });
  if (url.username || url.password) throw new AppError('validation_failed', 'endpoint_url must not carry credentials; use credential', { details: { param: 'endpoint_url' } });
  if (url.search || url.hash) throw new AppError('validation_failed', 'endpoint_url must not have a query or fragment', { details: { param: 'endpoint_url' } });
  return url;
}

const stored = (url: URL) => url.toString().replace(/\/$/, '');

/**
 * What the proxy will make of a direct service's endpoint, said when it is written rather than at
 * its first request: a cloud metadata address is never proxied (refused, as it can never work); a
 * private, loopback or link-local one only with proxy.allowPrivateTargets (kept, with a warning:
 * the operator may set it later). Only IP literals are judged here (WHATWG URL has already turned
 * `2852039166` or `[::ffff:169.254.169.254]` into one); a name is resolved and checked by the proxy
 * at each request. A service routed through nodes is not checked: its agent dials the endpoint.
 */
function endpointWarnings(url: URL, allowPrivate: boolean): string[] {
  const kind = literalAddressClass(url);
  if (kind === 'metadata') {
    throw new AppError('validation_failed', `endpoint_url names a cloud metadata address (${url.hostname}), which the proxy never reaches`, { details: { param: 'endpoint_url' } });
  }
  if (kind === 'private' && !allowPrivate) {
    return [`endpoint_url names a private, loopback or link-local address (${url.hostname}): the proxy refuses it until proxy.allowPrivateTargets is set; a host on a private network is reached by routing the service through a node there (nexus service nodes SLUG --node NODE), or allow private targets (NEXUS_PROXY_ALLOW_PRIVATE_TARGETS=true) when the appliance itself should call it`];
  }
  return [];
}

function needsKeyName(method: AuthMethod, keyName: string | null): void {
  if ((method === 'header' || method === 'body') && !keyName) throw new AppError('validation_failed', `auth_method "${method}" needs auth_key_name`, { details: { param: 'auth_key_name' } });
}

const CREDENTIAL_ON_NODE = 'a service routed through nodes keeps its credential on the node; add it there with `nexus agent credentials add`';
const needsCredential = (method: AuthMethod) => `a direct service with auth_method "${method}" needs credential`;

function slugify(text: string): string {
  const s = text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48).replace(/-+$/, '');
  return s || 'service';
}

export function createServices(ctx: Pick<AppContext, 'db' | 'secretBox' | 'publicUrl' | 'config'>, nodes: NodesService) {
  const store = createServicesStore(ctx.db);
  const allowPrivate = ctx.config.proxy.allowPrivateTargets;

  const view = (s: ServiceRow): ServiceView => {
    const bound = store.nodes(s.id);
    return {
      id: s.id,
      slug: s.slug,
      label: s.label,
      endpoint_url: s.endpoint_url,
      auth_method: s.auth_method,
      auth_key_name: s.auth_key_name,
      routed_via: s.routed_via,
      has_credential: s.credential_sealed !== null,
      nodes: bound,
      proxy_url: `${ctx.publicUrl()}/api/v1/proxy/s/${s.slug}`,
      created_at: s.created_at,
    };
  };

  /**
   * Checks a requested binding: every node exists and is the caller's to use (`kept` nodes, already
   * bound, stay allowed), and none is listed twice. Defaults: priority 0, weight 1.
   */
  const bindings = (principal: Principal, requested: NonNullable<UpdateServiceInput['nodes']>, kept: Set<string>): ServiceNode[] => {
    const seen = new Set<string>();
    for (const n of requested) {
      if (seen.has(n.node_id)) throw new AppError('validation_failed', `node ${n.node_id} is listed twice`, { details: { param: 'nodes' } });
      seen.add(n.node_id);
      if (!kept.has(n.node_id)) nodes.visible(principal, n.node_id);
    }
    return requested.map((n) => ({ node_id: n.node_id, priority: n.priority ?? 0, weight: n.weight ?? 1 }));
  };

  /** A service the principal owns (admins see others' too). Others' look nonexistent, as nodes do. */
  const get = (principal: Principal, id: string): ServiceRow => {
    const s = store.get(id);
    if (!s || (s.owner_id !== principal.userId && principal.role !== 'admin')) throw new AppError('not_found', 'service not found');
    return s;
  };

  return {
    store,
    view,

    create(owner: Principal, input: CreateServiceInput): { service: ServiceView; warnings: string[] } {
      const base = input.catalog ? catalogEntry(input.catalog) : undefined;
      if (input.catalog && !base) throw new AppError('validation_failed', `no catalog entry "${input.catalog}"; see GET /api/v1/catalog`, { details: { param: 'catalog' } });
      const endpoint = input.endpoint_url ?? base?.endpoint_url;
      const method = input.auth_method ?? base?.auth_method;
      if (!endpoint) throw new AppError('validation_failed', 'endpoint_url is required', { details: { param: 'endpoint_url' } });
      if (!method || !AUTH_METHODS.includes(method)) throw new AppError('validation_failed', `auth_method must be one of ${AUTH_METHODS.join(', ')}`, { details: { param: 'auth_method' } });
      const url = parseEndpoint(endpoint);
      const keyName = input.auth_key_name ?? base?.auth_key_name ?? null;
      needsKeyName(method, keyName);

      const viaNodes = bindings(owner, input.nodes ?? [], new Set());
      if (viaNodes.length && input.credential !== undefined) throw new AppError('validation_failed', CREDENTIAL_ON_NODE, { details: { param: 'credential' } });
      if (!viaNodes.length && method !== 'none' && input.credential === undefined) throw new AppError('validation_failed', needsCredential(method), { details: { param: 'credential' } });
      const warnings = viaNodes.length ? [] : endpointWarnings(url, allowPrivate);
      const slug = input.slug ?? base?.slug ?? slugify(input.label ?? url.hostname);
      if (!SLUG.test(slug)) throw new AppError('validation_failed', 'slug must be lowercase letters, digits and dashes (1–64)', { details: { param: 'slug' } });
      const id = randomUUID();
      const credential = input.credential;
      const row = store.create(
        {
          id,
          owner_id: owner.userId,
          slug,
          label: input.label ?? base?.label ?? null,
          endpoint_url: stored(url),
          auth_method: method,
          auth_key_name: keyName,
          nodes: viaNodes,
        },
        credential !== undefined && method !== 'none' ? (sid) => ctx.secretBox.seal(credential, serviceAad(sid)) : null,
      );
      return { service: view(row), warnings };
    },

    /**
     * Changes a service in one transaction (two racing updates never mix). The result must be a
     * valid service on its own: direct with a credential (or auth_method none), or through nodes
     * with no credential on the appliance. Giving nodes to a direct service drops its stored
     * credential; taking every node away needs a credential (or none). A stored credential never
     * follows the endpoint to another origin: moving it there needs the credential again. The
     * endpoint is judged as on create when it changes or the service (again) becomes direct.
     * Only `nodes` changes the mode: a node-routed service left with no nodes (they were deleted)
     * stays node-routed until `nodes: []` makes it direct.
     */
    update(principal: Principal, id: string, input: UpdateServiceInput): UpdateOutcome {
      get(principal, id);
      let credential: UpdateOutcome['credential'] = 'none';
      let warnings: string[] = [];
      const row = store.update(id, (s, bound) => {
        const method = input.auth_method ?? s.auth_method;
        const keyName = input.auth_key_name !== undefined ? input.auth_key_name : s.auth_key_name;
        needsKeyName(method, keyName);
        const url = parseEndpoint(input.endpoint_url ?? s.endpoint_url);
        const viaNodes = input.nodes ? bindings(principal, input.nodes, new Set(bound.map((b) => b.node_id))) : bound;
        const mode = input.nodes ? (viaNodes.length ? 'node' : 'direct') : s.routed_via;
        if (mode === 'direct' && (input.endpoint_url !== undefined || input.nodes !== undefined)) warnings = endpointWarnings(url, allowPrivate);

        let sealed: string | null;
        if (mode === 'node') {
          if (typeof input.credential === 'string') throw new AppError('validation_failed', CREDENTIAL_ON_NODE, { details: { param: 'credential' } });
          sealed = null;
          credential = s.credential_sealed ? 'dropped' : 'none';
        } else if (method === 'none') {
          sealed = null;
          credential = s.credential_sealed ? 'dropped' : 'none';
        } else if (typeof input.credential === 'string') {
          sealed = ctx.secretBox.seal(input.credential, serviceAad(s.id));
          credential = 'replaced';
        } else if (input.credential === null || !s.credential_sealed) {
          throw new AppError('validation_failed', needsCredential(method), { details: { param: 'credential' } });
        } else {
          if (url.origin !== new URL(s.endpoint_url).origin) {
            throw new AppError('validation_failed', 'the stored credential does not follow the endpoint to another origin; send credential again', { details: { param: 'credential' } });
          }
          sealed = s.credential_sealed;
          credential = 'kept';
        }
        return {
          label: input.label !== undefined ? input.label : s.label,
          endpoint_url: stored(url),
          auth_method: method,
          auth_key_name: keyName,
          credential_sealed: sealed,
          routed_via: mode,
          nodes: viaNodes,
        };
      });
      if (!row) throw new AppError('not_found', 'service not found');
      return { service: view(row), fields: Object.keys(input), credential, warnings };
    },

    list(principal: Principal): ServiceView[] {
      return store.list(principal.userId).map(view);
    },

    get,

    credential(s: ServiceRow): string | null {
      return s.credential_sealed ? ctx.secretBox.open(s.credential_sealed, serviceAad(s.id)) : null;
    },
  };
}

export type Services = ReturnType<typeof createServices>;
