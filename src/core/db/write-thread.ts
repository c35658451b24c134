// The per-request write batches (audit entries of proxied and gateway calls, gateway usage rows and
// spend) are committed on a second thread with its own SQLite connection to the same file, so the
// inserts, commits and WAL checkpoints they cost (~15 % of the gateway's JavaScript thread per call,
// BENCHMARKS.md) run beside the request path instead of on it.
//
// Guarantees kept from committing on the main thread:
// - batches commit in the order they were submitted, each in one transaction;
// - `sync()` returns once everything submitted so far is committed, so a read made after it (usage,
//   audit queries) sees every finished request; it waits on a shared counter (Atomics.wait), bounded;
// - nothing is lost or doubled: each batch's transaction first claims its sequence number in
//   nexus_write_thread (write-ops.ts `claim`), so when the thread dies or stalls the batches it did
//   not commit are committed on the main connection, in order, and one that both try is written once;
// - a thread that falls behind slows the request thread down (at most MAX_QUEUED batches in flight)
//   instead of queueing without bound;
// - `close()` commits what is queued and closes the thread's connection before the caller checkpoints.
// Without a file (an in-memory database) or with `database.writeThread: false` the same batches are
// committed on the caller's connection, synchronously, as before. The main connection's transactions
// take the write lock at BEGIN (db.ts `immediateTransactions`), so they wait for the thread's commits
// instead of failing with SQLITE_BUSY_SNAPSHOT.
import { Worker } from 'node:worker_threads';
import { getAsset, isSea } from 'node:sea';
import type { Db } from './db.ts';
import { createOpsApplier, packed, type WriteOp } from './write-ops.ts';

export type { WriteOp };

export interface Writer {
  /** Queues a batch to commit in one transaction; `label` names it in error reports. */
  submit(label: string, ops: WriteOp[]): void;
  /** Returns once every submitted batch is committed (or reported as failed). */
  sync(): void;
  /** Commits what is queued and stops the thread; later batches commit on the caller's connection. */
  close(): void;
  /** True while batches are committed by the write thread. */
  readonly threaded: boolean;
  /** Batches held for a take-over: handed to the thread and not known to be committed at the last hand-over. */
  readonly queued: number;
}

export interface WriterOptions {
  /** Called with the batch's label when a batch cannot be committed (it is then dropped, as before). */
  onError(label: string, err: unknown): void;
  /** The native addon file when better-sqlite3 cannot find its own (inside the single executable). */
  nativeBindingPath?: string;
  /** Default true (config `database.writeThread`); an in-memory database never has the thread. */
  thread?: boolean;
  /** Receives the thread once started (tests stop it to check the take-over). */
  onThread?(worker: Worker): void;
  /** How long `sync` waits for the thread before committing without it (default 5 s). */
  waitMs?: number;
}

/** How long `sync` and `close` wait for the thread before committing without it. */
const WAIT_MS = 5_000;
/** Batches handed over and not yet committed before `submit` waits for the thread. */
const MAX_QUEUED = 128;
/** Shared slots: the highest sequence number committed, and the thread's state. */
const COMMITTED = 0;
const STATE = 1;
export const THREAD_RUNNING = 0n;
export const THREAD_CLOSED = 1n;
export const THREAD_FAILED = 2n;

/** Messages from the thread (everything else travels through the shared counters). */
export type FromThread = { type: 'error'; label: string; message: string; code?: string };

/** Commits on the caller's connection, synchronously. */
export function directWriter(db: Db, onError: WriterOptions['onError']): Writer {
  let apply: ((ops: readonly WriteOp[]) => void) | null = null;
  return {
    submit(label, ops) {
      if (!db.open) return onError(label, new Error('the database is closed'));
      try {
        (apply ??= createOpsApplier(db))(ops);
      } catch (err) {
        onError(label, err);
      }
    },
    sync() {},
    close() {},
    threaded: false,
    queued: 0,
  };
}

export function createWriter(db: Db, opts: WriterOptions): Writer {
  const wanted = opts.thread ?? true;
  const waitMs = opts.waitMs ?? WAIT_MS;
  const direct = directWriter(db, opts.onError);
  if (!wanted || db.memory || !db.name) return direct;

  // 64-bit counters: an Int32 sequence would wrap after 2³¹ batches (about two years at 30 a second).
  const shared = new BigInt64Array(new SharedArrayBuffer(16));
  let worker: Worker;
  try {
    db.exec(`CREATE TABLE IF NOT EXISTS nexus_write_thread (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
      INSERT OR REPLACE INTO nexus_write_thread (id, seq) VALUES (1, 0)`);
    worker = isSea()
      ? new Worker(getAsset('write-worker.cjs', 'utf8'), { eval: true, workerData: { path: db.name, shared, nativeBindingPath: opts.nativeBindingPath } })
      : new Worker(new URL('./write-worker.ts', import.meta.url), { workerData: { path: db.name, shared, nativeBindingPath: opts.nativeBindingPath } });
  } catch (err) {
    opts.onError('write thread', err);
    return direct;
  }
  worker.unref();
  opts.onThread?.(worker);
  const lastCommitted = db.prepare('SELECT seq FROM nexus_write_thread WHERE id = 1').pluck();

  let seq = 0;
  /** Batches sent and not yet acknowledged, oldest first. */
  const unacked = new Map<number, { label: string; ops: WriteOp[] }>();
  let stopped = false;

  const committed = () => Number(Atomics.load(shared, COMMITTED));
  const prune = () => {
    const done = committed();
    for (const n of unacked.keys()) {
      if (n > done) break;
      unacked.delete(n);
    }
  };
  /** The thread is gone: commit here what it did not, in order, and from now on. */
  const takeOver = (why: unknown) => {
    if (stopped) return;
    stopped = true;
    void worker.terminate();
    if (why) opts.onError('write thread', why);
    // Batches the thread may still be committing are claimed here too: whichever commits first wins.
    let done = committed();
    try {
      done = Math.max(done, lastCommitted.get() as number);
    } catch (err) {
      opts.onError('write thread', err);
    }
    for (const [n, { label, ops }] of unacked) if (n > done) direct.submit(label, [{ claim: n }, ...ops]);
    unacked.clear();
  };

  worker.on('message', (msg: FromThread) => {
    if (msg.type === 'error') {
      const err = Object.assign(new Error(msg.message), msg.code ? { code: msg.code } : {});
      opts.onError(msg.label, err);
    }
  });
  worker.on('error', (err) => takeOver(err));
  worker.on('exit', (code) => takeOver(new Error(`write thread exited (code ${code})`)));

  /** Waits until the thread has committed `target`; false if it failed or did not within WAIT_MS. */
  const waitFor = (target: number): boolean => {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const done = Atomics.load(shared, COMMITTED);
      if (done >= BigInt(target)) return true;
      if (Atomics.load(shared, STATE) !== THREAD_RUNNING) return false;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      Atomics.wait(shared, COMMITTED, done, Math.min(left, 100));
    }
  };

  const writer: Writer = {
    submit(label, ops) {
      if (stopped) return direct.submit(label, ops);
      // Committed batches are let go at once: each holds its rows, and under the relay's heap setting
      // (protocol/heap.ts: the heap grows to 5× its live size) every retained MB costs ~5 MB of RSS.
      prune();
      if (unacked.size >= MAX_QUEUED) {
        writer.sync();
        if (stopped) return direct.submit(label, ops);
      }
      seq++;
      unacked.set(seq, { label, ops });
      worker.postMessage({ seq, label, ops: [{ claim: seq }, ...ops.map(packed)] });
    },
    sync() {
      if (stopped || seq === 0) return;
      // Inside a transaction this connection may hold the write lock the thread is waiting for.
      if (db.inTransaction) throw new Error('write thread: sync() inside a transaction');
      if (!waitFor(seq)) takeOver(new Error(Atomics.load(shared, STATE) === THREAD_RUNNING ? `write thread did not commit within ${waitMs} ms` : 'write thread stopped'));
      else prune();
    },
    close() {
      if (stopped) return;
      writer.sync();
      if (stopped) return;
      worker.postMessage({ close: true });
      const deadline = Date.now() + WAIT_MS;
      while (Atomics.load(shared, STATE) === THREAD_RUNNING && Date.now() < deadline) Atomics.wait(shared, STATE, THREAD_RUNNING, 100);
      stopped = true;
      void worker.terminate();
    },
    get threaded() {
      return !stopped;
    },
    get queued() {
      return unacked.size;
    },
  };
  return writer;
}
