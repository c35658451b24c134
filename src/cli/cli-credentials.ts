// Where the operator CLI keeps the appliance URL and the personal token `nexus login` obtained:
// $XDG_CONFIG_HOME/nexus/credentials.json (else ~/.config/nexus/…), directory 0700, file 0600.
// NEXUS_URL / NEXUS_TOKEN override it (CI), and --url overrides everything.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { cliEnv } from '../core/config/config.ts';

export interface StoredCredentials {
  url: string;
  token: string;
  username?: string;
}

export function credentialsPath(): string {
  const env = cliEnv();
  const base = env.configHome ?? join(env.home ?? homedir(), '.config');
  return join(base, 'nexus', 'credentials.json');
}

export function readCredentials(): StoredCredentials | null {
  try {
    const parsed = JSON.parse(readFileSync(credentialsPath(), 'utf8')) as Partial<StoredCredentials>;
    return typeof parsed.url === 'string' && typeof parsed.token === 'string' ? (parsed as StoredCredentials) : null;
  } catch {
    return null;
  }
}

export function writeCredentials(c: StoredCredentials): string {
  const path = credentialsPath();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return path;
}

/** The appliance base URL without a trailing slash; refuses anything but http(s). */
export function normalizeBaseUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new CliError(`"${raw}" is not a URL (expected e.g. https://nexus.example.com)`, 2);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new CliError(`"${raw}" must start with https:// or http://`, 2);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/** A failure to report as one line on stderr with exit code `code`. */
export class CliError extends Error {
  override name = 'CliError';
  code: number;
  constructor(message: string, code = 1) {
    super(message);
    this.code = code;
  }
}

/** URL and token for API commands: --url flag, else NEXUS_URL/NEXUS_TOKEN, else `nexus login`'s file. */
export function resolveTarget(flagUrl?: string): { url: string; token: string } {
  const env = cliEnv();
  const stored = readCredentials();
  const url = flagUrl ?? env.url ?? stored?.url;
  if (!url) throw new CliError('no appliance URL: run nexus login --url https://YOUR-APPLIANCE first (or set NEXUS_URL)', 2);
  const base = normalizeBaseUrl(url);
  const token = env.token ?? (stored && normalizeBaseUrl(stored.url) === base ? stored.token : undefined);
  if (!token) throw new CliError(`not signed in to ${base}: run nexus login --url ${base}`, 2);
  return { url: base, token };
}
