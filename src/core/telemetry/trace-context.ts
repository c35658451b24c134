// W3C Trace Context (https://www.w3.org/TR/trace-context/): parsing the `traceparent` and
// `tracestate` a caller sent, writing ours, and minting ids. A header that breaks the rules is
// ignored (the request starts a new trace), never refused: §3.2.2.2 "vendors MUST … ignore it".
import { randomFillSync } from 'node:crypto';

/** Who a span's children name as their parent, and how the trace is sampled. */
export interface TraceContext {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lowercase hex digits, not all zero. */
  readonly spanId: string;
  readonly sampled: boolean;
  /** The caller's `tracestate`, validated and passed on unchanged; '' when none. */
  readonly traceState: string;
}

/** Longer values are not looked at (a valid one of a future version may be longer than 55). */
const MAX_TRACEPARENT = 512;
/** §3.3.1.1: a `tracestate` may be cut at 512 characters; we keep it whole or not at all. */
const MAX_TRACESTATE = 512;
const MAX_MEMBERS = 32;

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/**
 * A `traceparent` value as §3.2 reads it, or null when it is malformed: version `00` must be exactly
 * `00-<32 hex>-<16 hex>-<2 hex>` in lowercase; `ff` is invalid; a higher version must be at least
 * that long and, when longer, go on with a `-` (§4.3: parse the fields version 00 knows, ignore the
 * rest). All-zero ids are invalid. Several headers (joined with ", ") never parse.
 */
export function parseTraceparent(value: string | string[] | undefined): { traceId: string; parentId: string; flags: number } | null {
  if (typeof value !== 'string' || value.length < 55 || value.length > MAX_TRACEPARENT) return null;
  const version = value.slice(0, 2);
  if (!HEX.test(version) || version === 'ff') return null;
  if (version === '00' ? value.length !== 55 : value.length > 55 && value[55] !== '-') return null;
  if (value[2] !== '-' || value[35] !== '-' || value[52] !== '-') return null;
  const traceId = value.slice(3, 35);
  const parentId = value.slice(36, 52);
  const flags = value.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(parentId) || !HEX.test(flags)) return null;
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return null;
  return { traceId, parentId, flags: parseInt(flags, 16) };
}

// §3.3.1.3: simple-key, or tenant@system; values are printable ASCII without ',' and '=', no trailing space.
const MEMBER = /^([a-z0-9][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])$/;

/**
 * A `tracestate` value with its list members checked (§3.3): '' when absent or invalid in any way
 * (a bad member, a repeated key, more than 32 members, over 512 characters), since a list we cannot
 * vouch for is better not passed on. Empty members and spaces around commas are dropped.
 */
export function parseTracestate(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  const text = Array.isArray(value) ? value.join(',') : value;
  if (text.length > MAX_TRACESTATE) return '';
  const members: string[] = [];
  const keys = new Set<string>();
  for (const raw of text.split(',')) {
    const m = raw.trim();
    if (!m) continue;
    const parsed = MEMBER.exec(m);
    if (!parsed || keys.has(parsed[1]!)) return '';
    keys.add(parsed[1]!);
    members.push(m);
  }
  return members.length > MAX_MEMBERS ? '' : members.join(',');
}

/** The caller's trace context (its span is our parent), or null when it sent none or a malformed one. */
export function incomingContext(headers: Record<string, string | string[] | undefined>): TraceContext | null {
  const tp = parseTraceparent(headers.traceparent);
  if (!tp) return null;
  // §3.3: tracestate is read only when traceparent is valid.
  return { traceId: tp.traceId, spanId: tp.parentId, sampled: (tp.flags & 1) === 1, traceState: parseTracestate(headers.tracestate) };
}

/** Our `traceparent` for a request sent on behalf of span `c` (we speak version 00). */
export function formatTraceparent(c: TraceContext): string {
  return `00-${c.traceId}-${c.spanId}-${c.sampled ? '01' : '00'}`;
}

/** Sets `traceparent` (and `tracestate`, when there is one) on outgoing headers, replacing the caller's. */
export function injectTraceHeaders(headers: Record<string, string | string[]>, c: TraceContext): void {
  headers.traceparent = formatTraceparent(c);
  if (c.traceState) headers.tracestate = c.traceState;
  else delete headers.tracestate;
}

// Ids come from one random buffer refilled when used up: one randomFillSync per 256 spans, not one
// system call per id.
const pool = Buffer.alloc(4096);
let offset = pool.length;

function randomHex(bytes: number, zero: string): string {
  for (;;) {
    if (offset + bytes > pool.length) {
      randomFillSync(pool);
      offset = 0;
    }
    const id = pool.toString('hex', offset, offset + bytes);
    offset += bytes;
    if (id !== zero) return id;
  }
}

export const newTraceId = (): string => randomHex(16, ZERO_TRACE);
export const newSpanId = (): string => randomHex(8, ZERO_SPAN);
