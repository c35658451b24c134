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

  it('sees writes made through another connection (another process) once its check comes round', () => {
    const { dir, db, owner, store, add } = setup();
    let clock = 0;
    const lookup = createServiceLookup(db, store, { otherWritersMs: 100, now: () => clock });
    const svc = add('wiki');
    expect(lookup.find(owner.id, 'wiki')?.service.endpoint_url).toBe('http://127.0.0.1:9/');
    const other = openDatabase(join(dir, 'nexus.db'));
    dbs.push(other);
    other.prepare('UPDATE services SET endpoint_url = ? WHERE id = ?').run('http://127.0.0.1:10/', svc.id);
    clock += 99;
    expect(lookup.find(owner.id, 'wiki')?.service.endpoint_url).toBe('http://127.0.0.1:9/');
    clock += 1;
    expect(lookup.find(owner.id, 'wiki')?.service.endpoint_url).toBe('http://127.0.0.1:10/');
    // This connection's own writes are seen at once, whatever the clock says.
    store.delete(svc.id);
    expect(lookup.find(owner.id, 'wiki')).toBeNull();
  });

  it('keeps its answers across writes to other tables (the per-request audit rows)', () => {
    const { db, owner, add, lookup } = setup();
    add('grafana');
    const first = lookup.find(owner.id, 'grafana');
    const audit = db.prepare("INSERT INTO audit_log (ts, actor_type, action, outcome) VALUES ('2026-01-01T00:00:00Z', 'system', 'proxy.request', 'success')");
    for (let i = 0; i < 5; i++) audit.run();
    expect(lookup.find(owner.id, 'grafana')).toBe(first);
  });

  it('sees rows removed by cascades: deleting the owner or a bound node', () => {
    const { db, owner, store, add, lookup } = setup();
    add('wiki');
    expect(lookup.find(owner.id, 'wiki')).not.toBeNull();
    db.prepare('DELETE FROM users WHERE id = ?').run(owner.id);
    expect(lookup.find(owner.id, 'wiki')).toBeNull();

    const other = createUsersStore(db).create({ username: 'other' });
    const now = new Date().toISOString();
    db.prepare('INSERT INTO nodes (id, owner_id, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)').run('node-1', other.id, 'n1', now, now);
    store.create({ id: 'svc-bound', owner_id: other.id, slug: 'bound', label: null, endpoint_url: 'http://127.0.0.1:9/', auth_method: 'none', auth_key_name: null, nodes: [{ node_id: 'node-1', priority: 0, weight: 1 }] }, null);
    expect(lookup.find(other.id, 'bound')?.bound.map((b) => b.node_id)).toEqual(['node-1']);
    db.prepare('DELETE FROM nodes WHERE id = ?').run('node-1');
    expect(lookup.find(other.id, 'bound')?.bound).toEqual([]);
  });

  it('keeps nothing read inside a transaction that is rolled back', () => {
    const { db, owner, add, lookup } = setup();
    const attempt = db.transaction(() => {
      add('temp');
      expect(lookup.find(owner.id, 'temp')?.service.slug).toBe('temp');
      throw new Error('roll back');
    });
    expect(() => attempt()).toThrow('roll back');
    expect(lookup.find(owner.id, 'temp')).toBeNull();
  });

  it('two lookups on one connection both see its writes', () => {
    const { db, owner, store, add, lookup } = setup();
    const second = createServiceLookup(db, store);
    expect(lookup.find(owner.id, 'docs')).toBeNull();
    expect(second.find(owner.id, 'docs')).toBeNull();
    add('docs');
    expect(lookup.find(owner.id, 'docs')).not.toBeNull();
    expect(second.find(owner.id, 'docs')).not.toBeNull();
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
