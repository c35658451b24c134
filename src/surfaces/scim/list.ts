// Query parameters shared by GET /Users, GET /Groups and POST /.search (RFC 7644 §3.4.2, §3.4.3).
import { scimError } from './errors.ts';
import { parseFilter } from './filter/parser.ts';
import { compileFilter, type SqlMapping } from './filter/sql.ts';
import { MAX_RESULTS, resolveAttr, splitUrn, URN, type ResourceSchema } from './schemas.ts';
import type { Json } from './resource.ts';
import type { Page } from './users-store.ts';

export interface ListQuery {
  filter?: unknown;
  sortBy?: unknown;
  sortOrder?: unknown;
  startIndex?: unknown;
  count?: unknown;
  attributes?: unknown;
  excludedAttributes?: unknown;
}

export const DEFAULT_COUNT = 100;

function int(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n)) throw scimError('invalidValue', `${name} must be an integer`);
  return n;
}

/** `attributes` may come as a comma-separated string (query) or an array (.search body). */
export function attrList(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.filter((v) => typeof v === 'string').join(',');
  if (typeof value !== 'string') throw scimError('invalidValue', 'attributes must be a string or an array of strings');
  return value;
}

export function toPage(q: ListQuery, schema: ResourceSchema, mapping: SqlMapping): Page & { startIndex: number } {
  // §3.4.2.4: startIndex below 1 is read as 1; a negative count as 0.
  const startIndex = Math.max(1, int(q.startIndex, 'startIndex') ?? 1);
  const count = Math.min(MAX_RESULTS, Math.max(0, int(q.count, 'count') ?? DEFAULT_COUNT));
  if (q.filter !== undefined && typeof q.filter !== 'string') throw scimError('invalidFilter', 'filter must be a string');
  const where = typeof q.filter === 'string' && q.filter.trim() !== '' ? compileFilter(parseFilter(q.filter), schema, mapping) : null;
  let orderBy: string | null = null;
  if (typeof q.sortBy === 'string' && q.sortBy.trim()) {
    const { urn, rest } = splitUrn(q.sortBy.trim());
    const [name, sub] = rest.split('.');
    const r = resolveAttr(schema, urn, name ?? '', sub ?? null);
    if (!r) throw scimError('invalidValue', `cannot sort by unknown attribute "${q.sortBy}"`);
    const target = mapping(r);
    // §3.4.2.3: multi-valued attributes sort by their primary value; we sort by scalar attributes only.
    if (target?.kind === 'scalar') orderBy = target.sql;
  }
  const descending = typeof q.sortOrder === 'string' && q.sortOrder.toLowerCase() === 'descending';
  return { where, orderBy, descending, limit: count, offset: startIndex - 1, startIndex };
}

export function listResponse(total: number, startIndex: number, resources: Json[]) {
  return { schemas: [URN.list], totalResults: total, itemsPerPage: resources.length, startIndex, Resources: resources };
}

/** Whether a rendered attribute survives `attributes`/`excludedAttributes`, to skip costly lookups. */
export function wanted(name: string, attributes?: string, excluded?: string): boolean {
  const has = (list: string) => list.split(',').some((a) => a.trim().replace(/\[.*$/, '').split('.')[0]!.replace(/^urn:.*:/i, '').toLowerCase() === name.toLowerCase());
  if (attributes) return has(attributes);
  if (excluded) return !has(excluded);
  return true;
}

/**
 * totalResults without a second query when the page itself proves it: a short, non-empty page (or an
 * empty first page) ends the result set. Lookups by userName — most IdP traffic — take this path.
 */
export function totalOf(page: { limit: number; offset: number }, rows: number, count: () => number): number {
  if (page.limit > 0 && rows < page.limit && (rows > 0 || page.offset === 0)) return page.offset + rows;
  return count();
}
