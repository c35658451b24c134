// Every proxied request looks up its service by slug and the service's node binding: two SQLite
// reads that cost 13% of the appliance's CPU per relayed request at c=64 (bench/hub.ts profile). The
// answers are kept until the tables they come from change:
// - writes through this connection (the stores, and cascades from deleting a user or a node) fire
//   TEMP triggers on `services` and `service_nodes` that bump a counter in this process; temp
//   triggers live only in this connection, so other processes opening the database never see them.
//   Every change made through the appliance is one of these, and the very next request sees it.
// - writes from any other connection (the write thread's audit and usage batches, which only drop
//   the cache, or another process: the data-dir lock keeps other nexus processes out while it runs,
//   so in practice someone editing the file by hand) change PRAGMA data_version
//   (https://sqlite.org/pragma.html#pragma_data_version).
//   Reading it is a read transaction with two file-lock system calls, ~15 µs of a request at
//   concurrency 1, so it is read at most every `otherWritersMs` (100 ms): such a write is seen within
//   that time instead of on the next request.
// Writes to other tables, the per-request audit rows above all, leave the cache alone (the check it
// replaces, total_changes(), counted every audit insert and re-read the services every few requests).
import type { Db } from '../../core/db/db.ts';
import type { ServiceNode, ServiceRow, ServicesStore } from './services-store.ts';

/** Enough for every service of a large installation; unknown slugs are kept too, so the size is capped. */
const MAX_ENTRIES = 10_000;

export interface ServiceLookupOptions {
  /** How often another connection's writes are looked for (ms; default 100). */
  otherWritersMs?: number;
  /** The clock, in ms (tests). */
  now?: () => number;
}

export interface ServiceLookup {
  /** The owner's service with this slug and its node binding (empty for a direct service). */
  find(ownerId: string, slug: string): { service: ServiceRow; bound: ServiceNode[] } | null;
  /** Entries held now. */
  readonly size: number;
}

/** Writes this connection made to the lookup's tables, per connection (a second lookup shares it). */
const writes = new WeakMap<Db, { count: number }>();

function watchTables(db: Db): { count: number } {
  let w = writes.get(db);
  if (w) return w;
  const counter = { count: 0 };
  w = counter;
  writes.set(db, w);
  db.function('nexus_hub_services_changed', { deterministic: false }, () => {
    counter.count++;
    return null;
  });
  for (const table of ['services', 'service_nodes']) {
    for (const op of ['INSERT', 'UPDATE', 'DELETE']) {
      db.exec(`CREATE TEMP TRIGGER IF NOT EXISTS nexus_hub_${table}_${op.toLowerCase()} AFTER ${op} ON main.${table}
        BEGIN SELECT nexus_hub_services_changed(); END`);
    }
  }
  return w;
}

export function createServiceLookup(db: Db, store: ServicesStore, opts: ServiceLookupOptions = {}): ServiceLookup {
  const own = watchTables(db);
  const dataVersion = db.prepare('PRAGMA data_version').pluck();
  const otherWritersMs = opts.otherWritersMs ?? 100;
  const now = opts.now ?? (() => performance.now());
  let seenWrites = -1;
  let seenVersion = -1;
  let versionReadAt = -Infinity;
  const cache = new Map<string, { service: ServiceRow; bound: ServiceNode[] } | null>();

  const read = (ownerId: string, slug: string) => {
    const service = store.bySlug(ownerId, slug);
    return service ? { service, bound: store.nodes(service.id) } : null;
  };

  return {
    find(ownerId, slug) {
      // Inside a transaction the rows may yet be rolled back: read them, keep nothing.
      if (db.inTransaction) return read(ownerId, slug);
      let version = seenVersion;
      const t = now();
      if (t - versionReadAt >= otherWritersMs) {
        versionReadAt = t;
        version = dataVersion.get() as number;
      }
      if (own.count !== seenWrites || version !== seenVersion || cache.size >= MAX_ENTRIES) {
        seenWrites = own.count;
        seenVersion = version;
        cache.clear();
      }
      const key = `${ownerId}\n${slug}`;
      let hit = cache.get(key);
      if (hit === undefined) {
        hit = read(ownerId, slug);
        cache.set(key, hit);
      }
      return hit;
    },
    get size() {
      return cache.size;
    },
  };
}
