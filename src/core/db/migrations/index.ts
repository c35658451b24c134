// Numbered SQL migrations. Under `node` they are read from this folder; the build replaces this
// module with one that carries the same files inline (scripts/build.ts), so the single executable
// needs nothing on disk. Number ranges per owner keep parallel work from colliding:
// 001–099 core/control, 100–199 gateway, 200–299 hub, 300–399 scim, 400–499 console/sso.
import { readdirSync, readFileSync } from 'node:fs';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function loadMigrations(): Migration[] {
  const dir = new URL('.', import.meta.url);
  return readdirSync(dir)
    .filter((f) => /^\d{3}-[a-z0-9-]+\.sql$/.test(f))
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f, sql: readFileSync(new URL(f, dir), 'utf8') }))
    .sort((a, b) => a.version - b.version);
}
