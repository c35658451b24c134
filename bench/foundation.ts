// Foundation figures: cold start of dist/nexus to /ready, and /healthz throughput against a bare
// fastify hello-world measured in the same run (ratio).
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fmt, freePort, load, loadGenerator, median, ROOT, startQuiet, stop, tempDir, waitFor } from './lib.ts';

const exe = join(ROOT, 'dist/nexus');
if (!existsSync(exe) || process.argv.includes('--build')) {
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.ts')], { stdio: 'inherit' });
}

async function coldStart(): Promise<number> {
  const port = await freePort();
  const admin = await freePort();
  const t0 = performance.now();
  const p = startQuiet(exe, ['serve', '--data-dir', tempDir(), '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${admin}`], { XDG_CACHE_HOME: tempDir() });
  await waitFor(`http://127.0.0.1:${port}/ready`, 30_000, 2);
  const ms = performance.now() - t0;
  await stop(p);
  return ms;
}

const starts: number[] = [];
for (let i = 0; i < 5; i++) starts.push(await coldStart());

const duration = Number(process.env.BENCH_SECONDS ?? 5);
const helloPort = await freePort();
const hello = startQuiet(process.execPath, [join(ROOT, 'bench/fixtures/hello-fastify.ts'), String(helloPort)]);
await waitFor(`http://127.0.0.1:${helloPort}/healthz`);
await load(`http://127.0.0.1:${helloPort}/healthz`, { connections: 64, duration: 1 }); // warm-up
const base = await load(`http://127.0.0.1:${helloPort}/healthz`, { connections: 64, duration });
await stop(hello);

const port = await freePort();
const adminPort = await freePort();
const nx = startQuiet(exe, ['serve', '--data-dir', tempDir(), '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`], { XDG_CACHE_HOME: tempDir() });
await waitFor(`http://127.0.0.1:${port}/ready`);
await load(`http://127.0.0.1:${port}/healthz`, { connections: 64, duration: 1 });
const ours = await load(`http://127.0.0.1:${port}/healthz`, { connections: 64, duration });
await stop(nx);

console.log(`## Foundation (${new Date().toISOString().slice(0, 10)})

Load from ${loadGenerator}.

| measure | value |
|---|---|
| cold start of dist/nexus to /ready, median of 5 (first start: migrations, master key, setup token) | ${fmt(median(starts), 0)} ms (min ${fmt(Math.min(...starts), 0)}, max ${fmt(Math.max(...starts), 0)}) |
| /healthz, bare fastify hello-world, c=64, ${duration} s | ${fmt(base.rps, 0)} req/s, p50 ${fmt(base.p50)} ms, p99 ${fmt(base.p99)} ms |
| /healthz, dist/nexus (access log on, metrics on), c=64, ${duration} s | ${fmt(ours.rps, 0)} req/s, p50 ${fmt(ours.p50)} ms, p99 ${fmt(ours.p99)} ms |
| ratio nexus / bare fastify | **${fmt(ours.rps / base.rps)}** |
| errors | baseline ${base.errors + base.non2xx}, nexus ${ours.errors + ours.non2xx} |
`);
