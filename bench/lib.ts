// Shared pieces of the benchmarks: load comes from a separate wrk or autocannon process, servers run as
// real processes, and every figure is reported next to a baseline measured in the same run.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  mean: number;
  errors: number;
  non2xx: number;
  total: number;
}

export interface LoadOptions {
  connections?: number;
  duration?: number;
  amount?: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  pipelining?: number;
}

/**
 * Which load generator drives the runs: `wrk` (C; latency in µs; ~40 % less CPU per request) when it is
 * installed (`apt-get install wrk`), else autocannon (Node; whole-millisecond latency; on this
 * 2-core machine its CPU comes out of what the servers under test get).
 * BENCH_LOADGEN=autocannon|wrk forces one. Every section says which one it used.
 */
export const loadGenerator: 'wrk' | 'autocannon' = (() => {
  const forced = process.env.BENCH_LOADGEN;
  if (forced === 'wrk' || forced === 'autocannon') return forced;
  if (forced) throw new Error(`BENCH_LOADGEN must be wrk or autocannon, not ${forced}`);
  return spawnSync('wrk', ['--version']).error ? 'autocannon' : 'wrk';
})();

/**
 * Runs the load generator in its own process (so it never shares an event loop with the server).
 * A fixed number of requests (`amount`) and pipelining always use autocannon (wrk runs for a duration).
 */
export function load(url: string, opts: LoadOptions = {}): Promise<LoadResult> {
  if (loadGenerator === 'wrk' && !opts.amount && !opts.pipelining) return wrk(url, opts);
  return autocannon(url, opts);
}

function run(cmd: string, args: string[], timeoutSeconds: number): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutSeconds * 1000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return rej(new Error(`${cmd} exited ${code}: ${err}`));
      res(out);
    });
  });
}

async function autocannon(url: string, opts: LoadOptions): Promise<LoadResult> {
  const args = [join(ROOT, 'node_modules/autocannon/autocannon.js'), '--json', '-c', String(opts.connections ?? 64)];
  if (opts.amount) args.push('-a', String(opts.amount));
  else args.push('-d', String(opts.duration ?? 5));
  if (opts.method) args.push('-m', opts.method);
  if (opts.pipelining) args.push('-p', String(opts.pipelining));
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}=${v}`);
  if (opts.body) args.push('-b', opts.body);
  args.push(url);
  const j = JSON.parse(await run(process.execPath, args, (opts.duration ?? 5) + 120)) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number; mean: number };
    errors: number;
    non2xx: number;
  };
  return { rps: j.requests.average, p50: j.latency.p50, p99: j.latency.p99, mean: j.latency.mean, errors: j.errors, non2xx: j.non2xx, total: j.requests.total };
}

// wrk's script: the request from files (no quoting of bodies into Lua), the summary as one JSON line.
// Latency is in µs in wrk and reported here in ms like autocannon's; `status` counts non-2xx/3xx answers.
const WRK_SCRIPT = String.raw`
local function slurp(p) local f = assert(io.open(p, "rb")); local s = f:read("*a"); f:close(); return s end
init = function(args)
  local dir = args[1]
  wrk.method = slurp(dir .. "/method")
  local body = slurp(dir .. "/body")
  if #body > 0 then wrk.body = body end
  for line in slurp(dir .. "/headers"):gmatch("[^\n]+") do
    local k, v = line:match("^([^:]+): (.*)$")
    wrk.headers[k] = v
  end
end
done = function(s, latency, requests)
  local e = s.errors
  io.write(string.format('{"requests":%d,"us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%.1f,"p99":%.1f,"mean":%.1f}\n',
    s.requests, s.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
`;

async function wrk(url: string, opts: LoadOptions): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-wrk-'));
  try {
    writeFileSync(join(dir, 'script.lua'), WRK_SCRIPT);
    writeFileSync(join(dir, 'method'), opts.method ?? 'GET');
    writeFileSync(join(dir, 'body'), opts.body ?? '');
    writeFileSync(join(dir, 'headers'), Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\n`).join(''));
    const duration = opts.duration ?? 5;
    const args = ['-t1', `-c${opts.connections ?? 64}`, `-d${duration}s`, '--timeout', '30s', '-s', join(dir, 'script.lua'), url];
    const out = await run('wrk', [...args, '--', dir], duration + 120);
    const j = JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
    const errors = j.connect! + j.read! + j.write! + j.timeout!;
    return { rps: j.requests! / (j.us! / 1e6), p50: j.p50! / 1000, p99: j.p99! / 1000, mean: j.mean! / 1000, errors, non2xx: j.status!, total: j.requests! };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function tempDir(prefix = 'nexus-bench-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Starts a process whose output is discarded (a benchmark must not be slowed by a full pipe). */
export function startQuiet(cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(cmd, args, { cwd: ROOT, stdio: 'ignore', env: { ...process.env, ...env } });
}

export async function waitFor(url: string, timeoutMs = 30_000, intervalMs = 5): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < timeoutMs) {
    try {
      const res = await fetch(url);
      if (res.ok) {
        await res.arrayBuffer();
        return performance.now() - start;
      }
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`);
}

export function stop(p: ChildProcess): Promise<void> {
  return new Promise((res) => {
    if (p.exitCode !== null || p.signalCode !== null) return res();
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.once('exit', () => {
      clearTimeout(t);
      res();
    });
    p.kill('SIGTERM');
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** A free loopback port (bind 0, read it back, release). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export const fmt = (n: number, digits = 2) => n.toFixed(digits);

/** CPU seconds (user + system) a process, or one of its threads, has used so far (/proc, 10 ms ticks). */
export function cpuSeconds(pid: number | undefined, thread?: number): number {
  const stat = readFileSync(thread ? `/proc/${pid}/task/${thread}/stat` : `/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * Finishes first-start setup of a fresh appliance (its setup token read from `dataDir`), signs in and
 * mints a personal token: `post` calls its JSON API, `auth` is the Bearer header for admin calls.
 */
/**
 * A fresh Nexus set up for the gateway benches: the mock upstream at `upUrl` as an OpenAI-compatible
 * provider, model `bench` (served by the upstream model `upstreamModel`, priced so usage has a cost)
 * and `stream64` (64 chunks 2 ms apart), and a virtual key for both, which it returns.
 */
export async function gatewaySetup(nxUrl: string, dataDir: string, upUrl: string, upstreamModel = 'bench'): Promise<string> {
  const { post, auth } = await adminSession(nxUrl, dataDir);
  const provider = (await post('/api/v1/providers', { name: 'mock', type: 'openai-compatible', base_url: `${upUrl}/v1`, api_key: 'sk-bench' }, auth)).id as string;
  await post('/api/v1/models', { name: 'bench', deployments: [{ provider_id: provider, upstream_model: upstreamModel }], input_price_per_mtok: 1, output_price_per_mtok: 2 }, auth);
  await post('/api/v1/models', { name: 'stream64', deployments: [{ provider_id: provider, upstream_model: 'chunks-64-tick-2' }] }, auth);
  return (await post('/api/v1/virtual-keys', { name: 'bench' }, auth)).key as string;
}

export async function adminSession(appUrl: string, dataDir: string, password = 'correct-horse-battery') {
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${appUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${path}: ${res.status} ${text}`);
    return JSON.parse(text);
  };
  const setupToken = readFileSync(join(dataDir, 'setup-token'), 'utf8').trim();
  await post('/api/v1/setup', { setup_token: setupToken, username: 'admin', password });
  const login = await fetch(`${appUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
  const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const { token } = (await post('/api/v1/tokens', { name: 'bench' }, { cookie })) as { token: string };
  return { post, pat: token, auth: { authorization: `Bearer ${token}` } };
}
