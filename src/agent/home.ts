// Where an agent keeps its state: $NEXUS_AGENT_HOME (default ~/.nexus-agent), or profiles/NAME/ below
// it for `--profile NAME`. Directories are 0700, files 0600, written atomically (temp file + rename)
// so a crash never leaves half a file. Secrets inside are sealed with a per-profile key (agent.key).
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { agentHomeFromEnv } from '../core/config/config.ts';
import { KeyFileError, loadOrCreateKeyFile } from '../core/crypto/master-key.ts';
import { createSecretBox, type SecretBox } from '../core/crypto/secret-box.ts';

export const PROFILE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

export class AgentError extends Error {
  override name = 'AgentError';
  /** The command's exit code: 2 for a usage error (a missing or malformed flag), as in the operator CLI. */
  readonly exitCode: 1 | 2;
  constructor(message: string, exitCode: 1 | 2 = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

export interface AgentHome {
  /** $NEXUS_AGENT_HOME (or ~/.nexus-agent), whatever the profile. */
  root: string;
  dir: string;
  profile: string | null;
  file(name: string): string;
  box(): SecretBox;
}

export function agentHome(profile?: string | null): AgentHome {
  const root = agentHomeFromEnv() ?? join(homedir(), '.nexus-agent');
  if (profile && !PROFILE.test(profile)) throw new AgentError(`profile "${profile}" must be letters, digits, "-" or "_" (at most 63)`);
  const dir = profile ? join(root, 'profiles', profile) : root;
  let box: SecretBox | null = null;
  return {
    root,
    dir,
    profile: profile ?? null,
    file: (name) => join(dir, name),
    box() {
      box ??= createSecretBox(loadOrCreateKey(dir));
      return box;
    },
  };
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

function loadOrCreateKey(dir: string): Buffer {
  ensureDir(dir);
  try {
    return loadOrCreateKeyFile(join(dir, 'agent.key'), 'enroll again');
  } catch (err) {
    if (err instanceof KeyFileError) throw new AgentError(err.message);
    throw err;
  }
}

/** Writes a file with mode 0600 atomically. */
export function writeSecure(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function readJson<T>(path: string): T | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new AgentError(`${path} is not valid JSON; fix or remove it`);
  }
}
