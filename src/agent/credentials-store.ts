// Upstream credentials held on the agent's host, one per service slug, sealed with the profile's key.
// They never leave this host: the agent injects them into requests it makes to the local service.
import { statSync, watch as fsWatch, type FSWatcher } from 'node:fs';
import { basename } from 'node:path';
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
  // When the file may have changed since it was last looked at. A running agent watches the
  // directory (the file is replaced by a rename, so the directory is what sees it): a change made by
  // `credentials add` marks the cache stale and the next request reads the file again, while requests
  // in between cost no system call. The kernel queues the change before `add` returns, ahead of any
  // request sent after it, so that request is served with the new file. Without a watch (none set up
  // yet, or the platform refused one) the file is looked at once per turn of the event loop.
  let stale = true;
  let watching = false;
  let watcher: FSWatcher | null = null;
  const recheck = () => (stale = true);
  const watch = () => {
    if (watcher) return;
    try {
      watcher = fsWatch(home.dir, { persistent: false }, (_event, name) => {
        if (name === null || name === basename(path)) stale = true;
      });
      watching = true;
      watcher.on('error', () => {
        // The directory went away or the watch broke: back to looking at the file every turn.
        watching = false;
        stale = true;
        watcher?.close();
      });
    } catch {
      watching = false;
    }
  };

  const load = (): NonNullable<typeof cache> => {
    if (!stale && cache) return cache;
    stale = false;
    if (!watching) setImmediate(recheck).unref();
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
      if (!Object.hasOwn(data.services, service)) return false;
      delete data.services[service];
      write(data);
      return true;
    },
    list(): CredentialEntry[] {
      return Object.entries(read().services).map(([service, e]) => ({ service, url: e.url, header: e.header, format: e.format, updatedAt: e.updated_at }));
    },
    /** The entry and its secret; re-reads the file when it changed, so `add` applies to a running agent. */
    get(service: string): (CredentialEntry & { secret: string }) | null {
      watch();
      const { data, opened } = load();
      // Own entries only: a slug such as "constructor" is valid and must not find Object's.
      const e = Object.hasOwn(data.services, service) ? data.services[service] : undefined;
      if (!e) return null;
      let secret = opened.get(service);
      if (secret === undefined) opened.set(service, (secret = home.box().open(e.secret, aad(service))));
      return { service, url: e.url, header: e.header, format: e.format, updatedAt: e.updated_at, secret };
    },
    /** Stops watching the file (a later `get` starts again). */
    close(): void {
      watcher?.close();
      watcher = null;
      watching = false;
      stale = true;
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
