// Writes described as plain data, so the same batch can be committed by this thread's connection or
// by the write thread's (write-thread.ts): rows to append to a table, or one statement run with many
// parameter lists. Only numbers, strings and null cross the thread boundary (structured clone, or
// rows as JSON text: `packed`).
import { statementCache, type Db } from './db.ts';

export type WriteOp =
  /** Appends rows: `values` holds every row's values in `columns` order, row after row. */
  | { readonly insert: string; readonly columns: readonly string[]; readonly values: unknown[] }
  /** The same with the values as JSON text (how write-thread.ts hands rows to its thread: `packed`). */
  | { readonly insert: string; readonly columns: readonly string[]; readonly json: string }
  /** Runs `sql` once per parameter list. */
  | { readonly sql: string; readonly params: unknown[][] }
  /**
   * First op of a write-thread batch: records its sequence number, or, when a number this high is
   * recorded already, skips the rest of the batch (it was committed). Whichever connection commits a
   * batch first wins the claim, so a batch is never written twice (write-thread.ts, take-over).
   */
  | { readonly claim: number };

/**
 * An insert with its values as JSON text, when JSON gives back exactly the same values (strings,
 * null, finite numbers but -0); any other op as it is. Crossing to the write thread, one string is
 * one copy where a structured clone walks value by value: for a gateway call's usage row and audit
 * entry that took the request thread ~2.5 µs, JSON.stringify ~1 µs (BENCHMARKS.md, "per-call cuts").
 */
export function packed(op: WriteOp): WriteOp {
  if (!('values' in op)) return op;
  for (const v of op.values) {
    if (typeof v === 'string' || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || (v === 0 && 1 / v < 0)) return op;
  }
  return { insert: op.insert, columns: op.columns, json: JSON.stringify(op.values) };
}

/** Rows per multi-row statement: 32 rows × up to 21 columns stays far below SQLite's 32,766 parameters. */
const GROUP = 32;

/**
 * Applies a batch inside one transaction (one commit). Rows go in groups of 32 through one prepared
 * multi-row INSERT, the rest one by one; values are passed as arguments (`run(...args)`), not as one
 * array: better-sqlite3 reads an array element by element through N-API property lookups, which
 * cost more than binding the value itself (~10 % of an insert, measured).
 */
export function createOpsApplier(db: Db): (ops: readonly WriteOp[]) => void {
  const prepare = statementCache(db);
  const insert = (table: string, columns: readonly string[], values: unknown[]) => {
    const width = columns.length;
    const rows = values.length / width;
    if (!Number.isInteger(rows)) throw new Error(`${table}: ${values.length} values do not make rows of ${width} columns`);
    const tuple = `(${columns.map(() => '?').join(', ')})`;
    const head = `INSERT INTO ${table} (${columns.join(', ')}) VALUES `;
    let i = 0;
    if (rows >= GROUP) {
      const many = prepare(head + Array.from({ length: GROUP }, () => tuple).join(', '));
      for (; i + GROUP <= rows; i += GROUP) many.run(...values.slice(i * width, (i + GROUP) * width));
    }
    if (i < rows) {
      const one = prepare(head + tuple);
      for (; i < rows; i++) one.run(...values.slice(i * width, (i + 1) * width));
    }
  };
  return db.transaction((ops: readonly WriteOp[]) => {
    for (const op of ops) {
      if ('claim' in op) {
        if (prepare('UPDATE nexus_write_thread SET seq = ? WHERE id = 1 AND seq < ?').run(op.claim, op.claim).changes === 0) return;
      } else if ('insert' in op) insert(op.insert, op.columns, 'json' in op ? (JSON.parse(op.json) as unknown[]) : op.values);
      else {
        const stmt = prepare(op.sql);
        for (const p of op.params) stmt.run(...p);
      }
    }
  });
}
