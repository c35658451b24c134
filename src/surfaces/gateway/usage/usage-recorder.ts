// Usage rows and settled spend are committed in batches: one transaction every 100 ms (or 500 rows),
// by the write thread (core/db/write-thread.ts), so SQLite stays off the request path. A read first
// hands over what is queued and waits for its commit, so it sees every finished request.
import type { Db } from '../../../core/db/db.ts';
import { directWriter, type Writer, type WriteOp } from '../../../core/db/write-thread.ts';
import type { Logger } from '../../../core/log/log.ts';
import { spendOp } from '../keys/virtual-keys-store.ts';
import type { VirtualKeys } from '../keys/virtual-keys.ts';
import { createUsageStore, usageInsertOp, type UsageAggregate, type UsageQuery, type UsageRow } from './usage-store.ts';

export type { UsageRow, UsageQuery, UsageAggregate };

export interface UsageRecorder {
  record(row: UsageRow): void;
  /** Hands over what is queued and returns once it is committed. */
  flush(): void;
  aggregate(q: UsageQuery): UsageAggregate[];
  close(): void;
}

const FLUSH_MS = 100;
const FLUSH_ROWS = 500;

export function createUsageRecorder(
  db: Db,
  keys: Pick<VirtualKeys, 'drainSpend'>,
  log: Logger,
  writer: Writer = directWriter(db, (_label, err) => log.error({ err }, 'usage write failed')),
): UsageRecorder {
  const store = createUsageStore(db);
  let queue: UsageRow[] = [];
  let timer: NodeJS.Timeout | null = null;

  const handOver = () => {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (!db.open) return;
    const rows = queue;
    const spend = keys.drainSpend();
    if (!rows.length && !spend.size) return;
    queue = [];
    const ops: WriteOp[] = [];
    if (rows.length) ops.push(usageInsertOp(rows));
    if (spend.size) ops.push(spendOp(spend, new Date().toISOString()));
    writer.submit('usage', ops);
  };
  const flush = () => {
    handOver();
    writer.sync();
  };

  return {
    record(row) {
      queue.push(row);
      if (queue.length >= FLUSH_ROWS) handOver();
      else timer ??= setTimeout(handOver, FLUSH_MS);
    },
    flush,
    aggregate(q) {
      flush();
      return store.aggregate(q);
    },
    close: handOver,
  };
}
