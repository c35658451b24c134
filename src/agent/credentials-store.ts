// Upstream credentials held on the agent's host, one per service slug, sealed with the profile's key.
// They never leave this host: the agent injects them into requests it makes to the local service.
import { statSync } from 'node:fs';
import type { SecretFormat } from '../protocol/credentials.ts';
import type { AgentHome } from './home.ts';
import { AgentError, ensureDir, readJson, writeSecure } from './home.ts';

export interface CredentialEntry {
  service: string;
  /** Only requests to this origin and path prefix get the secret. */
  url: string;
  header: string;
  format: SecretFormat;
  updatedAt: string;
}

interface StoredEntry {
  url: string;
  header: string;
  format: SecretFormat;
  secret: string;
  updated_at: string;
}

interface Stored {
  version: 1;
  services: Record<string, StoredEntry>;
}

const aad = (service: string) => `credential:${service}`;

export function createCredentialsStore(home: AgentHome) {
  const path = home.file('credentials.json');
  // The parsed file, and the secrets opened from it so far (a request must not pay for a decryption).
  let cache: { stamp: string; data: Stored; opened: Map<string, string> } | null = null;
  // The file is looked at once per turn of the event loop: requests arriving together (dozens at a
  // time under load) share one stat, and a change made by `credentials add` is still seen by the
  // next request that arrives after it.
  let checked = false;
  const recheck = () => (checked = false);

  const load = (): NonNullable<typeof cache> => {
    if (checked && cache) return cache;
    checked = true;
    setImmediate(recheck).unref();
    let stamp = 'missing';
    try {
      const st = statSync(path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      /* no file yet */
    }
    if (cache?.stamp === stamp) return cache;
    const data = readJson<Stored>(path) ?? { version: 1, services: {} };
    if (data.version !== 1 || typeof data.services !== 'object') throw new AgentError(`${path} is not a credentials file this agent understands`);
    cache = { stamp, data, opened: new Map() };
    return cache;
  };
  const read = (): Stored => load().data;

  const write = (data: Stored) => {
    ensureDir(home.dir);
    writeSecure(path, JSON.stringify(data, null, 2) + '\n');
    cache = null;
  };

  return {
    path,
    /** Adds or replaces the credential for a service. */
    put(e: Omit<CredentialEntry, 'updatedAt'> & { secret: string }): void {
      const data = structuredClone(read());
      data.services[e.service] = {
        url: e.url,
        header: e.header,
        format: e.format,
        secret: home.box().seal(e.secret, aad(e.service)),
        updated_at: new Date().toISOString(),
      };
      write(data);
    },
    remove(service: string): boolean {
      const data = structuredClone(read());
      if (!data.services[service]) return false;
      delete data.services[service];
      write(data);
      return true;
    },
    list(): CredentialEntry[] {
      return Object.entries(read().services).map(([service, e]) => ({ service, url: e.url, header: e.header, format: e.format, updatedAt: e.updated_at }));
    },
    /** The entry and its secret; re-reads the file when it changed, so `add` applies to a running agent. */
    get(service: string): (CredentialEntry & { secret: string }) | null {
      const { data, opened } = load();
      const e = data.services[service];
      if (!e) return null;
      let secret = opened.get(service);
      if (secret === undefined) opened.set(service, (secret = home.box().open(e.secret, aad(service))));
      return { service, url: e.url, header: e.header, format: e.format, updatedAt: e.updated_at, secret };
    },
  };
}

export type CredentialsStore = ReturnType<typeof createCredentialsStore>;

// Every relayed request checks its target against the credential's URL; the parsed form of each URL
// is kept (there are as many as credentials, and a changed URL is a new key).
const scopes = new Map<string, { origin: string; prefix: string } | null>();

function scopeOf(credUrl: string): { origin: string; prefix: string } | null {
  let scope = scopes.get(credUrl);
  if (scope === undefined) {
    try {
      const base = new URL(credUrl);
      scope = { origin: base.origin, prefix: base.pathname.replace(/\/$/, '') };
    } catch {
      scope = null;
    }
    if (scopes.size >= 1000) scopes.clear();
    scopes.set(credUrl, scope);
  }
  return scope;
}

/** True when `target` is under the credential's URL: same origin, and inside its path. */
export function credentialCovers(credUrl: string, target: URL): boolean {
  const scope = scopeOf(credUrl);
  if (!scope || scope.origin !== target.origin) return false;
  const { prefix } = scope;
  return target.pathname === prefix || target.pathname.startsWith(`${prefix}/`) || prefix === '';
}
