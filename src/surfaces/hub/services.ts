// Services the proxy serves (`/api/v1/keys`): direct (the appliance holds the credential, sealed with
// the master key, and injects it) or through nodes (the credential stays on the agent's host; the
// appliance keeps only the slug → nodes binding).
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../core/context.ts';
import { AppError } from '../../core/errors/errors.ts';
import type { Principal } from '../../core/identity/identity.ts';
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

function slugify(text: string): string {
  const s = text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48).replace(/-+$/, '');
  return s || 'service';
}

export function createServices(ctx: Pick<AppContext, 'db' | 'secretBox' | 'publicUrl'>, nodes: NodesService) {
  const store = createServicesStore(ctx.db);

  const view = (s: ServiceRow): ServiceView => {
    const bound = store.nodes(s.id);
    return {
      id: s.id,
      slug: s.slug,
      label: s.label,
      endpoint_url: s.endpoint_url,
      auth_method: s.auth_method,
      auth_key_name: s.auth_key_name,
      routed_via: bound.length ? 'node' : 'direct',
      has_credential: s.credential_sealed !== null,
      nodes: bound,
      proxy_url: `${ctx.publicUrl()}/api/v1/proxy/s/${s.slug}`,
      created_at: s.created_at,
    };
  };

  return {
    store,
    view,

    create(owner: Principal, input: CreateServiceInput): ServiceView {
      const base = input.catalog ? catalogEntry(input.catalog) : undefined;
      if (input.catalog && !base) throw new AppError('validation_failed', `no catalog entry "${input.catalog}"; see GET /api/v1/catalog`);
      const endpoint = input.endpoint_url ?? base?.endpoint_url;
      const method = input.auth_method ?? base?.auth_method;
      if (!endpoint) throw new AppError('validation_failed', 'endpoint_url is required');
      if (!method || !AUTH_METHODS.includes(method)) throw new AppError('validation_failed', `auth_method must be one of ${AUTH_METHODS.join(', ')}`);
      let url: URL;
      try {
        url = new URL(endpoint);
      } catch {
        throw new AppError('validation_failed', 'endpoint_url is not a URL');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AppError('validation_failed', 'endpoint_url must be http or https');
      if (url.username || url.password) throw new AppError('validation_failed', 'endpoint_url must not carry credentials; use credential');
      if (url.search || url.hash) throw new AppError('validation_failed', 'endpoint_url must not have a query or fragment');
      const keyName = input.auth_key_name ?? base?.auth_key_name ?? null;
      if ((method === 'header' || method === 'body') && !keyName) throw new AppError('validation_failed', `auth_method "${method}" needs auth_key_name`);

      const viaNodes = input.nodes ?? [];
      const seen = new Set<string>();
      for (const n of viaNodes) {
        nodes.visible(owner, n.node_id);
        if (seen.has(n.node_id)) throw new AppError('validation_failed', `node ${n.node_id} is listed twice`);
        seen.add(n.node_id);
      }
      if (viaNodes.length && input.credential !== undefined) {
        throw new AppError('validation_failed', 'a service routed through nodes keeps its credential on the node; add it there with `nexus agent credentials add`');
      }
      if (!viaNodes.length && method !== 'none' && input.credential === undefined) {
        throw new AppError('validation_failed', `a direct service with auth_method "${method}" needs credential`);
      }
      const slug = input.slug ?? base?.slug ?? slugify(input.label ?? url.hostname);
      if (!SLUG.test(slug)) throw new AppError('validation_failed', 'slug must be lowercase letters, digits and dashes (1–64)');
      const id = randomUUID();
      const credential = input.credential;
      const row = store.create(
        {
          id,
          owner_id: owner.userId,
          slug,
          label: input.label ?? base?.label ?? null,
          endpoint_url: url.toString().replace(/\/$/, ''),
          auth_method: method,
          auth_key_name: keyName,
          nodes: viaNodes.map((n) => ({ node_id: n.node_id, priority: n.priority ?? 0, weight: n.weight ?? 1 })),
        },
        credential !== undefined && method !== 'none' ? (sid) => ctx.secretBox.seal(credential, serviceAad(sid)) : null,
      );
      return view(row);
    },

    list(principal: Principal): ServiceView[] {
      return store.list(principal.userId).map(view);
    },

    /** A service the principal owns (admins see others' too). */
    get(principal: Principal, id: string): ServiceRow {
      const s = store.get(id);
      if (!s || (s.owner_id !== principal.userId && principal.role !== 'admin')) throw new AppError('not_found', 'service not found');
      return s;
    },

    credential(s: ServiceRow): string | null {
      return s.credential_sealed ? ctx.secretBox.open(s.credential_sealed, serviceAad(s.id)) : null;
    },
  };
}

export type Services = ReturnType<typeof createServices>;
