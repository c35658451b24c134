// Every proxied request looks up its service by slug and the service's node binding: two SQLite
// reads that cost 13% of the appliance's CPU per relayed request at c=64 (bench/hub.ts profile). The
// answers are kept until anything at all is written to the database — this connection's
// total_changes() or, for writers in other processes, PRAGMA data_version — so a created, changed or
// deleted service is seen by the very next request, exactly as without the cache. Both checks together
// cost less than one of the reads they replace.
import type { Db } from '../../core/db/db.ts';
import type { ServiceNode, ServiceRow, ServicesStore } from './services-store.ts';

/** Enough for every service of a large installation; unknown slugs are kept too, so the size is capped. */
const MAX_ENTRIES = 10_000;

export interface ServiceLookup {
  /** The owner's service with this slug and its node binding (empty for a direct service). */
  find(ownerId: string, slug: string): { service: ServiceRow; bound: ServiceNode[] } | null;
  /** Entries held now. */
  readonly size: number;
}

export function createServiceLookup(db: Db, store: ServicesStore): ServiceLookup {
  const changes = db.prepare('SELECT total_changes()').pluck();
  const dataVersion = db.prepare('PRAGMA data_version').pluck();
  let stamp = '';
  const cache = new Map<string, { service: ServiceRow; bound: ServiceNode[] } | null>();

  return {
    find(ownerId, slug) {
      const now = `${changes.get() as number}:${dataVersion.get() as number}`;
      if (now !== stamp || cache.size >= MAX_ENTRIES) {
        stamp = now;
        cache.clear();
      }
      const key = `${ownerId}\n${slug}`;
      let hit = cache.get(key);
      if (hit === undefined) {
        const service = store.bySlug(ownerId, slug);
        hit = service ? { service, bound: store.nodes(service.id) } : null;
        cache.set(key, hit);
      }
      return hit;
    },
    get size() {
      return cache.size;
    },
  };
}
