// Usage rows and settled spend are written in batches: one transaction every 100 ms (or 500 rows),
// so SQLite stays off the request path. Aggregates flush first, so a read sees every finished request.
import type { Db } from '../../../core/db/db.ts';
import type { Logger } from '../../../core/log/log.ts';
import type { VirtualKeys } from '../keys/virtual-keys.ts';
import { createUsageStore, type UsageAggregate, type UsageQuery, type UsageRow } from './usage-store.ts';

export type { UsageRow, UsageQuery, UsageAggregate };

export interface UsageRecorder {
  record(row: UsageRow): void;
  flush(): void;
  aggregate(q: UsageQuery): UsageAggregate[];
  close(): void;
}

const FLUSH_MS = 100;
const FLUSH_ROWS = 500;

export function createUsageRecorder(db: Db, keys: Pick<VirtualKeys, 'drainSpend' | 'writeSpend'>, log: Logger): UsageRecorder {
  const store = createUsageStore(db);
  let queue: UsageRow[] = [];
  let timer: NodeJS.Timeout | null = null;

  const write = db.transaction((rows: UsageRow[], spend: Map<string, number>) => {
    store.insertMany(rows);
    keys.writeSpend(spend);
  });

  const flush = () => {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (!db.open) return;
    const rows = queue;
    const spend = keys.drainSpend();
    if (!rows.length && !spend.size) return;
    queue = [];
    try {
      write(rows, spend);
    } catch (err) {
      log.error({ err, rows: rows.length }, 'usage write failed');
    }
  };

  return {
    record(row) {
      queue.push(row);
      if (queue.length >= FLUSH_ROWS) flush();
      else timer ??= setTimeout(flush, FLUSH_MS);
    },
    flush,
    aggregate(q) {
      flush();
      return store.aggregate(q);
    },
    close: flush,
  };
}
