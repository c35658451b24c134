import Database from 'better-sqlite3';
import { constants, accessSync, chmodSync, closeSync, mkdirSync, openSync, statSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadMigrations, type Migration } from './migrations/index.ts';
import { VERSION } from '../version.ts';

export type Db = Database.Database;

export class DataDirError extends Error {
  override name = 'DataDirError';
}

// @types/better-sqlite3 declares nativeBinding as a path only; the library also takes the loaded addon.
export interface OpenOptions {
  nativeBinding?: object | undefined;
  migrations?: Migration[];
}

/** Makes sure the data dir exists, is a directory and is writable; explains clearly when not. */
export function prepareDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new DataDirError(`data dir ${dir} exists but is not a directory`);
    if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') throw new DataDirError(`cannot create data dir ${dir}: ${code}`);
    throw err;
  }
  if (!statSync(dir).isDirectory()) throw new DataDirError(`data dir ${dir} exists but is not a directory`);
  try {
    accessSync(dir, constants.W_OK | constants.R_OK);
  } catch {
    throw new DataDirError(`data dir ${dir} is not writable by this user`);
  }
  // Root passes access() on a read-only mount; a real write tells the truth.
  const probe = join(dir, '.write-test');
  try {
    writeFileSync(probe, '');
  } catch (err) {
    throw new DataDirError(`data dir ${dir} is not writable: ${(err as NodeJS.ErrnoException).code}`);
  }
  rmSync(probe, { force: true });
}

/**
 * One process per data dir. The lock is an SQLite file held in EXCLUSIVE locking mode: the OS drops
 * the lock when the process dies (even on kill -9), so a crash never leaves a stale lock behind.
 */
export function acquireDataDirLock(dir: string, nativeBinding?: object): () => void {
  const path = join(dir, 'nexus.lock');
  const pidFile = join(dir, 'nexus.pid');
  const lock = new Database(path, { timeout: 0, ...(nativeBinding ? { nativeBinding: nativeBinding as unknown as string } : {}) });
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      let pid = '?';
      try {
        pid = readFileSync(pidFile, 'utf8').trim();
      } catch {
        /* best effort */
      }
      throw new DataDirError(`another nexus process (pid ${pid}) is already using data dir ${dir}; stop it first`);
    }
    throw err;
  }
  writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o600 });
  return () => {
    // A clean stop leaves no pid behind (a crash does: the next start overwrites it).
    try {
      if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) rmSync(pidFile, { force: true });
    } catch {
      /* gone already */
    }
    try {
      lock.exec('ROLLBACK');
    } catch {
      /* already released */
    }
    lock.close();
  };
}

/** The database and the files SQLite keeps beside it (WAL mode). */
const DB_FILES = ['', '-wal', '-shm'];

/**
 * The database holds users, audit and sealed secrets: owner-only, whatever the umask. SQLite creates
 * its files 0644 (SQLITE_DEFAULT_FILE_PERMISSIONS) less the umask, and gives -wal and -shm the main
 * file's mode (os_unix.c findCreateFileMode), so the main file is created 0600 before SQLite opens
 * it; files an earlier version left group- or world-readable are narrowed to 0600.
 */
function ownerOnly(path: string): void {
  if (path === ':memory:' || path.startsWith('file:')) return;
  try {
    closeSync(openSync(path, constants.O_CREAT | constants.O_RDWR, 0o600));
  } catch {
    return; // openDatabase says why it cannot open it
  }
  for (const suffix of DB_FILES) {
    try {
      if (statSync(path + suffix).mode & 0o077) chmodSync(path + suffix, 0o600);
    } catch {
      /* not there (yet), or not ours to change: SQLite's own errors say more */
    }
  }
}

/**
 * Why the data dir is open to other users, or null: the database and keys inside are 0600, but a
 * group- or world-readable dir still lists and exposes what else is there (backups, TLS files). It is
 * said, not changed: an operator may have opened it on purpose (a backup agent's group).
 */
export function dataDirExposure(dir: string): string | null {
  let mode: number;
  try {
    mode = statSync(dir).mode & 0o777;
  } catch {
    return null;
  }
  if (!(mode & 0o077)) return null;
  return `data dir ${dir} is accessible to ${mode & 0o007 ? 'all users' : 'its group'} (mode ${mode.toString(8).padStart(4, '0')}); restrict it with: chmod 700 ${dir}`;
}

export function openDatabase(path: string, opts: OpenOptions = {}): Db {
  let db: Db;
  ownerOnly(path);
  try {
    db = new Database(path, { timeout: 5000, ...(opts.nativeBinding ? { nativeBinding: opts.nativeBinding as unknown as string } : {}) });
    db.pragma('journal_mode = WAL');
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
      throw new DataDirError(`${path} is not a valid Nexus database (${code}); restore it from backup or move it away`);
    }
    if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY') {
      throw new DataDirError(`cannot open ${path} for writing (${code})`);
    }
    throw err;
  }
  connectionSettings(db);
  const check = db.pragma('quick_check', { simple: true });
  if (check !== 'ok') {
    db.close();
    throw new DataDirError(`${path} failed its integrity check (${String(check)}); restore it from backup`);
  }
  migrate(db, opts.migrations ?? loadMigrations());
  immediateTransactions(db);
  return db;
}

export function migrate(db: Db, migrations: Migration[]): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const applied = new Set(
    (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version),
  );
  // A data dir a newer Nexus has used holds tables and rows this one does not know; writing to it
  // could break them for that version, so it is refused, as `nexus restore` refuses such a backup.
  const known = new Set(migrations.map((m) => m.version));
  const newer = [...applied].filter((v) => !known.has(v)).sort((a, b) => a - b);
  if (newer.length) {
    db.close();
    throw new DataDirError(`the database was last used by a newer Nexus (schema ${newer.join(', ')} unknown to ${VERSION}); run that version or a later one, or restore a backup made by this one into a new data dir`);
  }
  const ran: number[] = [];
  for (const m of migrations) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        new Date().toISOString(),
      );
    })();
    ran.push(m.version);
  }
  return ran;
}

/**
 * Prepares each distinct SQL text once, for statements built per call from the columns or filters it
 * uses (a handful of shapes, each prepared on first use; preparing is a measurable share of a small
 * query). Bounded: past `max` shapes the cache starts over.
 */
export function statementCache(db: Db, max = 500): (sql: string) => Database.Statement<unknown[]> {
  const cache = new Map<string, Database.Statement<unknown[]>>();
  return (sql) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      if (cache.size >= max) cache.clear();
      cache.set(sql, (stmt = db.prepare(sql)));
    }
    return stmt;
  };
}

/** Per-connection settings every connection to the database file uses (this one and the write thread's). */
export function connectionSettings(db: Db): void {
  db.pragma('foreign_keys = ON');
  db.pragma('synchronous = NORMAL'); // WAL + NORMAL: durable across process crashes, fast commits
  db.pragma('busy_timeout = 5000');
  // Statement journals (a multi-row INSERT inside a transaction needs one) and temp tables stay in
  // memory: by default SQLite spills a journal over 64 KiB to a new file in /var/tmp on every batch.
  db.pragma('temp_store = MEMORY');
}

/** Flush the WAL into the main file and close; called last on shutdown. */
export function closeDatabase(db: Db): void {
  if (!db.open) return;
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/**
 * Transactions on this connection take the write lock at BEGIN (BEGIN IMMEDIATE), waiting for it up
 * to the busy timeout. The default (deferred) BEGIN takes it at the first write: a transaction that
 * reads, then writes, fails at once with SQLITE_BUSY or SQLITE_BUSY_SNAPSHOT when another connection
 * (the write thread, write-thread.ts) commits or holds the lock in between, and no busy timeout helps
 * a transaction that already read. Nested transactions stay savepoints.
 */
export function immediateTransactions(db: Db): void {
  const transaction = db.transaction.bind(db);
  db.transaction = ((fn: (...args: unknown[]) => unknown) => {
    const t = transaction(fn);
    return Object.assign((...args: unknown[]) => t.immediate(...args), {
      default: t.immediate,
      deferred: t.deferred,
      immediate: t.immediate,
      exclusive: t.exclusive,
      database: db,
    });
  }) as Db['transaction'];
}
