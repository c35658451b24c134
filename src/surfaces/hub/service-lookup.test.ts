import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase, type Db } from '../../core/db/db.ts';
import { createUsersStore } from '../../core/identity/users-store.ts';
import { createServiceLookup } from './service-lookup.ts';
import { createServicesStore } from './services-store.ts';

const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) closeDatabase(db);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-lookup-'));
  dirs.push(dir);
  const db = openDatabase(join(dir, 'nexus.db'));
  dbs.push(db);
  const owner = createUsersStore(db).create({ username: 'owner' });
  const store = createServicesStore(db);
  const add = (slug: string) => store.create({ id: `svc-${slug}`, owner_id: owner.id, slug, label: null, endpoint_url: 'http://127.0.0.1:9/', auth_method: 'none', auth_key_name: null, nodes: [] }, null);
  return { dir, db, owner, store, add, lookup: createServiceLookup(db, store) };
}

describe('service lookup cache', () => {
  it('answers repeated lookups from memory and sees every write on the next lookup', () => {
    const { owner, store, add, lookup } = setup();
    expect(lookup.find(owner.id, 'grafana')).toBeNull();
    const svc = add('grafana');
    // The insert counts as a write: the cached "no such service" is gone.
    const first = lookup.find(owner.id, 'grafana');
    expect(first?.service.id).toBe(svc.id);
    expect(first?.bound).toEqual([]);
    expect(lookup.find(owner.id, 'grafana')).toBe(first);
    store.delete(svc.id);
    expect(lookup.find(owner.id, 'grafana')).toBeNull();
  });

  it('sees writes made through another connection (another process)', () => {
    const { dir, owner, add, lookup } = setup();
    const svc = add('wiki');
    expect(lookup.find(owner.id, 'wiki')?.service.endpoint_url).toBe('http://127.0.0.1:9/');
    const other = openDatabase(join(dir, 'nexus.db'));
    dbs.push(other);
    other.prepare('UPDATE services SET endpoint_url = ? WHERE id = ?').run('http://127.0.0.1:10/', svc.id);
    expect(lookup.find(owner.id, 'wiki')?.service.endpoint_url).toBe('http://127.0.0.1:10/');
  });

  it('keeps a bounded number of entries, unknown slugs included', () => {
    const { owner, lookup } = setup();
    let most = 0;
    for (let i = 0; i < 25_000; i++) {
      expect(lookup.find(owner.id, `nope-${i}`)).toBeNull();
      most = Math.max(most, lookup.size);
    }
    expect(most).toBe(10_000);
  });
});
