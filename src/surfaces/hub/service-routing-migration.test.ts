// Migration 201 on a database written before it: which services it marks as routed through nodes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { closeDatabase, migrate, openDatabase, type Db } from '../../core/db/db.ts';
import { loadMigrations } from '../../core/db/migrations/index.ts';

const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) closeDatabase(db);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

it('marks bound services and services that lost their last node as node-routed, the rest direct', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-mig201-'));
  dirs.push(dir);
  const all = loadMigrations();
  const db = openDatabase(join(dir, 'nexus.db'), { migrations: all.filter((m) => m.version < 201) });
  dbs.push(db);
  const now = new Date().toISOString();
  db.prepare("INSERT INTO users (id, username, role, created_at, updated_at) VALUES ('u1', 'owner', 'admin', ?, ?)").run(now, now);
  db.prepare("INSERT INTO nodes (id, owner_id, name, created_at, updated_at) VALUES ('n1', 'u1', 'edge', ?, ?)").run(now, now);
  const service = db.prepare("INSERT INTO services (id, owner_id, slug, endpoint_url, auth_method, credential_sealed, created_at) VALUES (?, 'u1', ?, 'http://127.0.0.1:9', ?, ?, ?)");
  service.run('bound', 'bound', 'bearer', null, now);
  service.run('orphan', 'orphan', 'bearer', null, now); // its node was deleted: the cascade took the binding
  service.run('direct', 'direct', 'bearer', 'sealed-credential', now);
  service.run('open', 'open', 'none', null, now);
  db.prepare("INSERT INTO service_nodes (service_id, node_id) VALUES ('bound', 'n1')").run();

  expect(migrate(db, all)).toContain(201);
  const modes = Object.fromEntries((db.prepare('SELECT id, routed_via FROM services').all() as Array<{ id: string; routed_via: string }>).map((r) => [r.id, r.routed_via]));
  expect(modes).toEqual({ bound: 'node', orphan: 'node', direct: 'direct', open: 'direct' });
  expect(() => db.prepare("UPDATE services SET routed_via = 'elsewhere' WHERE id = 'open'").run()).toThrow(/CHECK constraint/);
});
