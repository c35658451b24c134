// Starts `node src/main.ts agent …` as real processes with a temp NEXUS_AGENT_HOME, and waits on their
// output with bounded waits.
import { spawn, type ChildProcess } from 'node:child_process';
import { MAIN, REPO, nexus } from './appliance.ts';

export interface AgentProcess {
  proc: ChildProcess;
  output(): string;
  /** Resolves when the output (from `from` on) matches; rejects after timeoutMs. */
  waitFor(pattern: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  exited(timeoutMs?: number): Promise<number | null>;
  stop(): Promise<void>;
}

export function startAgent(home: string, args: string[] = [], env: Record<string, string> = {}): AgentProcess {
  const proc = spawn(process.execPath, [MAIN, 'agent', 'start', ...args], {
    cwd: REPO,
    env: { ...process.env, ...env, NEXUS_AGENT_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d;
    for (const l of listeners) l();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exitP = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  return {
    proc,
    output: () => out,
    waitFor(pattern, timeoutMs = 20_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(out.slice(from));
          if (m) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(m[0]);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`agent output did not match ${pattern} within ${timeoutMs} ms:\n${out.slice(-3000)}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    exited(timeoutMs = 20_000) {
      return Promise.race([exitP, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`agent did not exit:\n${out.slice(-2000)}`)), timeoutMs))]);
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exitP;
      clearTimeout(timer);
    },
  };
}

export function agentCli(home: string, args: string[], env: Record<string, string> = {}, input?: string) {
  return nexus(['agent', ...args], { env: { NEXUS_AGENT_HOME: home, ...env }, ...(input !== undefined ? { input } : {}) });
}
