// One appliance + agent started from a given checkout, relaying to a local service: what the hub A/B
// tools (hub-c1.ts, hub-bulk.ts) run side by side, one per checkout, against the same service.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { adminSession, freePort, tempDir, waitFor } from '../lib.ts';

export interface Stack {
  label: string;
  appliance: ChildProcess;
  agent: ChildProcess;
  /** The service proxy's base for the service, `…/api/v1/proxy/s/svc` (append the service's path). */
  proxied: string;
  pat: string;
}

/**
 * Starts the checkout at `root` (a tree with node_modules): a fresh appliance, an agent enrolled through
 * the CLI holding the bearer `token` for `upstreamUrl`, service `svc` bound to that node. Temporary
 * directories it makes are added to `dirs` for the caller to remove.
 */
export async function startStack(root: string, label: string, upstreamUrl: string, token: string, dirs: string[], nodeFlags: string[] = []): Promise<Stack> {
  const MAIN = join(root, 'src/main.ts');
  const dataDir = tempDir('nexus-ab-');
  dirs.push(dataDir);
  const port = await freePort();
  const adminPort = await freePort();
  const appUrl = `http://127.0.0.1:${port}`;
  const appliance = spawn(process.execPath, [...nodeFlags, MAIN, 'serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`], {
    cwd: root, stdio: 'ignore', env: { ...process.env, NEXUS_LOG_LEVEL: 'warn', XDG_CACHE_HOME: join(dataDir, '.cache') },
  });
  await waitFor(`${appUrl}/ready`);
  const { post, auth, pat } = await adminSession(appUrl, dataDir);
  const agentHome = tempDir('nexus-ab-agent-');
  dirs.push(agentHome);
  const cli = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [MAIN, 'agent', ...args], { cwd: root, env: { ...process.env, NEXUS_AGENT_HOME: agentHome, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`agent ${args[0]}: ${r.stderr}`);
  };
  const node = await post('/api/v1/nodes', { name: 'bench' }, auth);
  cli(['enroll', '--url', `ws://127.0.0.1:${port}/ws`, '--token', node.registration_token]);
  cli(['credentials', 'add', '--service', 'svc', '--url', upstreamUrl, '--secret-format', 'bearer', '--secret-env', 'T'], { T: token });
  await post('/api/v1/keys', { slug: 'svc', endpoint_url: upstreamUrl, auth_method: 'bearer', nodes: [{ node_id: node.id }] }, auth);
  const agent = spawn(process.execPath, [...nodeFlags, MAIN, 'agent', 'start', '--log-level', 'warn'], { cwd: root, stdio: 'ignore', env: { ...process.env, NEXUS_AGENT_HOME: agentHome } });
  for (let i = 0; ; i++) {
    const n = await (await fetch(`${appUrl}/api/v1/nodes/${node.id}`, { headers: auth })).json() as { status: string };
    if (n.status === 'online') break;
    if (i > 300) throw new Error('agent did not come online');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { label, appliance, agent, proxied: `${appUrl}/api/v1/proxy/s/svc`, pat };
}

const stat = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');

/** CPU ms [user, system] a process has used so far (/proc, 10 ms ticks). */
export function cpuSplit(pid: number): [number, number] {
  const f = stat(pid);
  return [Number(f[11]) * 10, Number(f[12]) * 10];
}

/** Minor page faults of a process so far (each a page the kernel mapped on first touch). */
export function minorFaults(pid: number): number {
  return Number(stat(pid)[7]);
}
