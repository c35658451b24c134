// Interleaved A/B of the gateway at c=64 (BENCHMARKS.md, "AI gateway", 2026-12-07 03:01): one mock
// upstream and, for each checkout given, its own Nexus, all running at once; after a warm-up, every
// round runs wrk against each in turn, the order flipped every round, so the versions see the same
// host (which drifts by tens of percent within a minute). Prints each run and the medians: req/s and
// CPU µs per request of the whole process and of its main thread. Not part of `npm run bench`:
//   npx node bench/ab/gateway-c64.ts ROUNDS SECONDS DIR_A [DIR_B …]
// where each DIR is a checkout with node_modules (a symlink to this one's will do). Environment:
// AB_BARE=1 adds bench/fixtures/bare-proxy.ts as a stack (a floor for the request thread), AB_BARE=2
// that and bench/fixtures/bare-proxy-raw.ts (the same without undici);
// AB_FIXTURES a space-separated list of bench/fixtures files to run as stacks instead, each FILE[:THREADS]
// (THREADS reaches the fixture as BARE_THREADS);
// AB_UPSTREAM_MODEL the mock's model behind `bench` (e.g. chunks-2000 for ~12 KB answers);
// AB_ENV_<i> extra environment for the i-th Nexus, as NAME=VALUE pairs separated by spaces;
// AB_OTLP_SINK=1 starts a local OTLP/HTTP receiver that reads each export and answers 200 without
// decoding it, whose URL `$OTLP_SINK` stands for in AB_ENV_<i> (NEXUS_OTLP_ENDPOINT=$OTLP_SINK:
// export on, every request sampled unless OTEL_TRACES_SAMPLER says otherwise).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { cpuSeconds, freePort, gatewaySetup, load, median, ROOT, startQuiet, stop, tempDir, waitFor } from '../lib.ts';

const [rounds, seconds, ...roots] = process.argv.slice(2);
const ROUNDS = Number(rounds);
const SECONDS = Number(seconds);
if (!(ROUNDS > 0) || !(SECONDS > 0) || !roots.length) {
  process.stderr.write('usage: npx node bench/ab/gateway-c64.ts ROUNDS SECONDS DIR_A [DIR_B …]\n');
  process.exit(2);
}
const body = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'hello there' }] });

const upPort = await freePort();
const upstream = startQuiet(process.execPath, [join(ROOT, 'bench/fixtures/llm-upstream-server.ts'), String(upPort)]);
const upUrl = `http://127.0.0.1:${upPort}`;
for (let i = 0; i < 200; i++) {
  if (await fetch(`${upUrl}/v1/chat/completions`, { method: 'POST', body }).then((r) => r.ok, () => false)) break;
  await new Promise((r) => setTimeout(r, 25));
}

let sink = '';
if (process.env.AB_OTLP_SINK === '1') {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  server.unref();
  sink = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Stack { name: string; url: string; pid: number; key: string; stop(): Promise<void> }
const stacks: Stack[] = [];
for (const [i, root] of roots.entries()) {
  const port = await freePort();
  const dataDir = tempDir();
  const env = Object.fromEntries((process.env[`AB_ENV_${i}`] ?? '').split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1).replaceAll('$OTLP_SINK', sink)] as [string, string]));
  const proc = startQuiet(process.execPath, [join(root, 'src/main.ts'), 'serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${await freePort()}`], { XDG_CACHE_HOME: tempDir(), ...env });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/ready`);
  const key = await gatewaySetup(url, dataDir, upUrl, process.env.AB_UPSTREAM_MODEL ?? 'bench');
  stacks.push({ name: `${String.fromCharCode(65 + i)} ${root}`, url, pid: proc.pid!, key, stop: () => stop(proc) });
}
for (const fixture of process.env.AB_FIXTURES ? process.env.AB_FIXTURES.split(' ') : process.env.AB_BARE === '1' ? ['bare-proxy.ts'] : process.env.AB_BARE === '2' ? ['bare-proxy.ts', 'bare-proxy-raw.ts'] : []) {
  const port = await freePort();
  const [file, threads] = fixture.split(':');
  const proc = startQuiet(process.execPath, [join(ROOT, 'bench/fixtures', file!), String(port), upUrl], { BARE_THREADS: threads ?? '1' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200 && !(await fetch(url, { method: 'POST', body }).then((r) => r.ok, () => false)); i++) await new Promise((r) => setTimeout(r, 25));
  stacks.push({ name: fixture, url, pid: proc.pid!, key: 'bare', stop: () => stop(proc) });
}

const run = (s: Stack, secs: number) => load(`${s.url}/v1/chat/completions`, { connections: 64, duration: secs, method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${s.key}` }, body });
for (const s of stacks) await run(s, 3); // warm-up
const results = new Map<Stack, { rps: number; cpu: number; main: number }[]>(stacks.map((s) => [s, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const s of r % 2 ? [...stacks].reverse() : stacks) {
    const [cpu0, main0] = [cpuSeconds(s.pid), cpuSeconds(s.pid, s.pid)];
    const res = await run(s, SECONDS);
    if (res.non2xx || res.errors) throw new Error(`${s.name}: ${res.non2xx} non-2xx, ${res.errors} errors`);
    const x = { rps: res.rps, cpu: ((cpuSeconds(s.pid) - cpu0) / res.total) * 1e6, main: ((cpuSeconds(s.pid, s.pid) - main0) / res.total) * 1e6 };
    results.get(s)!.push(x);
    console.log(`round ${r + 1} ${s.name}: ${Math.round(x.rps)} req/s, ${Math.round(x.cpu)} µs CPU per request (main thread ${Math.round(x.main)})`);
  }
}
console.log('\nmedians:');
for (const s of stacks) {
  const xs = results.get(s)!;
  console.log(`${s.name}: ${Math.round(median(xs.map((x) => x.rps)))} req/s, ${Math.round(median(xs.map((x) => x.cpu)))} µs CPU per request (main thread ${Math.round(median(xs.map((x) => x.main)))})`);
}
await Promise.all([...stacks.map((s) => s.stop()), stop(upstream)]);
