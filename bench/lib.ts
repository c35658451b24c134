// Shared pieces of the benchmarks: load comes from a separate autocannon process, servers run as
// real processes, and every figure is reported next to a baseline measured in the same run.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
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

/** Runs autocannon in its own process (so the load generator never shares an event loop with the server). */
export function load(url: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const args = [join(ROOT, 'node_modules/autocannon/autocannon.js'), '--json', '-c', String(opts.connections ?? 64)];
  if (opts.amount) args.push('-a', String(opts.amount));
  else args.push('-d', String(opts.duration ?? 5));
  if (opts.method) args.push('-m', opts.method);
  if (opts.pipelining) args.push('-p', String(opts.pipelining));
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}=${v}`);
  if (opts.body) args.push('-b', opts.body);
  args.push(url);
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), ((opts.duration ?? 5) + 120) * 1000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return rej(new Error(`autocannon exited ${code}: ${err}`));
      const j = JSON.parse(out) as {
        requests: { average: number; total: number };
        latency: { p50: number; p99: number; mean: number };
        errors: number;
        non2xx: number;
      };
      res({ rps: j.requests.average, p50: j.latency.p50, p99: j.latency.p99, mean: j.latency.mean, errors: j.errors, non2xx: j.non2xx, total: j.requests.total });
    });
  });
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
