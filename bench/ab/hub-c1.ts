// Interleaved A/B of the relayed small request (BENCHMARKS.md, "Hub and agent", 2026-12-07): one local
// service and, for each checkout given, its own appliance + agent, all running at once; after a warm-up,
// every round runs a short direct baseline and then one load run against each stack, the order flipped
// every round, so that the versions see the same host (which drifts by tens of percent within a
// minute). Prints each run and the medians: added p50 (relayed − direct), req/s, CPU µs per request of
// appliance and agent (system part in brackets). Not part of `npm run bench` (it needs checkouts):
//   npx node bench/ab/hub-c1.ts ROUNDS SECONDS DIR_A [DIR_B …]
// where each DIR is a checkout with node_modules (a symlink to this one's will do). Environment:
// AB_C connections (default 1), AB_WARM seconds at c=64 before the rounds (default 4), AB_NODE_FLAGS
// extra Node flags for appliance and agent (e.g. --perf-basic-prof), AB_HOOK a shell command run
// alongside one load run per stack in round AB_HOOK_ROUND (default 0) with APP_PID, AGENT_PID, LABEL
// and SECS set (e.g. `perf record -p $APP_PID,$AGENT_PID -- sleep $SECS`).
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { startHubService } from '../hub/service.ts';
import { load, stop } from '../lib.ts';
import { cpuSplit, startStack, type Stack } from '../hub/stack.ts';

const [rounds, seconds, ...roots] = process.argv.slice(2);
const ROUNDS = Number(rounds);
const SECONDS = Number(seconds);
if (!(ROUNDS > 0) || !(SECONDS > 0) || !roots.length) {
  process.stderr.write('usage: npx node bench/ab/hub-c1.ts ROUNDS SECONDS DIR_A [DIR_B …]\n');
  process.exit(2);
}
const dirs: string[] = [];
const C = Number(process.env.AB_C ?? 1);
const TOKEN = 'bench-upstream-token';
const NODE_FLAGS = (process.env.AB_NODE_FLAGS ?? '').split(' ').filter(Boolean);

const { proc: upstream, url: upstreamUrl } = await startHubService(TOKEN);

const stacks: Stack[] = [];
for (const [i, r] of roots.entries()) stacks.push(await startStack(r!, String.fromCharCode(65 + i), upstreamUrl, TOKEN, dirs, NODE_FLAGS));
const url = (s: Stack) => `${s.proxied}/small`;
// warm up
for (const s of stacks) { await load(url(s), { connections: 64, duration: Number(process.env.AB_WARM ?? 4), headers: { 'x-api-key': s.pat } }); await load(url(s), { connections: C, duration: 2, headers: { 'x-api-key': s.pat } }); }
await load(`${upstreamUrl}/small`, { connections: C, duration: 1, headers: { authorization: `Bearer ${TOKEN}` } });

const results: Record<string, Array<{ p50: number; mean: number; rps: number; app: number; agent: number; appSys: number; agentSys: number; direct: number }>> = {};
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 ? [...stacks].reverse() : stacks;
  const d = await load(`${upstreamUrl}/small`, { connections: C, duration: 2, headers: { authorization: `Bearer ${TOKEN}` } });
  for (const s of order) {
    const a0 = cpuSplit(s.appliance.pid!);
    const g0 = cpuSplit(s.agent.pid!);
    let hook: Promise<unknown> | null = null;
    if (round === Number(process.env.AB_HOOK_ROUND ?? 0) && process.env.AB_HOOK) {
      const h = spawn('bash', ['-c', process.env.AB_HOOK], { stdio: 'inherit', env: { ...process.env, APP_PID: String(s.appliance.pid), AGENT_PID: String(s.agent.pid), LABEL: s.label, SECS: String(SECONDS) } });
      hook = new Promise((res) => h.once('exit', res));
    }
    const r = await load(url(s), { connections: C, duration: SECONDS, headers: { 'x-api-key': s.pat } });
    if (hook) await hook;
    const a1 = cpuSplit(s.appliance.pid!);
    const g1 = cpuSplit(s.agent.pid!);
    if (r.errors || r.non2xx) throw new Error(`errors: ${JSON.stringify(r)}`);
    const per = (ms: number) => (ms * 1000) / r.total;
    const row = { p50: r.p50, mean: r.mean, rps: r.rps, app: per(a1[0]! + a1[1]! - a0[0]! - a0[1]!), agent: per(g1[0]! + g1[1]! - g0[0]! - g0[1]!), appSys: per(a1[1]! - a0[1]!), agentSys: per(g1[1]! - g0[1]!), direct: d.p50 };
    (results[s.label] ??= []).push(row);
    process.stderr.write(`round ${round} ${s.label}: p50 ${(r.p50 * 1000).toFixed(0)} µs (direct ${(d.p50 * 1000).toFixed(0)}) mean ${(r.mean * 1000).toFixed(0)} rps ${r.rps.toFixed(0)} app ${row.app.toFixed(0)} µs (sys ${row.appSys.toFixed(0)}) agent ${row.agent.toFixed(0)} µs (sys ${row.agentSys.toFixed(0)}) load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}\n`);
  }
}
const med = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };
for (const [label, rows] of Object.entries(results)) {
  const m = (k: keyof (typeof rows)[number]) => med(rows.map((r) => r[k]));
  const added = med(rows.map((r) => r.p50 - r.direct));
  process.stdout.write(`${label} ${roots[label.charCodeAt(0) - 65]}: median p50 ${(m('p50') * 1000).toFixed(0)} µs, added ${(added * 1000).toFixed(0)} µs, mean ${(m('mean') * 1000).toFixed(0)} µs, rps ${m('rps').toFixed(0)}, app ${m('app').toFixed(0)} µs (sys ${m('appSys').toFixed(0)}), agent ${m('agent').toFixed(0)} µs (sys ${m('agentSys').toFixed(0)}); added p50 per round: ${rows.map((r) => ((r.p50 - r.direct) * 1000).toFixed(0)).join(' ')}\n`);
}
await Promise.all(stacks.flatMap((s) => [stop(s.agent), stop(s.appliance)]).concat([stop(upstream)]));
for (const d of dirs) rmSync(d, { recursive: true, force: true });
