// Interleaved A/B of relayed bulk transfers (BENCHMARKS.md, "Hub and agent"): one local service and,
// for each checkout given, its own appliance + agent, all running at once; after a warm-up, every
// round moves AB_MB MiB direct (download, then upload) and then the same through each stack, the order
// of the stacks flipped every round, so that the versions see the same host (which drifts by tens of
// percent within a minute). Prints each run and, per stack, the medians: MB/s, the ratio to the direct
// run of the same round, CPU ms per MiB of appliance + agent (system part in brackets) and their minor
// page faults per MiB. Not part of `npm run bench` (it needs checkouts):
//   npx node bench/ab/hub-bulk.ts ROUNDS DIR_A [DIR_B …]
// where each DIR is a checkout with node_modules (a symlink to this one's will do). Environment:
// AB_MB MiB per transfer (default 512), AB_NODE_FLAGS extra Node flags for appliance and agent.
import { readFileSync, rmSync } from 'node:fs';
import { bulkDownload, bulkUpload, startHubService } from '../hub/service.ts';
import { stop } from '../lib.ts';
import { cpuSplit, minorFaults, startStack, type Stack } from '../hub/stack.ts';

const [rounds, ...roots] = process.argv.slice(2);
const ROUNDS = Number(rounds);
if (!(ROUNDS > 0) || !roots.length) {
  process.stderr.write('usage: npx node bench/ab/hub-bulk.ts ROUNDS DIR_A [DIR_B …]\n');
  process.exit(2);
}
const MB = 1024 * 1024;
const BYTES = Number(process.env.AB_MB ?? 512) * MB;
const TOKEN = 'bench-upstream-token';
const NODE_FLAGS = (process.env.AB_NODE_FLAGS ?? '').split(' ').filter(Boolean);
const dirs: string[] = [];

const { proc: upstream, url: upstreamUrl } = await startHubService(TOKEN);
const stacks: Stack[] = [];
for (const [i, r] of roots.entries()) stacks.push(await startStack(r!, String.fromCharCode(65 + i), upstreamUrl, TOKEN, dirs, NODE_FLAGS));

type Way = 'down' | 'up';
const bearer = { authorization: `Bearer ${TOKEN}` };
const move = (way: Way, base: string, headers: Record<string, string>, bytes = BYTES) =>
  way === 'down' ? bulkDownload(`${base}/download?bytes=${bytes}`, headers, bytes) : bulkUpload(`${base}/upload`, headers, bytes);

// Warm-up: a fresh appliance and agent run their relay path in V8's baseline tiers for a while.
for (const s of stacks) for (const way of ['down', 'up'] as const) await move(way, s.proxied, { 'x-api-key': s.pat }, 128 * MB);

interface Row { rate: number; ratio: number; cpu: number; sys: number; faults: number }
const results: Record<string, Record<Way, Row[]>> = {};
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 ? [...stacks].reverse() : stacks;
  for (const way of ['down', 'up'] as const) {
    const direct = await move(way, upstreamUrl, bearer);
    for (const s of order) {
      const a0 = cpuSplit(s.appliance.pid!);
      const g0 = cpuSplit(s.agent.pid!);
      const f0 = minorFaults(s.appliance.pid!) + minorFaults(s.agent.pid!);
      const rate = await move(way, s.proxied, { 'x-api-key': s.pat });
      const a1 = cpuSplit(s.appliance.pid!);
      const g1 = cpuSplit(s.agent.pid!);
      const f1 = minorFaults(s.appliance.pid!) + minorFaults(s.agent.pid!);
      const perMiB = (ms: number) => ms / (BYTES / MB);
      const row = { rate, ratio: rate / direct, cpu: perMiB(a1[0] + a1[1] - a0[0] - a0[1] + g1[0] + g1[1] - g0[0] - g0[1]), sys: perMiB(a1[1] - a0[1] + g1[1] - g0[1]), faults: perMiB(f1 - f0) };
      ((results[s.label] ??= { down: [], up: [] })[way]).push(row);
      process.stderr.write(`round ${round} ${way} ${s.label}: ${rate.toFixed(0)} MB/s (direct ${direct.toFixed(0)}, ratio ${row.ratio.toFixed(2)}) ${row.cpu.toFixed(2)} ms/MiB (sys ${row.sys.toFixed(2)}), ${row.faults.toFixed(0)} faults/MiB, load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}\n`);
    }
  }
}
const med = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };
for (const [label, ways] of Object.entries(results)) {
  const parts = (['down', 'up'] as const).map((way) => {
    const rows = ways[way];
    const m = (k: keyof Row) => med(rows.map((r) => r[k]));
    return `${way} ${m('rate').toFixed(0)} MB/s, ratio ${m('ratio').toFixed(2)}, ${m('cpu').toFixed(2)} ms/MiB (sys ${m('sys').toFixed(2)}), ${m('faults').toFixed(0)} faults/MiB [MB/s per round: ${rows.map((r) => r.rate.toFixed(0)).join(' ')}; ratios: ${rows.map((r) => r.ratio.toFixed(2)).join(' ')}]`;
  });
  process.stdout.write(`${label} ${roots[label.charCodeAt(0) - 65]}: ${parts.join('; ')}\n`);
}
await Promise.all(stacks.flatMap((s) => [stop(s.agent), stop(s.appliance)]).concat([stop(upstream)]));
for (const d of dirs) rmSync(d, { recursive: true, force: true });
