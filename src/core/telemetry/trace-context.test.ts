import { describe, expect, it } from 'vitest';
import { formatTraceparent, incomingContext, injectTraceHeaders, newSpanId, newTraceId, parseTraceparent, parseTracestate } from './trace-context.ts';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const P = '00f067aa0ba902b7';

describe('traceparent (W3C Trace Context §3.2)', () => {
  it('reads a valid version-00 header', () => {
    expect(parseTraceparent(`00-${T}-${P}-01`)).toEqual({ traceId: T, parentId: P, flags: 1 });
    expect(parseTraceparent(`00-${T}-${P}-00`)).toEqual({ traceId: T, parentId: P, flags: 0 });
    // Flags other than sampled are kept as read; only bit 0 decides sampling.
    expect(incomingContext({ traceparent: `00-${T}-${P}-03` })).toMatchObject({ sampled: true });
    expect(incomingContext({ traceparent: `00-${T}-${P}-02` })).toMatchObject({ sampled: false });
  });

  it('reads a future version per §4.3: the known fields, the rest ignored after a dash', () => {
    expect(parseTraceparent(`01-${T}-${P}-01`)).toEqual({ traceId: T, parentId: P, flags: 1 });
    expect(parseTraceparent(`cc-${T}-${P}-01-what-the-future-holds`)).toEqual({ traceId: T, parentId: P, flags: 1 });
    expect(parseTraceparent(`cc-${T}-${P}-01x`)).toBeNull();
  });

  const invalid: [string, unknown][] = [
    ['uppercase trace id', `00-${T.toUpperCase()}-${P}-01`],
    ['uppercase parent id', `00-${T}-${P.toUpperCase()}-01`],
    ['uppercase flags', `00-${T}-${P}-0A`],
    ['uppercase version', `0A-${T}-${P}-01`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${P}-01`],
    ['all-zero parent id', `00-${T}-${'0'.repeat(16)}-01`],
    ['version ff', `ff-${T}-${P}-01`],
    ['short trace id', `00-${T.slice(1)}-${P}-01`],
    ['long trace id', `00-${T}a-${P}-01`],
    ['short parent id', `00-${T}-${P.slice(1)}-01`],
    ['long parent id', `00-${T}-${P}a-01`],
    ['one-digit flags', `00-${T}-${P}-1`],
    ['version 00 with more after it', `00-${T}-${P}-01-extra`],
    ['version 00 one char long', `00-${T}-${P}-01x`],
    ['non-hex', `00-${T.slice(0, 31)}g-${P}-01`],
    ['wrong separators', `00_${T}_${P}_01`],
    ['spaces inside', `00-${T} -${P}-01`.slice(0, 55)],
    ['empty', ''],
    ['garbage', 'not a traceparent'],
    ['oversized', `01-${T}-${P}-01-${'a'.repeat(10_000)}`],
    ['two headers joined by node', `00-${T}-${P}-01, 00-${T}-${P}-01`],
    ['an array', [`00-${T}-${P}-01`]],
    ['undefined', undefined],
  ];
  it.each(invalid)('refuses %s', (_name, value) => {
    expect(parseTraceparent(value as string)).toBeNull();
    expect(incomingContext({ traceparent: value as string, tracestate: 'a=b' })).toBeNull();
  });

  it('writes version 00 with the sampled flag', () => {
    expect(formatTraceparent({ traceId: T, spanId: P, sampled: true, traceState: '' })).toBe(`00-${T}-${P}-01`);
    expect(formatTraceparent({ traceId: T, spanId: P, sampled: false, traceState: '' })).toBe(`00-${T}-${P}-00`);
  });

  it('replaces the caller\'s headers on the way out, tracestate included', () => {
    const h: Record<string, string> = { traceparent: 'old', tracestate: 'stale=1' };
    injectTraceHeaders(h, { traceId: T, spanId: P, sampled: true, traceState: '' });
    expect(h).toEqual({ traceparent: `00-${T}-${P}-01` });
    injectTraceHeaders(h, { traceId: T, spanId: P, sampled: true, traceState: 'congo=t61rcWkgMzE' });
    expect(h.tracestate).toBe('congo=t61rcWkgMzE');
  });

  it('mints lowercase ids of the right length, never all zero, never the same twice', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const t = newTraceId();
      const s = newSpanId();
      expect(t).toMatch(/^[0-9a-f]{32}$/);
      expect(s).toMatch(/^[0-9a-f]{16}$/);
      expect(parseTraceparent(`00-${t}-${s}-01`)).not.toBeNull();
      seen.add(s);
    }
    expect(seen.size).toBe(2000);
  });
});

describe('tracestate (§3.3)', () => {
  it('keeps a valid list, tidied, and multi-tenant keys', () => {
    expect(parseTracestate('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE')).toBe('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    expect(parseTracestate('rojo=1 , ,congo=2')).toBe('rojo=1,congo=2');
    expect(parseTracestate(['rojo=1', 'congo=2'])).toBe('rojo=1,congo=2');
    expect(parseTracestate('fw529a3039@dt=FIsGTUdZ,x=y')).toBe('fw529a3039@dt=FIsGTUdZ,x=y');
    expect(parseTracestate(undefined)).toBe('');
  });
  it.each([
    ['an uppercase key', 'Rojo=1'],
    ['a member without =', 'rojo'],
    ['a repeated key', 'a=1,a=2'],
    ['an = inside a value', 'a=b=c'],
    ['a key over 256 characters', `${'k'.repeat(257)}=v`],
    ['a control character', 'a=\u0001'],
    ['33 members', Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')],
    ['over 512 characters', `a=${'x'.repeat(256)},b=${'y'.repeat(256)}`],
  ])('drops the whole list for %s', (_name, value) => {
    expect(parseTracestate(value)).toBe('');
  });
  it('carries the caller\'s tracestate with its traceparent', () => {
    expect(incomingContext({ traceparent: `00-${T}-${P}-01`, tracestate: 'rojo=1' })).toEqual({ traceId: T, spanId: P, sampled: true, traceState: 'rojo=1' });
  });
});
