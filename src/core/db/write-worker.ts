// The write thread (write-thread.ts): its own connection to the database file, committing each batch
// it receives in one transaction, in order, and acknowledging it through the shared counter only
// after COMMIT. A batch that fails is reported and acknowledged (dropped, as on the main thread).
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { connectionSettings, type Db } from './db.ts';
import { createOpsApplier, type WriteOp } from './write-ops.ts';

interface Data {
  path: string;
  shared: BigInt64Array;
  nativeBindingPath?: string;
}
const { path, shared, nativeBindingPath } = workerData as Data;
const COMMITTED = 0;
const STATE = 1;
const THREAD_CLOSED = 1n;
const THREAD_FAILED = 2n;

const fail = () => {
  Atomics.store(shared, STATE, THREAD_FAILED);
  Atomics.notify(shared, COMMITTED);
  Atomics.notify(shared, STATE);
};

let db: Db;
try {
  let nativeBinding: object | undefined;
  if (nativeBindingPath) {
    const mod = { exports: {} };
    process.dlopen(mod, nativeBindingPath);
    nativeBinding = mod.exports;
  }
  db = new Database(path, { timeout: 5000, fileMustExist: true, ...(nativeBinding ? { nativeBinding: nativeBinding as unknown as string } : {}) });
  connectionSettings(db);
} catch (err) {
  fail();
  throw err;
}
const apply = createOpsApplier(db);

/** A long write on another connection (a large import, say) makes SQLite answer BUSY after its
 * 5 s busy timeout; the batch waits for it rather than being dropped, up to a minute. */
const BUSY_GIVE_UP_MS = 60_000;
function applyPatiently(ops: WriteOp[]): void {
  const start = Date.now();
  for (;;) {
    try {
      return apply(ops);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code !== 'SQLITE_BUSY' && code !== 'SQLITE_LOCKED') || Date.now() - start > BUSY_GIVE_UP_MS) throw err;
    }
  }
}

parentPort!.on('message', (msg: { seq: number; label: string; ops: WriteOp[] } | { close: true }) => {
  if ('close' in msg) {
    try {
      db.close();
    } finally {
      Atomics.store(shared, STATE, THREAD_CLOSED);
      Atomics.notify(shared, STATE);
      Atomics.notify(shared, COMMITTED);
      parentPort!.close();
    }
    return;
  }
  try {
    applyPatiently(msg.ops);
  } catch (err) {
    const e = err as { message?: string; code?: string };
    parentPort!.postMessage({ type: 'error', label: msg.label, message: String(e.message ?? err), ...(e.code ? { code: e.code } : {}) });
  }
  Atomics.store(shared, COMMITTED, BigInt(msg.seq));
  Atomics.notify(shared, COMMITTED);
});
// Whatever ends this thread unasked, the main thread stops waiting for it at once (a wait for a
// commit cannot see the Worker's 'exit' event, which arrives on the main thread's loop).
process.on('uncaughtException', (err) => {
  fail();
  parentPort!.postMessage({ type: 'error', label: 'write thread', message: String((err as Error)?.stack ?? err) });
  process.exit(1); // in a worker: ends this thread only
});
