// The audit log. State changes are written synchronously (`record`), so a crash right after a
// response never loses the record of it. Per-request entries from the proxy and gateway go through
// `enqueue`, batched into one transaction every 50 ms (or 500 entries) and committed by the write
// thread (core/db/write-thread.ts) to keep SQLite off the hot path; reads and `record` wait for it.
import { isoNow } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { directWriter, type Writer } from '../db/write-thread.ts';
import { auditInsertOp, createAuditStore, type AuditEntry, type AuditQuery, type AuditRecord } from './audit-store.ts';

export type { AuditEntry, AuditRecord, AuditQuery };

export interface Audit {
  record(entry: AuditEntry): void;
  /** Queues an entry for the next batch; its `details` object is kept as given, so build a fresh one. */
  enqueue(entry: AuditEntry): void;
  flush(): void;
  query(q: AuditQuery): AuditRecord[];
  close(): void;
}

// `token` but not `tokens`: `access_token`, `setup_token` are secrets, `input_tokens` is a count.
const SECRET_KEY = /(secret|password|token(?!s)|api[-_]?key|authorization|credential|cookie)/i;

/** Defence in depth: a details field named like a secret never reaches the table (copied only then). */
function scrub(details: Record<string, unknown> | null | undefined): Record<string, unknown> | null {
  if (!details) return null;
  for (const key in details) {
    if (!SECRET_KEY.test(key)) continue;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(details)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : v;
    return out;
  }
  return details;
}

/** `writer` commits the queued entries (the write thread's, or this connection's when not given). */
export function createAudit(db: Db, onError: (err: unknown) => void, writer: Writer = directWriter(db, (_label, err) => onError(err))): Audit {
  const store = createAuditStore(db);
  let queue: AuditEntry[] = [];
  let timer: NodeJS.Timeout | null = null;

  const flush = () => {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (!queue.length || !db.open) return;
    const batch = queue;
    queue = [];
    writer.submit('audit', [auditInsertOp(batch)]);
  };
  /** Everything queued, committed: what a read or a synchronous write must come after. */
  const settle = () => {
    flush();
    writer.sync();
  };

  return {
    record(entry) {
      settle(); // keep ids in time order
      store.insertMany([{ ...entry, details: scrub(entry.details), ts: entry.ts ?? isoNow() }]);
    },
    enqueue(entry) {
      queue.push({ ...entry, details: scrub(entry.details), ts: entry.ts ?? isoNow() });
      if (queue.length >= 500) flush();
      else timer ??= setTimeout(flush, 50);
    },
    flush: settle,
    query(q) {
      settle();
      return store.query(q);
    },
    close: flush,
  };
}
