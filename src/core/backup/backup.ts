// Backup and restore of a data dir as one file (docs/backup.md). A backup holds a consistent copy of
// the database, taken with `VACUUM INTO` while the appliance keeps serving, and — unless it is made
// without keys — the master key and the TLS certificate and key, which are sealed with a passphrase.
//
// File layout:
//   "NEXUS-BACKUP 1\n"
//   header JSON "\n"   what anyone may read: when, which Nexus, schema versions, the key check, the seal
//   body               zstd( u32 manifest length | manifest JSON | database bytes ), and when sealed
//                      AES-256-GCM of that under a scrypt key (magic + header as associated data),
//                      followed by the 16-byte tag
// The manifest carries the database's size and SHA-256 and, when sealed, the key files.
import { createCipheriv, createDecipheriv, type DecipherGCM, createHash, createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { chownSync, closeSync, createReadStream, createWriteStream, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, readFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createZstdCompress, createZstdDecompress } from 'node:zlib';
import Database from 'better-sqlite3';
import { acquireDataDirLock } from '../db/db.ts';
import type { Migration } from '../db/migrations/index.ts';

export class BackupError extends Error {
  override name = 'BackupError';
}

const MAGIC = Buffer.from('NEXUS-BACKUP 1\n');
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_MANIFEST_BYTES = 1024 * 1024;
const TAG_BYTES = 16;
export const MIN_PASSPHRASE_LENGTH = 12;
/** The files beside the database a sealed backup carries (relative to the data dir). */
const KEY_FILES = ['master.key', 'tls/cert.pem', 'tls/key.pem'] as const;
// scrypt at 128 MiB: about half a second here, and costly to guess at scale. A header may name other
// parameters (a later version may raise them), within bounds that keep a crafted file from asking
// for gigabytes.
const SCRYPT = { N: 2 ** 17, r: 8, p: 1 };

export interface Seal {
  cipher: 'aes-256-gcm';
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
  iv: string;
  /** HMAC of a fixed text under the derived key: tells a wrong passphrase from a damaged file. */
  check: string;
}

export interface BackupHeader {
  format: 1;
  created_at: string;
  nexus_version: string;
  /** Migration versions applied to the database. */
  schema: number[];
  /** Identifies the master key the database's sealed secrets need (not the key itself). */
  key_check: string;
  /** What the body holds besides the database. */
  files: string[];
  seal: Seal | null;
}

interface Manifest {
  db_bytes: number;
  db_sha256: string;
  files: Record<string, string>;
}

/** A short, non-reversible fingerprint of a master key. */
export function keyCheck(masterKey: Buffer): string {
  return createHmac('sha256', masterKey).update('nexus backup: master key check').digest('hex').slice(0, 32);
}

/** The seal's key from a passphrase, on the thread pool (about half a second at the default cost). */
function deriveKey(passphrase: string, seal: Pick<Seal, 'N' | 'r' | 'p' | 'salt'>): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(passphrase.normalize('NFC'), Buffer.from(seal.salt, 'base64'), 32, { N: seal.N, r: seal.r, p: seal.p, maxmem: 256 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))));
}

const passphraseCheck = (key: Buffer) => createHmac('sha256', key).update('nexus backup: passphrase check').digest('base64');

export interface CreateOptions {
  dataDir: string;
  /** Where the backup goes; written to a temporary name beside it and renamed when complete. */
  out: string;
  /** Seals the key files into the backup; null leaves them out. */
  passphrase: string | null;
  version: string;
  nativeBinding?: object | undefined;
}

export interface CreateResult {
  header: BackupHeader;
  bytes: number;
  dbBytes: number;
}

export async function createBackup(opts: CreateOptions): Promise<CreateResult> {
  const dbPath = join(opts.dataDir, 'nexus.db');
  if (!existsSync(dbPath)) throw new BackupError(`${opts.dataDir} holds no database (nexus.db): nothing to back up`);
  const masterKey = readMasterKey(opts.dataDir);
  if (opts.passphrase !== null && opts.passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new BackupError(`the passphrase must have at least ${MIN_PASSPHRASE_LENGTH} characters`);
  }
  const tag = randomBytes(6).toString('hex');
  const snapshot = join(dirname(opts.out), `.${basename(opts.out)}.${tag}.db`);
  const partial = join(dirname(opts.out), `.${basename(opts.out)}.${tag}.partial`);
  try {
    const schema = snapshotDatabase(dbPath, snapshot, opts.nativeBinding);
    const keyFiles: Record<string, Buffer> = {};
    if (opts.passphrase !== null) {
      for (const name of KEY_FILES) {
        const path = join(opts.dataDir, name);
        if (existsSync(path)) keyFiles[name] = readFileSync(path);
      }
    }
    const header = await packBackup({ snapshot, schema, masterKey, keyFiles, passphrase: opts.passphrase, version: opts.version }, createWriteStream(partial, { mode: 0o600 }));
    const fd = openSync(partial, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(partial, opts.out);
    return { header, bytes: statSync(opts.out).size, dbBytes: statSync(snapshot).size };
  } finally {
    rmSync(snapshot, { force: true });
    rmSync(partial, { force: true });
  }
}

export function readMasterKey(dataDir: string): Buffer {
  let masterKey: Buffer;
  try {
    masterKey = readFileSync(join(dataDir, 'master.key'));
  } catch (err) {
    throw new BackupError(`cannot read ${join(dataDir, 'master.key')}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (masterKey.length !== 32) throw new BackupError(`${join(dataDir, 'master.key')} is damaged (${masterKey.length} bytes)`);
  return masterKey;
}

/**
 * Copies the database at `dbPath` to `to` with VACUUM INTO and returns its migration versions.
 * VACUUM INTO reads one snapshot in a single read transaction: the appliance's writers go on (WAL),
 * and the copy is consistent and compact. Migrations are not run. Synchronous: the appliance calls it
 * on a worker thread (snapshot-worker.ts).
 */
export function snapshotDatabase(dbPath: string, to: string, nativeBinding?: object): number[] {
  const db = new Database(dbPath, { fileMustExist: true, timeout: 10_000, ...(nativeBinding ? { nativeBinding: nativeBinding as unknown as string } : {}) });
  try {
    const schema = (db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]).map((r) => r.version);
    db.prepare('VACUUM INTO ?').run(to);
    return schema;
  } catch (err) {
    throw new BackupError(`cannot copy ${dbPath}: ${(err as Error).message}`);
  } finally {
    db.close();
  }
}

export interface PackInput {
  /** A database file made by snapshotDatabase. */
  snapshot: string;
  schema: number[];
  masterKey: Buffer;
  /** Files to seal into the backup (by their name in the data dir); only with a passphrase. */
  keyFiles: Record<string, Buffer>;
  passphrase: string | null;
  version: string;
}

/** Writes the backup of a snapshot to `out` (ended when done); returns its header. */
export async function packBackup(input: PackInput, out: NodeJS.WritableStream): Promise<BackupHeader> {
  if (input.passphrase === null && Object.keys(input.keyFiles).length) throw new Error('key files need a passphrase');
  const dbBytes = statSync(input.snapshot).size;
  const hash = createHash('sha256');
  await pipeline(createReadStream(input.snapshot), hash);
  const files = Object.fromEntries(Object.entries(input.keyFiles).map(([name, content]) => [name, content.toString('base64')]));
  let seal: Seal | null = null;
  let key: Buffer | null = null;
  if (input.passphrase !== null) {
    const params = { ...SCRYPT, salt: randomBytes(16).toString('base64') };
    key = await deriveKey(input.passphrase, params);
    seal = { cipher: 'aes-256-gcm', kdf: 'scrypt', ...params, iv: randomBytes(12).toString('base64'), check: passphraseCheck(key) };
  }
  const header: BackupHeader = {
    format: 1,
    created_at: new Date().toISOString(),
    nexus_version: input.version,
    schema: input.schema,
    key_check: keyCheck(input.masterKey),
    files: Object.keys(files),
    seal,
  };
  const headerLine = Buffer.from(JSON.stringify(header) + '\n');
  const manifest = Buffer.from(JSON.stringify({ db_bytes: dbBytes, db_sha256: hash.digest('hex'), files } satisfies Manifest));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(manifest.length);
  async function* body() {
    yield length;
    yield manifest;
    yield* createReadStream(input.snapshot);
  }
  out.write(MAGIC);
  out.write(headerLine);
  if (key && seal) {
    const cipher = createCipheriv('aes-256-gcm', key, Buffer.from(seal.iv, 'base64'));
    cipher.setAAD(Buffer.concat([MAGIC, headerLine]));
    await pipeline(body, createZstdCompress(), cipher, withTrailer(() => cipher.getAuthTag()), out);
  } else {
    await pipeline(body, createZstdCompress(), out);
  }
  return header;
}

/** Passes bytes through and appends what `trailer` gives once the input has ended. */
function withTrailer(trailer: () => Buffer): Transform {
  return new Transform({
    transform(chunk, _enc, done) {
      done(null, chunk);
    },
    flush(done) {
      done(null, trailer());
    },
  });
}

/** Reads and checks the magic line and the header, without the passphrase. */
export function readHeader(file: string): { header: BackupHeader; bodyOffset: number; size: number } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new BackupError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, MAGIC.length + MAX_HEADER_BYTES));
    readSync(fd, head, 0, head.length, 0);
    if (!head.subarray(0, MAGIC.length).equals(MAGIC)) throw new BackupError(`${file} is not a Nexus backup`);
    const end = head.indexOf(0x0a, MAGIC.length);
    if (end < 0) throw new BackupError(`${file} is damaged: its header is cut short or too long`);
    let header: BackupHeader;
    try {
      header = JSON.parse(head.toString('utf8', MAGIC.length, end)) as BackupHeader;
    } catch {
      throw new BackupError(`${file} is damaged: its header is not JSON`);
    }
    checkHeader(header, file);
    return { header, bodyOffset: end + 1, size };
  } finally {
    closeSync(fd);
  }
}

function checkHeader(h: BackupHeader, file: string): void {
  const bad = (what: string) => new BackupError(`${file} is damaged: ${what}`);
  if (h === null || typeof h !== 'object') throw bad('its header is not an object');
  if (h.format !== 1) throw new BackupError(`${file} has backup format ${String(h.format)}, which this Nexus does not read; restore it with the Nexus that made it (${String(h.nexus_version)}) or a newer one`);
  if (!Array.isArray(h.schema) || !h.schema.every((v) => Number.isInteger(v))) throw bad('schema versions missing');
  if (typeof h.key_check !== 'string' || !/^[0-9a-f]{32}$/.test(h.key_check)) throw bad('key check missing');
  if (!Array.isArray(h.files) || !h.files.every((f) => (KEY_FILES as readonly string[]).includes(f))) throw bad('unknown files listed');
  if (h.seal !== null) {
    const s = h.seal;
    if (typeof s !== 'object' || s.cipher !== 'aes-256-gcm' || s.kdf !== 'scrypt') throw bad('unknown seal');
    const pow2 = Number.isInteger(Math.log2(s.N));
    if (!pow2 || s.N < 2 ** 14 || s.N > 2 ** 20 || !Number.isInteger(s.r) || s.r < 1 || s.r > 16 || !Number.isInteger(s.p) || s.p < 1 || s.p > 4) throw bad('seal parameters out of range');
    if (Buffer.from(String(s.salt), 'base64').length < 16 || Buffer.from(String(s.iv), 'base64').length !== 12 || typeof s.check !== 'string') throw bad('seal parameters malformed');
  } else if (h.files.length) {
    throw bad('key files listed without a seal');
  }
}

export interface OpenOptions {
  file: string;
  passphrase: string | null;
  /** Where the database is written (a new file). */
  dbOut: string;
  /** Migrations this Nexus knows: a backup with others was made by a newer one. */
  migrations: Migration[];
  nativeBinding?: object | undefined;
}

export interface Opened {
  header: BackupHeader;
  files: Record<string, Buffer>;
  dbBytes: number;
  users: number;
}

/**
 * Decrypts and unpacks a backup: the database to `dbOut` (checked: size, SHA-256, SQLite integrity,
 * known schema), the key files in memory. Throws BackupError, leaving `dbOut` removed, on anything
 * wrong: a wrong passphrase, a damaged or cut file, a newer schema.
 */
export async function openBackup(opts: OpenOptions): Promise<Opened> {
  const { header, bodyOffset, size } = readHeader(opts.file);
  let decipher: DecipherGCM | null = null;
  let end = size - 1;
  if (header.seal) {
    if (opts.passphrase === null) throw new BackupError(`${opts.file} is sealed with a passphrase: give it (--passphrase-env, --passphrase-file or the prompt)`);
    const key = await deriveKey(opts.passphrase, header.seal);
    const expected = Buffer.from(passphraseCheck(key));
    const given = Buffer.from(header.seal.check);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw new BackupError('wrong passphrase for this backup');
    if (size - bodyOffset < TAG_BYTES) throw new BackupError(`${opts.file} is damaged: cut short`);
    const tag = Buffer.alloc(TAG_BYTES);
    const fd = openSync(opts.file, 'r');
    try {
      readSync(fd, tag, 0, TAG_BYTES, size - TAG_BYTES);
    } finally {
      closeSync(fd);
    }
    decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(header.seal.iv, 'base64'));
    decipher.setAAD(readRange(opts.file, 0, bodyOffset));
    decipher.setAuthTag(tag);
    end = size - TAG_BYTES - 1;
  }
  const source = createReadStream(opts.file, { start: bodyOffset, end });
  const unpack = new Unpack(opts.dbOut);
  try {
    try {
      if (decipher) await pipeline(source, decipher, createZstdDecompress(), unpack);
      else await pipeline(source, createZstdDecompress(), unpack);
    } catch (err) {
      if (err instanceof BackupError) throw err;
      // GCM's tag failing, zstd's frame checks or a cut stream: the file was changed or is incomplete.
      throw new BackupError(`${opts.file} is damaged or incomplete (${(err as Error).message})`);
    }
    const manifest = unpack.result();
    const db = new Database(opts.dbOut, { fileMustExist: true, ...(opts.nativeBinding ? { nativeBinding: opts.nativeBinding as unknown as string } : {}) });
    let users: number;
    try {
      const check = db.pragma('integrity_check', { simple: true });
      if (check !== 'ok') throw new BackupError(`${opts.file} holds a damaged database (${String(check)})`);
      const applied = (db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]).map((r) => r.version);
      const known = new Set(opts.migrations.map((m) => m.version));
      const newer = applied.filter((v) => !known.has(v));
      if (newer.length) throw new BackupError(`${opts.file} was made by a newer Nexus (${header.nexus_version}; schema ${newer.join(', ')} unknown here): restore it with that version or a later one`);
      users = (db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
    } catch (err) {
      if (err instanceof BackupError) throw err;
      throw new BackupError(`${opts.file} does not hold a Nexus database (${(err as Error).message})`);
    } finally {
      db.close();
    }
    const files: Record<string, Buffer> = {};
    for (const name of header.files) {
      const b64 = manifest.files[name];
      if (typeof b64 !== 'string') throw new BackupError(`${opts.file} is damaged: ${name} is listed but missing`);
      files[name] = Buffer.from(b64, 'base64');
    }
    if (files['master.key'] && (files['master.key'].length !== 32 || keyCheck(files['master.key']) !== header.key_check)) {
      throw new BackupError(`${opts.file} is damaged: its master key does not match its key check`);
    }
    return { header, files, dbBytes: manifest.db_bytes, users };
  } catch (err) {
    rmSync(opts.dbOut, { force: true });
    throw err;
  }
}

function readRange(file: string, start: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, length, start);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** The body's consumer: the manifest, then exactly `db_bytes` of database into a new file, hashed. */
class Unpack extends Transform {
  private head: Buffer = Buffer.alloc(0);
  private manifest: Manifest | null = null;
  private written = 0;
  private readonly hash = createHash('sha256');
  private readonly fd: number;

  constructor(path: string) {
    super();
    this.fd = openSync(path, 'wx', 0o600);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    try {
      if (!this.manifest) {
        this.head = Buffer.concat([this.head, chunk]);
        if (this.head.length < 4) return done();
        const n = this.head.readUInt32BE(0);
        if (n > MAX_MANIFEST_BYTES) throw new BackupError('backup is damaged: manifest too large');
        if (this.head.length < 4 + n) return done();
        this.manifest = parseManifest(this.head.subarray(4, 4 + n));
        chunk = this.head.subarray(4 + n);
        this.head = Buffer.alloc(0);
      }
      if (this.written + chunk.length > this.manifest.db_bytes) throw new BackupError('backup is damaged: more database bytes than its manifest says');
      this.hash.update(chunk);
      for (let at = 0; at < chunk.length; ) at += writeFrom(this.fd, chunk, at);
      this.written += chunk.length;
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: (err?: Error | null) => void): void {
    try {
      fsyncSync(this.fd);
      closeSync(this.fd);
      if (!this.manifest) return done(new BackupError('backup is damaged: no manifest'));
      if (this.written !== this.manifest.db_bytes) return done(new BackupError(`backup is damaged: the database is cut short (${this.written} of ${this.manifest.db_bytes} bytes)`));
      if (this.hash.digest('hex') !== this.manifest.db_sha256) return done(new BackupError('backup is damaged: the database does not match its checksum'));
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    try {
      closeSync(this.fd);
    } catch {
      /* closed in _flush */
    }
    done(err);
  }

  result(): Manifest {
    return this.manifest!;
  }
}

function writeFrom(fd: number, buf: Buffer, at: number): number {
  return writeSync(fd, buf, at, buf.length - at);
}

function parseManifest(raw: Buffer): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(raw.toString('utf8')) as Manifest;
  } catch {
    throw new BackupError('backup is damaged: manifest is not JSON');
  }
  if (!m || !Number.isSafeInteger(m.db_bytes) || m.db_bytes < 0 || typeof m.db_sha256 !== 'string' || typeof m.files !== 'object' || m.files === null) {
    throw new BackupError('backup is damaged: manifest malformed');
  }
  return m;
}

export interface RestoreOptions {
  dataDir: string;
  file: string;
  passphrase: string | null;
  /** Replace an appliance that has users. */
  force: boolean;
  /** For a backup without keys: the master key file to use (default: the one in the data dir). */
  masterKeyFile?: string | undefined;
  migrations: Migration[];
  nativeBinding?: object | undefined;
  now?: Date;
}

export interface RestoreResult {
  header: BackupHeader;
  users: number;
  /** Where what was replaced now lies, or null when there was nothing. */
  movedTo: string | null;
}

/**
 * Restores a backup into a data dir no appliance is running on. Everything is checked before any
 * file of the data dir changes; what is replaced is moved to `before-restore-<time>/`, never deleted.
 */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
  const { header } = readHeader(opts.file);
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  let release: () => void;
  try {
    release = acquireDataDirLock(opts.dataDir, opts.nativeBinding);
  } catch (err) {
    if (/already using/.test((err as Error).message)) throw new BackupError(`${(err as Error).message.replace(/; stop it first$/, '')}: stop it before restoring`);
    throw err;
  }
  // Run as root on a data dir the appliance's user owns (the image's /var/lib/nexus), every file this
  // writes — the lock and pid files included — is given to that user, or `nexus serve` could not
  // open them.
  const owner = statSync(opts.dataDir);
  const adopt = (path: string) => {
    if (process.getuid?.() === 0 && owner.uid !== 0) chownSync(path, owner.uid, owner.gid);
  };
  for (const f of ['nexus.lock', 'nexus.pid']) adopt(join(opts.dataDir, f));
  const staging = join(opts.dataDir, `.restore-${randomBytes(6).toString('hex')}`);
  try {
    const current = join(opts.dataDir, 'nexus.db');
    const existingUsers = existsSync(current) ? countUsers(current, opts.nativeBinding) : 0;
    if (existingUsers > 0 && !opts.force) {
      throw new BackupError(`${opts.dataDir} already holds an appliance with ${existingUsers} user(s); restoring replaces it: add --force (what it replaces is kept in ${opts.dataDir}/before-restore-…/)`);
    }
    // Without keys in the backup, the master key must be the one its secrets were sealed with.
    let masterKey: Buffer | null = null;
    if (!header.files.includes('master.key')) {
      const path = opts.masterKeyFile ?? join(opts.dataDir, 'master.key');
      try {
        masterKey = readFileSync(path);
      } catch {
        throw new BackupError(`this backup was made without keys: it needs the master key of the appliance it came from (key check ${header.key_check}); put it at ${join(opts.dataDir, 'master.key')} or give --master-key FILE`);
      }
      if (masterKey.length !== 32 || keyCheck(masterKey) !== header.key_check) {
        throw new BackupError(`${path} is not the master key this backup needs (key check ${masterKey.length === 32 ? keyCheck(masterKey) : 'invalid'}, the backup's is ${header.key_check}); nothing was changed`);
      }
    }
    mkdirSync(staging, { mode: 0o700 });
    const opened = await openBackup({ file: opts.file, passphrase: opts.passphrase, dbOut: join(staging, 'nexus.db'), migrations: opts.migrations, nativeBinding: opts.nativeBinding });
    if (masterKey) opened.files['master.key'] = masterKey;

    // From here on the data dir changes: first move aside what will be replaced.
    const replaced = ['nexus.db', 'nexus.db-wal', 'nexus.db-shm', 'setup-token', ...Object.keys(opened.files)].filter((f) => existsSync(join(opts.dataDir, f)));
    let movedTo: string | null = null;
    if (replaced.length) {
      movedTo = join(opts.dataDir, `before-restore-${(opts.now ?? new Date()).toISOString().replace(/[:.]/g, '-')}`);
      for (const f of replaced) {
        mkdirSync(dirname(join(movedTo, f)), { recursive: true, mode: 0o700 });
        adopt(dirname(join(movedTo, f)));
        renameSync(join(opts.dataDir, f), join(movedTo, f));
      }
    }
    const place = (from: string, name: string) => {
      const to = join(opts.dataDir, name);
      mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
      adopt(dirname(to));
      renameSync(from, to);
      adopt(to);
    };
    for (const [name, content] of Object.entries(opened.files)) {
      const tmp = join(staging, name.replaceAll('/', '_'));
      const fd = openSync(tmp, 'wx', 0o600);
      try {
        for (let at = 0; at < content.length; ) at += writeFrom(fd, content, at);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      place(tmp, name);
    }
    place(join(staging, 'nexus.db'), 'nexus.db');
    const dirFd = openSync(opts.dataDir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    return { header, users: opened.users, movedTo };
  } finally {
    rmSync(staging, { recursive: true, force: true });
    release();
  }
}

function countUsers(path: string, nativeBinding: object | undefined): number {
  try {
    // Read-write: a read-only connection cannot open a WAL database whose -shm is gone, and the
    // data dir's lock is held, so no appliance is using it.
    const db = new Database(path, { fileMustExist: true, ...(nativeBinding ? { nativeBinding: nativeBinding as unknown as string } : {}) });
    try {
      return (db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return 0; // no users table (a database from before the first start) or not a database at all
  }
}
