// SCIM figures with 100,000 users and 1,000 groups loaded (issue 5): `filter=userName eq "…"` p99,
// pages of 100 p99 (shallow and deep), and sustained mixed requests/s — each next to GET /healthz on
// the same process in the same run (the baseline: what the HTTP stack alone costs).
//
// The 100,000 users are written straight into the data dir with the appliance's own stores (the same
// rows a SCIM POST writes) so that loading takes seconds, not minutes; the appliance then starts on it.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { closeDatabase, openDatabase } from '../src/core/db/db.ts';
import { createGroupsStore } from '../src/core/identity/groups-store.ts';
import { createUsersStore } from '../src/core/identity/users-store.ts';
import { createScimUsersStore } from '../src/surfaces/scim/users-store.ts';
import { fmt, freePort, load, loadGenerator, ROOT, startQuiet, stop, tempDir, waitFor } from './lib.ts';

const USERS = Number(process.env.BENCH_SCIM_USERS ?? 100_000);
const GROUPS = Number(process.env.BENCH_SCIM_GROUPS ?? 1_000);
const duration = Number(process.env.BENCH_SECONDS ?? 5);
const mixedOnly = process.argv.includes('--mixed-only');
const dataDir = tempDir('nexus-bench-scim-');

const loadBefore = (await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(', ');
const t0 = performance.now();
{
  const db = openDatabase(join(dataDir, 'nexus.db'));
  const users = createUsersStore(db);
  const scim = createScimUsersStore(db);
  const groups = createGroupsStore(db);
  const ids: string[] = [];
  db.transaction(() => {
    for (let i = 0; i < USERS; i++) {
      const userName = `user-${i}@example.com`;
      const u = users.create({ username: userName, display_name: `User ${i}`, email: userName, source: 'scim' });
      scim.insert(u.id, `ext-${i}`, {
        name: { givenName: 'User', familyName: String(i) },
        emails: [{ value: userName, type: 'work', primary: true }],
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { employeeNumber: String(i), department: `dept-${i % 50}` },
      });
      ids.push(u.id);
    }
    for (let g = 0; g < GROUPS; g++) {
      const group = groups.create({ displayName: `group-${g}` });
      // 100 members each: 100,000 memberships in all.
      groups.addMembers(group.id, Array.from({ length: 100 }, (_, k) => ({ user_id: ids[(g * 100 + k) % ids.length]!, display: null })));
    }
  })();
  closeDatabase(db);
}
const seedSeconds = (performance.now() - t0) / 1000;

const port = await freePort();
const adminPort = await freePort();
const app = startQuiet(process.execPath, [join(ROOT, 'src/main.ts'), 'serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`], { XDG_CACHE_HOME: tempDir(), NEXUS_LOG_LEVEL: 'info', ...(process.env.BENCH_SERVER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_SERVER_NODE_OPTIONS } : {}) });
const url = `http://127.0.0.1:${port}`;
try {
  await waitFor(`${url}/ready`);
  // Setup, admin sign-in, one SCIM token — through the public API like an operator would.
  const { readFileSync } = await import('node:fs');
  const setupToken = readFileSync(join(dataDir, 'setup-token'), 'utf8').trim();
  const j = (r: Response) => r.json() as Promise<Record<string, unknown>>;
  const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  await postJson('/api/v1/setup', { setup_token: setupToken, username: 'admin', password: 'correct-horse-battery' });
  const loginRes = await postJson('/api/v1/auth/login', { username: 'admin', password: 'correct-horse-battery' });
  const cookie = loginRes.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const token = (await j(await postJson('/api/v1/scim/tokens', { name: 'bench' }, { cookie }))).token as string;
  const auth = { authorization: `Bearer ${token}` };

  const check = await j(await fetch(`${url}/scim/v2/Users?filter=${encodeURIComponent(`userName eq "USER-${USERS - 1}@example.com"`)}`, { headers: auth }));
  if (check.totalResults !== 1) throw new Error(`lookup sanity check failed: ${JSON.stringify(check).slice(0, 300)}`);
  const groupPage = await j(await fetch(`${url}/scim/v2/Groups?count=1000&excludedAttributes=members`, { headers: auth }));
  const groupIds = (groupPage.Resources as { id: string }[]).map((g) => g.id);

  const c = 16;
  const mixedConnections = 32;
  const measure = async (path: string, connections = c) => {
    if (mixedOnly) return { rps: 0, p50: 0, p99: 0, mean: 0, errors: 0, non2xx: 0, total: 0 };
    await load(`${url}${path}`, { connections, duration: 1, headers: auth }); // warm-up
    const r = await load(`${url}${path}`, { connections, duration, headers: auth });
    if (r.errors || r.non2xx) throw new Error(`${path}: ${r.errors} errors, ${r.non2xx} non-2xx`);
    return r;
  };
  const health = await measure('/healthz');
  const lookupPath = `/scim/v2/Users?filter=${encodeURIComponent(`userName eq "user-${Math.floor(USERS / 2)}@example.com"`)}`;
  // Identity providers provision with a few requests in flight; c=2 is that, c=16 is a burst.
  const health2 = await measure('/healthz', 2);
  const lookup2 = await measure(lookupPath, 2);
  const page2 = await measure(`/scim/v2/Users?startIndex=${USERS - 100}&count=100`, 2);
  const lookup = await measure(lookupPath);
  const lookupExt = await measure(`/scim/v2/Users?filter=${encodeURIComponent(`externalId eq "ext-${Math.floor(USERS / 3)}"`)}`);
  const pageFirst = await measure('/scim/v2/Users?startIndex=1&count=100');
  const pageDeep = await measure(`/scim/v2/Users?startIndex=${USERS - 100}&count=100`);
  const groupsPage = await measure('/scim/v2/Groups?startIndex=501&count=100&excludedAttributes=members');
  const groupFull = await measure(`/scim/v2/Groups/${groupIds[500]}`);

  const out = execFileSync(process.execPath, [join(ROOT, 'bench/fixtures/scim-mixed-load.ts'), `${url}/scim/v2`, token, String(Math.max(duration, 10)), String(mixedConnections), String(USERS), groupIds.slice(0, 200).join(',')], { encoding: 'utf8' });
  const mixed = JSON.parse(out) as { rps: number; total: number; errors: number; p50: number; p99: number; counts: Record<string, number> };

  const row = (name: string, r: { rps: number; p50: number; p99: number }, target: string, base = health) =>
    `| ${name} | ${fmt(r.rps, 0)} | ${fmt(r.rps / base.rps)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${target} |`;
  console.log(`## SCIM (${new Date().toISOString().slice(0, 10)})

${USERS.toLocaleString('en')} users and ${GROUPS.toLocaleString('en')} groups (100 members each) seeded in ${fmt(seedSeconds, 1)} s;
${loadGenerator}, ${duration} s per row after a 1 s warm-up; baseline = GET /healthz on the same process at the same concurrency;
load average before the run: ${loadBefore}.

| request | req/s | req/s vs baseline | p50 ms | p99 ms | target |
|---|---|---|---|---|---|
${row('c=2: GET /healthz (baseline)', health2, '', health2)}
${row('c=2: Users?filter=userName eq "…"', lookup2, 'p99 < 10 ms', health2)}
${row(`c=2: Users?startIndex=${USERS - 100}&count=100 (deepest page)`, page2, 'p99 < 50 ms', health2)}
${row('c=16: GET /healthz (baseline)', health, '')}
${row('c=16: Users?filter=userName eq "…"', lookup, '')}
${row('c=16: Users?filter=externalId eq "…"', lookupExt, '')}
${row('c=16: Users?startIndex=1&count=100', pageFirst, '')}
${row(`c=16: Users?startIndex=${USERS - 100}&count=100 (deepest page)`, pageDeep, '')}
${row('c=16: Groups?startIndex=501&count=100&excludedAttributes=members', groupsPage, '')}
${row('c=16: Groups/{id} (100 members)', groupFull, '')}

Mixed workload (separate load process, ${mixedConnections} concurrent loops, ${Math.max(duration, 10)} s; 40 % userName lookups, 20 % creates,
20 % user PATCHes (value-path email + name), 10 % group member adds, 10 % activation flips; every write audited):
**${fmt(mixed.rps, 0)} requests/s** (target ≥ 500), p50 ${fmt(mixed.p50, 1)} ms, p99 ${fmt(mixed.p99, 1)} ms, ${mixed.errors} errors of ${mixed.total}
(${Object.entries(mixed.counts).map(([k, v]) => `${k} ${v}`).join(', ')}).
`);
} finally {
  await stop(app);
}
