// Starts a real `nexus serve` process on loopback ports the OS picks, with a temp data dir, and
// reads the bound addresses back from its "nexus is ready" log line. Every wait is bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');
export const MAIN = join(REPO, 'src/main.ts');

export interface Appliance {
  url: string;
  adminUrl: string;
  dataDir: string;
  proc: ChildProcess;
  setupToken: string | null;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export interface StartOptions {
  dataDir?: string;
  env?: Record<string, string>;
  args?: string[];
  /** Run this executable instead of `node src/main.ts` (e.g. dist/nexus). */
  bin?: string;
  timeoutMs?: number;
}

export function tempDir(prefix = 'nexus-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startAppliance(opts: StartOptions = {}): Promise<Appliance> {
  const dataDir = opts.dataDir ?? tempDir();
  const args = ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...(opts.args ?? [])];
  const [cmd, cmdArgs] = opts.bin ? [opts.bin, args] : [process.execPath, [MAIN, ...args]];
  const proc = spawn(cmd, cmdArgs, {
    cwd: REPO,
    env: { ...process.env, NEXUS_LOG_LEVEL: 'info', XDG_CACHE_HOME: join(dataDir, '.cache'), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));

  const ready = await new Promise<{ public: string; admin: string }>((resolveReady, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`appliance did not become ready in time:\n${out}`));
    }, opts.timeoutMs ?? 30_000);
    const check = () => {
      for (const line of out.split('\n')) {
        if (!line.includes('"nexus is ready"')) continue;
        clearTimeout(timer);
        const rec = JSON.parse(line) as { public: string; admin: string };
        resolveReady(rec);
        return;
      }
    };
    proc.stdout!.on('data', check);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`appliance exited with ${code} before ready:\n${out}`));
    });
  });

  let setupToken: string | null = null;
  try {
    setupToken = readFileSync(join(dataDir, 'setup-token'), 'utf8').trim();
  } catch {
    /* setup already done */
  }

  return {
    url: `http://${ready.public}`,
    adminUrl: `http://${ready.admin}`,
    dataDir,
    proc,
    setupToken,
    output: () => out,
    stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      return new Promise((res) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return res(proc.exitCode);
        const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
        proc.once('exit', (code) => {
          clearTimeout(timer);
          res(code);
        });
        proc.kill(signal);
      });
    },
  };
}

/** Runs a command to completion (bounded) and returns its output. */
export function run(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; input?: string } = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((res, rej) => {
    const p = spawn(cmd, args, { cwd: opts.cwd ?? REPO, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      rej(new Error(`${cmd} ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    // 'close', not 'exit': at 'exit' the last of stdout/stderr may still be unread, so a command
    // that printed its error and exited could be seen with empty output (a test flaked that way).
    p.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
    // A command that exits before reading its stdin must not fail the test with EPIPE.
    p.stdin.on('error', () => {});
    p.stdin.end(opts.input ?? '');
  });
}

/** `node src/main.ts …` with the pinned Node. */
export function nexus(args: string[], opts: Parameters<typeof run>[2] = {}) {
  return run(process.execPath, [MAIN, ...args], opts);
}

/** The admin listener's Prometheus text, as value by `name{labels}` exactly as rendered (labels in the order written). */
export async function scrapeMetrics(app: Pick<Appliance, 'adminUrl'>): Promise<Map<string, number>> {
  const text = await (await fetch(`${app.adminUrl}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}
