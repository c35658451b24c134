// Hub and agent figures (issue 4), each next to its baseline from the same run: small requests direct
// to a local service vs through the appliance's service proxy, the hub and an agent (added latency p50
// and p99 at c=1 and c=64, wrk or autocannon in its own process); 1 GiB download and upload direct vs relayed
// (MB/s and ratio); and the appliance's resident memory per idle authenticated agent with 1,000 agents
// connected. Sizes: BENCH_HUB_BULK_MB (default 1024), BENCH_HUB_AGENTS (default 1000); the latency runs
// follow an unmeasured warm-up of BENCH_HUB_WARMUP_SECONDS (default 4; 0 for none); the bulk transfers
// (direct, through a bare TCP forwarder, relayed) follow one unmeasured transfer of
// BENCH_HUB_BULK_WARMUP_MB each way on every path (default BENCH_HUB_BULK_MB; 0 for none, which measures
// the first GiB through fresh processes, as every run before 2026-12-07 10:35 UTC did) and are medians of
// BENCH_HUB_BULK_ROUNDS rounds (default 3). For profiling:
// BENCH_HUB_PARTS (any of latency,bulk,idle; default all) and BENCH_HUB_PROFILE=<dir> (appliance and
// agent run with --cpu-prof into that directory).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createNodesService } from '../src/surfaces/hub/nodes-service.ts';
import { closeDatabase, openDatabase } from '../src/core/db/db.ts';
import { loadOrCreateMasterKey } from '../src/core/crypto/master-key.ts';
import { createSecretBox } from '../src/core/crypto/secret-box.ts';
import { createUsersStore } from '../src/core/identity/users-store.ts';
import type { Config } from '../src/core/config/config.ts';
import { authProof } from '../src/protocol/signing.ts';
import { SUBPROTOCOL } from '../src/protocol/version.ts';
import { bulkDownload, bulkUpload, startHubService } from './hub/service.ts';
import { adminSession, fmt, freePort, load, loadGenerator, type LoadResult, ROOT, startQuiet, stop, tempDir, waitFor } from './lib.ts';

const MB = 1024 * 1024;
const BULK = Number(process.env.BENCH_HUB_BULK_MB ?? 1024) * MB;
const AGENTS = Number(process.env.BENCH_HUB_AGENTS ?? 1000);
const duration = Number(process.env.BENCH_SECONDS ?? 5);
const MAIN = join(ROOT, 'src/main.ts');
const TOKEN = 'bench-upstream-token';
const PARTS = new Set((process.env.BENCH_HUB_PARTS ?? 'latency,bulk,idle').split(','));
const PROFILE = process.env.BENCH_HUB_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_HUB_PROFILE}`] : [];

// ---- the local service, in its own process ----
const { proc: upstream, url: upstreamUrl, port: upstreamPort } = await startHubService(TOKEN);

// ---- a bare TCP forwarder in front of the service: the least a relaying Node process can cost ----
const forwarderPort = await freePort();
const forwarderCode = `
import { connect, createServer } from 'node:net';
createServer((c) => {
  const u = connect(${upstreamPort}, '127.0.0.1');
  c.pipe(u);
  u.pipe(c);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
}).listen(${forwarderPort}, '127.0.0.1');
`;
const forwarder = spawn(process.execPath, ['--input-type=module', '-e', forwarderCode], { stdio: 'ignore' });
const forwarderUrl = `http://127.0.0.1:${forwarderPort}`;

// ---- the appliance ----
const dataDir = tempDir('nexus-bench-hub-');
const port = await freePort();
const adminPort = await freePort();
const appUrl = `http://127.0.0.1:${port}`;
const serve = () => startQuiet(process.execPath, [...PROFILE, MAIN, 'serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`], {
  NEXUS_LOG_LEVEL: 'warn',
  XDG_CACHE_HOME: join(dataDir, '.cache'),
});
let appliance = serve();
await waitFor(`${appUrl}/ready`);

const { post, auth, pat } = await adminSession(appUrl, dataDir);

// ---- one real agent through the CLI ----
const agentHome = tempDir('nexus-bench-agent-');
const cli = (args: string[], env: Record<string, string> = {}) => new Promise<void>((res, rej) => {
  const p = spawn(process.execPath, [MAIN, 'agent', ...args], { cwd: ROOT, env: { ...process.env, NEXUS_AGENT_HOME: agentHome, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`agent ${args[0]}: ${err}`))));
});
const node = await post('/api/v1/nodes', { name: 'bench' }, auth);
await cli(['enroll', '--url', `ws://127.0.0.1:${port}/ws`, '--token', node.registration_token]);
await cli(['credentials', 'add', '--service', 'svc', '--url', upstreamUrl, '--secret-format', 'bearer', '--secret-env', 'T'], { T: TOKEN });
await post('/api/v1/keys', { slug: 'svc', endpoint_url: upstreamUrl, auth_method: 'bearer', nodes: [{ node_id: node.id }] }, auth);
const agent = startQuiet(process.execPath, [...PROFILE, MAIN, 'agent', 'start', '--log-level', 'warn'], { NEXUS_AGENT_HOME: agentHome });
for (let i = 0; ; i++) {
  const n = await (await fetch(`${appUrl}/api/v1/nodes/${node.id}`, { headers: auth })).json() as { status: string };
  if (n.status === 'online') break;
  if (i > 300) throw new Error('agent did not come online');
  await new Promise((r) => setTimeout(r, 100));
}
const proxied = `${appUrl}/api/v1/proxy/s/svc`;

// ---- CPU of the relaying processes ----
const stat = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
/** CPU seconds [user, system] a process has used so far. */
const cpu = (pid: number) => {
  const f = stat(pid);
  return [Number(f[11]) / 100, Number(f[12]) / 100] as const;
};
/** Minor page faults of a process so far (each one a page the kernel had to map on first touch). */
const minorFaults = (pid: number) => Number(stat(pid)[7]);
const relayStat = () => [...cpu(appliance.pid!), minorFaults(appliance.pid!), ...cpu(agent.pid!), minorFaults(agent.pid!)];
/** Total CPU seconds of appliance + agent since `t0`; the split and the page faults go to stderr. */
const cpuSince = (what: string, t0: number[]) => {
  const d = relayStat().map((v, i) => v - t0[i]!);
  const ms = (s: number) => fmt((s * 1000) / (BULK / MB), 2);
  const faults = (n: number) => fmt(n / (BULK / MB), 1);
  process.stderr.write(`${what}: ms CPU per MiB — appliance user ${ms(d[0]!)} sys ${ms(d[1]!)}, agent user ${ms(d[3]!)} sys ${ms(d[4]!)}; minor faults per MiB — appliance ${faults(d[2]!)}, agent ${faults(d[5]!)}\n`);
  return d[0]! + d[1]! + d[3]! + d[4]!;
};

// ---- latency ----
/** Busy and total CPU ms of the whole machine so far (all cores, from /proc/stat). */
const machine = () => {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const all = f.reduce((a, b) => a + b, 0) * 10;
  return { busy: all - (f[3]! + f[4]!) * 10, all };
};
const procMs = (pid: number) => cpu(pid).reduce((a, b) => a + b, 0) * 1000;
interface Measured extends LoadResult {
  /** CPU µs per request: appliance, agent, the local service, the whole machine; busy share of all cores. */
  us: { appliance: number; agent: number; service: number; machine: number };
  busy: number;
}
const skipped: Measured = { rps: NaN, p50: NaN, p99: NaN, mean: NaN, errors: 0, non2xx: 0, total: 0, us: { appliance: NaN, agent: NaN, service: NaN, machine: NaN }, busy: NaN };
/** One load run with the CPU every process spent on it (like CPU per MiB, steadier than req/s). */
const latency = async (url: string, connections: number, headers: Record<string, string>): Promise<Measured> => {
  if (!PARTS.has('latency')) return skipped;
  const pids = [appliance.pid!, agent.pid!, upstream.pid!];
  const p0 = pids.map(procMs);
  const m0 = machine();
  const r = await load(url, { connections, duration, headers });
  const m1 = machine();
  const d = pids.map((pid, i) => procMs(pid) - p0[i]!);
  const per = (ms: number) => (ms * 1000) / r.total;
  return { ...r, us: { appliance: per(d[0]!), agent: per(d[1]!), service: per(d[2]!), machine: per(m1.busy - m0.busy) }, busy: (m1.busy - m0.busy) / (m1.all - m0.all) };
};
// Warm-up, not measured: a freshly started appliance and agent run their request path in V8's
// interpreter and baseline code for the first few thousand requests (the first 5 s at c=1 cost up to
// half as much again as the same run later); the figures below are for processes that have served
// some traffic, as a running appliance has.
const WARMUP = Number(process.env.BENCH_HUB_WARMUP_SECONDS ?? 4);
if (PARTS.has('latency') && WARMUP > 0) {
  await load(`${upstreamUrl}/small`, { connections: 8, duration: 1, headers: { authorization: `Bearer ${TOKEN}` } });
  await load(`${proxied}/small`, { connections: 64, duration: WARMUP, headers: { 'x-api-key': pat } });
  await load(`${proxied}/small`, { connections: 1, duration: 2, headers: { 'x-api-key': pat } });
}
const direct1 = await latency(`${upstreamUrl}/small`, 1, { authorization: `Bearer ${TOKEN}` });
const relay1 = await latency(`${proxied}/small`, 1, { 'x-api-key': pat });
const direct64 = await latency(`${upstreamUrl}/small`, 64, { authorization: `Bearer ${TOKEN}` });
const relay64 = await latency(`${proxied}/small`, 64, { 'x-api-key': pat });
for (const r of [direct1, relay1, direct64, relay64]) if (r.errors || r.non2xx) throw new Error(`errors during load: ${JSON.stringify(r)}`);

// ---- bulk ----
// The first GiB through a freshly started appliance and agent costs them about twice the CPU per MiB
// of every later one (3.6–5.1 against 2.0–2.7 ms down, BENCHMARKS.md 2026-12-07 10:35 UTC): V8 tiers
// up the relay path and both processes grow their heaps, page by page (33–47 minor faults per MiB
// each, ~0 later). A running appliance has moved bytes before, so every path (direct, forwarder,
// relayed) first moves one unmeasured transfer each way, then BENCH_HUB_BULK_ROUNDS rounds (default 3)
// move it again, direct → forwarder → relayed in each round; the figures are medians over the rounds
// and the ratio is the median of each round's relayed ÷ direct (the host drifts by tens of percent
// within a minute, so a ratio is taken between transfers seconds apart).
const ROUNDS = Number(process.env.BENCH_HUB_BULK_ROUNDS ?? 3);
const WARM_BULK = Number(process.env.BENCH_HUB_BULK_WARMUP_MB ?? BULK / MB) * MB;
interface Moved { rate: number; cpu: number; faults: number; machine: number; busy: number }
const none: Moved = { rate: NaN, cpu: NaN, faults: NaN, machine: NaN, busy: NaN };
/** Moves BULK bytes with `run`: its MB/s; CPU ms and minor faults per MiB of `pids`; the whole machine's CPU ms per MiB and the share of both cores busy. */
const onMachine = async (run: () => Promise<number>, pids: number[]): Promise<Moved> => {
  const m0 = machine();
  const c0 = pids.map(procMs);
  const f0 = pids.map(minorFaults);
  const rate = await run();
  const m1 = machine();
  const perMiB = (n: number) => n / (BULK / MB);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    rate,
    cpu: pids.length ? perMiB(sum(pids.map((pid, i) => procMs(pid) - c0[i]!))) : NaN,
    faults: pids.length ? perMiB(sum(pids.map((pid, i) => minorFaults(pid) - f0[i]!))) : NaN,
    machine: perMiB(m1.busy - m0.busy),
    busy: (m1.busy - m0.busy) / (m1.all - m0.all),
  };
};
const med = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
/** The medians of each figure over the rounds. */
const medianOf = (rows: Moved[]): Moved => (rows.length ? { rate: med(rows.map((r) => r.rate)), cpu: med(rows.map((r) => r.cpu)), faults: med(rows.map((r) => r.faults)), machine: med(rows.map((r) => r.machine)), busy: med(rows.map((r) => r.busy)) } : none);
type Way = 'download' | 'upload';
const bulk: Record<Way, { direct: Moved; forwarder: Moved; relayed: Moved; ratio: number }> = {
  download: { direct: none, forwarder: none, relayed: none, ratio: NaN },
  upload: { direct: none, forwarder: none, relayed: none, ratio: NaN },
};
if (PARTS.has('bulk')) {
  await waitFor(`${forwarderUrl}/health`);
  const bearer = { authorization: `Bearer ${TOKEN}` };
  const paths = [
    { name: 'direct', base: upstreamUrl, headers: bearer, pids: [] as number[] },
    { name: 'forwarder', base: forwarderUrl, headers: bearer, pids: [forwarder.pid!] },
    { name: 'relayed', base: proxied, headers: { 'x-api-key': pat }, pids: [appliance.pid!, agent.pid!] },
  ] as const;
  const move = (way: Way, base: string, headers: Record<string, string>, bytes: number) =>
    way === 'download' ? bulkDownload(`${base}/download?bytes=${bytes}`, headers, bytes) : bulkUpload(`${base}/upload`, headers, bytes);
  if (WARM_BULK > 0) for (const way of ['download', 'upload'] as const) for (const p of paths) await move(way, p.base, p.headers, WARM_BULK);
  for (const way of ['download', 'upload'] as const) {
    const rows: Record<(typeof paths)[number]['name'], Moved[]> = { direct: [], forwarder: [], relayed: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const p of paths) {
        const split0 = relayStat();
        rows[p.name].push(await onMachine(() => move(way, p.base, p.headers, BULK), [...p.pids]));
        if (p.name === 'relayed') cpuSince(`${way}, round ${round + 1}`, split0);
      }
      const [d, f, r] = [rows.direct.at(-1)!, rows.forwarder.at(-1)!, rows.relayed.at(-1)!];
      process.stderr.write(`${way}, round ${round + 1}: direct ${fmt(d.rate, 0)}, forwarder ${fmt(f.rate, 0)} (${fmt(f.cpu, 2)} ms/MiB), relayed ${fmt(r.rate, 0)} MB/s (${fmt(r.cpu, 2)} ms/MiB, ${fmt(r.faults, 1)} faults/MiB), ratio ${fmt(r.rate / d.rate)}\n`);
    }
    bulk[way] = { direct: medianOf(rows.direct), forwarder: medianOf(rows.forwarder), relayed: medianOf(rows.relayed), ratio: med(rows.relayed.map((r, i) => r.rate / rows.direct[i]!.rate)) };
  }
}
await stop(agent);

// ---- memory per idle agent ----
// The idle nodes are enrolled straight into the data dir with the hub's own service (the same rows the
// HTTP enrollment writes), then the appliance starts fresh, so its baseline carries no garbage from
// thousands of enrollment requests.
async function idleAgents() {
  await stop(appliance);
  const creds: Array<{ node_id: string; auth_token: string; signing_secret: string }> = [];
  {
    const db = openDatabase(join(dataDir, 'nexus.db'));
    const secretBox = createSecretBox(loadOrCreateMasterKey(dataDir));
    const owner = createUsersStore(db).getByUsername('admin')!;
    const nodes = createNodesService({ db, secretBox, config: { hub: { registrationTtlSeconds: 3600 } } as Config });
    for (let i = 0; i < AGENTS; i++) {
      const n = nodes.register({ kind: 'token', userId: owner.id, username: 'admin', role: 'admin', credentialId: 'bench' }, `idle-${i}`);
      creds.push(nodes.enroll(n.registration_token));
    }
    closeDatabase(db);
  }
  appliance = serve();
  await waitFor(`${appUrl}/ready`);
  const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${appliance.pid}/status`, 'utf8'))![1]);
  const heapUsed = async () => {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    return Number(/^nexus_nodejs_heap_size_used_bytes (\S+)/m.exec(text)![1]) / 1024;
  };
  const settle = () => new Promise((r) => setTimeout(r, 3000));
  // Warm the paths a connection uses once (first handshake compiles code), then measure.
  const sockets: WebSocket[] = [];
  const wsUrl = `ws://127.0.0.1:${port}/ws`;
  const connect = (c: (typeof creds)[number]) => new Promise<void>((res, rej) => {
    const ws = new WebSocket(wsUrl, SUBPROTOCOL, { perMessageDeflate: false });
    sockets.push(ws);
    ws.on('error', rej);
    ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as { t: string; nonce?: string };
      if (m.t === 'challenge') ws.send(JSON.stringify({ t: 'auth', node_id: c.node_id, auth_token: c.auth_token, nonce: m.nonce, proof: authProof(c.signing_secret, c.node_id, m.nonce!) }));
      if (m.t === 'auth_ok') res();
    });
  });
  await connect(creds[0]!);
  await settle();
  const before = rssKb();
  const heapBefore = await heapUsed();
  for (let i = 1; i < AGENTS; i += 50) await Promise.all(creds.slice(i, i + 50).map(connect));
  await settle();
  const after = rssKb();
  const heapAfter = await heapUsed();
  const agents = await (await fetch(`http://127.0.0.1:${adminPort}/api/hub/agents`)).json() as { items: unknown[] };
  for (const s of sockets) s.terminate();
  const perAgent = (after - before) / (AGENTS - 1);
  const heapPerAgent = (heapAfter - heapBefore) / (AGENTS - 1);
  return { before, after, perAgent, heapPerAgent, connected: agents.items.length };
}
const idle = PARTS.has('idle') ? await idleAgents() : { before: NaN, after: NaN, perAgent: NaN, heapPerAgent: NaN, connected: 0 };

await Promise.all([stop(appliance), stop(upstream), stop(forwarder)]);

const load1 = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
const row = (name: string, d: number, r: number) => `| ${name} | ${fmt(d)} ms | ${fmt(r)} ms | **${fmt(r - d)} ms** |`;
const bulkRow = (way: Way) => `| ${way} | ${fmt(bulk[way].direct.rate, 0)} MB/s | ${fmt(bulk[way].relayed.rate, 0)} MB/s | **${fmt(bulk[way].ratio)}** | ${fmt(bulk[way].relayed.cpu, 2)} ms (${fmt(bulk[way].relayed.faults, 1)} minor faults) |`;
process.stdout.write([
  '',
  '## Hub and agent',
  '',
  `Command: \`npm run bench -- hub\` (${new Date().toISOString().slice(0, 10)}, \`node src/main.ts\`, appliance at log level warn, agent through the CLI entry point, the local service in its own process; load from ${loadGenerator}; ${duration} s per latency run after ${WARMUP} s of unmeasured warm-up; load average ${load1} on this 2-core machine when it finished).`,
  '',
  '| small request (GET, 11-byte JSON) | direct to the service | through proxy + hub + agent | added |',
  '|---|---|---|---|',
  row('p50, c=1', direct1.p50, relay1.p50),
  row('p99, c=1', direct1.p99, relay1.p99),
  row('p50, c=64', direct64.p50, relay64.p50),
  row('p99, c=64', direct64.p99, relay64.p99),
  `| req/s, c=1 / c=64 | ${fmt(direct1.rps, 0)} / ${fmt(direct64.rps, 0)} | ${fmt(relay1.rps, 0)} / ${fmt(relay64.rps, 0)} | |`,
  `| CPU per relayed request (appliance + agent), c=1 / c=64 | | ${fmt((relay1.us.appliance + relay1.us.agent) / 1000, 3)} ms / ${fmt((relay64.us.appliance + relay64.us.agent) / 1000, 3)} ms | |`,
  '',
  `| c=64, CPU µs per request | direct | relayed |`,
  '|---|---|---|',
  `| appliance / agent | | ${fmt(relay64.us.appliance, 0)} / ${fmt(relay64.us.agent, 0)} |`,
  `| local service | ${fmt(direct64.us.service, 0)} | ${fmt(relay64.us.service, 0)} |`,
  `| load generator and the rest of the machine | ${fmt(direct64.us.machine - direct64.us.service, 0)} | ${fmt(relay64.us.machine - relay64.us.appliance - relay64.us.agent - relay64.us.service, 0)} |`,
  `| whole machine (2 cores) | ${fmt(direct64.us.machine, 0)} | ${fmt(relay64.us.machine, 0)} |`,
  `| cores busy | ${fmt(direct64.busy * 100, 0)} % | ${fmt(relay64.busy * 100, 0)} % |`,
  // Little's law: 64 requests in flight at a rate of at most 2 cores / (machine CPU per request).
  `| mean latency the machine's CPU allows at c=64 (64 × CPU per request / 2 cores) | ${fmt((64 * direct64.us.machine) / 2 / 1000)} ms | ${fmt((64 * relay64.us.machine) / 2 / 1000)} ms |`,
  `| measured mean latency | ${fmt(direct64.mean)} ms | ${fmt(relay64.mean)} ms |`,
  '',
  `| bulk, ${BULK / MB} MiB (median of ${ROUNDS} rounds after ${WARM_BULK / MB} MiB each way unmeasured) | direct | relayed | ratio (median of the rounds') | per MiB relayed (appliance + agent): CPU, page faults |`,
  '|---|---|---|---|---|',
  bulkRow('download'),
  bulkRow('upload'),
  '',
  `| bulk, ${BULK / MB} MiB: the whole machine | direct | through a bare TCP forwarder (one Node process piping the sockets) | relayed (appliance + agent) |`,
  '|---|---|---|---|',
  ...(['download', 'upload'] as const).map((way) => `| ${way}: MB/s, machine CPU per MiB, cores busy | ${(['direct', 'forwarder', 'relayed'] as const).map((p) => `${fmt(bulk[way][p].rate, 0)}, ${fmt(bulk[way][p].machine, 2)} ms, ${fmt(bulk[way][p].busy * 100, 0)} %`).join(' | ')} |`),
  `| CPU per MiB of the forwarding process(es): download / upload | | ${fmt(bulk.download.forwarder.cpu, 2)} / ${fmt(bulk.upload.forwarder.cpu, 2)} ms | ${fmt(bulk.download.relayed.cpu, 2)} / ${fmt(bulk.upload.relayed.cpu, 2)} ms |`,
  '',
  `| idle agents | value |`,
  '|---|---|',
  `| authenticated agents connected (admin API) | ${idle.connected} |`,
  `| appliance RSS before / after | ${fmt(idle.before / 1024, 1)} MiB / ${fmt(idle.after / 1024, 1)} MiB |`,
  `| RSS per idle agent | **${fmt(idle.perAgent, 1)} KB** |`,
  `| V8 heap used per idle agent | ${fmt(idle.heapPerAgent, 1)} KB |`,
  '',
].join('\n') + '\n');
