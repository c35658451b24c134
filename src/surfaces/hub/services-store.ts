// SQL for proxied services and their node bindings. The only module that touches `services` and
// `service_nodes`.
import type { Db } from '../../core/db/db.ts';
import type { AuthMethod } from '../../protocol/credentials.ts';

export type { AuthMethod };

export interface ServiceRow {
  id: string;
  owner_id: string;
  slug: string;
  label: string | null;
  endpoint_url: string;
  auth_method: AuthMethod;
  auth_key_name: string | null;
  credential_sealed: string | null;
  /** Kept, not derived from the binding: a node-routed service whose nodes were all deleted stays node-routed. */
  routed_via: 'direct' | 'node';
  created_at: string;
}

export interface ServiceNode {
  node_id: string;
  priority: number;
  weight: number;
}

/** A new service is node-routed when it is created with nodes. */
export interface NewService extends Omit<ServiceRow, 'credential_sealed' | 'routed_via' | 'created_at'> {
  nodes: ServiceNode[];
}

/** A service's whole new state, as `update` writes it. */
export interface ServiceChange {
  label: string | null;
  endpoint_url: string;
  auth_method: AuthMethod;
  auth_key_name: string | null;
  credential_sealed: string | null;
  routed_via: 'direct' | 'node';
  nodes: ServiceNode[];
}

/** Longest slug: what the proxy URL, the agent's credentials file and its CLI (`--service`) take. */
export const SLUG_MAX = 64;

/**
 * `base-n`, the base shortened (and stripped of a dash it would end on) so that the whole stays
 * within SLUG_MAX.
 */
export function numberedSlug(base: string, n: number): string {
  const suffix = `-${n}`;
  return `${base.slice(0, SLUG_MAX - suffix.length).replace(/-+$/, '')}${suffix}`;
}

export function createServicesStore(db: Db) {
  const insert = db.prepare(`INSERT INTO services (id, owner_id, slug, label, endpoint_url, auth_method, auth_key_name, credential_sealed, routed_via, created_at)
    VALUES (@id, @owner_id, @slug, @label, @endpoint_url, @auth_method, @auth_key_name, NULL, @routed_via, @created_at)`);
  const setCredential = db.prepare('UPDATE services SET credential_sealed = ? WHERE id = ?');
  const insertNode = db.prepare('INSERT INTO service_nodes (service_id, node_id, priority, weight) VALUES (?, ?, ?, ?)');
  const byId = db.prepare('SELECT * FROM services WHERE id = ?');
  const bySlug = db.prepare('SELECT * FROM services WHERE owner_id = ? AND slug = ?');
  const list = db.prepare('SELECT * FROM services ORDER BY created_at, id');
  const listOwner = db.prepare('SELECT * FROM services WHERE owner_id = ? ORDER BY created_at, id');
  const nodesOf = db.prepare('SELECT node_id, priority, weight FROM service_nodes WHERE service_id = ? ORDER BY priority, node_id');
  const del = db.prepare('DELETE FROM services WHERE id = ?');
  const updateRow = db.prepare(`UPDATE services SET label = @label, endpoint_url = @endpoint_url, auth_method = @auth_method,
    auth_key_name = @auth_key_name, credential_sealed = @credential_sealed, routed_via = @routed_via WHERE id = @id`);
  const clearNodes = db.prepare('DELETE FROM service_nodes WHERE service_id = ?');
  // The services bound to a node, each with how many nodes it has (1: this node is its last).
  const usingNode = db.prepare(`SELECT s.id, s.slug, s.owner_id, (SELECT COUNT(*) FROM service_nodes o WHERE o.service_id = s.id) AS nodes
    FROM service_nodes sn JOIN services s ON s.id = sn.service_id WHERE sn.node_id = ? ORDER BY s.slug, s.id`);

  return {
    /**
     * Inserts a service under the first free slug among `base`, `base-2`, `base-3`, … for its owner;
     * the check and the insert share one transaction.
     */
    create: db.transaction((s: NewService, seal: ((id: string) => string) | null): ServiceRow => {
      let slug = s.slug;
      for (let n = 2; bySlug.get(s.owner_id, slug); n++) slug = numberedSlug(s.slug, n);
      insert.run({ ...s, slug, routed_via: s.nodes.length ? 'node' : 'direct', created_at: new Date().toISOString() });
      if (seal) setCredential.run(seal(s.id), s.id);
      for (const n of s.nodes) insertNode.run(s.id, n.node_id, n.priority, n.weight);
      return byId.get(s.id) as ServiceRow;
    }),
    /**
     * Reads the service and its binding, lets `decide` check them and return the new state (it may
     * throw to refuse), and writes it: read, check and write share one transaction, so concurrent
     * updates apply one after the other, each to the state the previous one left.
     */
    update: db.transaction((id: string, decide: (row: ServiceRow, nodes: ServiceNode[]) => ServiceChange): ServiceRow | undefined => {
      const row = byId.get(id) as ServiceRow | undefined;
      if (!row) return undefined;
      const next = decide(row, nodesOf.all(id) as ServiceNode[]);
      updateRow.run({ id, label: next.label, endpoint_url: next.endpoint_url, auth_method: next.auth_method, auth_key_name: next.auth_key_name, credential_sealed: next.credential_sealed, routed_via: next.routed_via });
      clearNodes.run(id);
      for (const n of next.nodes) insertNode.run(id, n.node_id, n.priority, n.weight);
      return byId.get(id) as ServiceRow;
    }),
    get: (id: string) => byId.get(id) as ServiceRow | undefined,
    bySlug: (ownerId: string, slug: string) => bySlug.get(ownerId, slug) as ServiceRow | undefined,
    list: (ownerId?: string) => (ownerId ? listOwner.all(ownerId) : list.all()) as ServiceRow[],
    nodes: (serviceId: string) => nodesOf.all(serviceId) as ServiceNode[],
    delete: (id: string) => del.run(id).changes === 1,
    usingNode: (nodeId: string) => usingNode.all(nodeId) as Array<{ id: string; slug: string; owner_id: string; nodes: number }>,
  };
}

export type ServicesStore = ReturnType<typeof createServicesStore>;
