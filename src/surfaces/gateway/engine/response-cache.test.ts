import { describe, expect, it } from 'vitest';
import { cacheDirectives, cacheKey, ResponseCache } from './response-cache.ts';

describe('cacheDirectives', () => {
  it('reads no-cache, no-store and max-age, and ignores what it does not know', () => {
    expect(cacheDirectives(undefined)).toEqual({ read: true, write: true, maxAge: null });
    expect(cacheDirectives('no-cache')).toEqual({ read: false, write: true, maxAge: null });
    expect(cacheDirectives('No-Store')).toEqual({ read: false, write: false, maxAge: null });
    expect(cacheDirectives('max-age=30, max-age=10')).toEqual({ read: true, write: true, maxAge: 10 });
    expect(cacheDirectives('max-age="5"')).toEqual({ read: true, write: true, maxAge: 5 });
    for (const junk of ['max-age=-1', 'max-age=1.5', 'max-age=', 'max-age=99999999999', 'private, x=1', ',,,']) {
      expect(cacheDirectives(junk), junk).toEqual({ read: true, write: true, maxAge: null });
    }
  });
});

describe('cacheKey', () => {
  it('separates its parts, so shifting text between them changes the key', () => {
    expect(cacheKey(['a', 'bc'], '{}')).not.toBe(cacheKey(['ab', 'c'], '{}'));
    expect(cacheKey(['m'], '{"a":1}')).toBe(cacheKey(['m'], '{"a":1}'));
    expect(cacheKey(['m'], '{"a":1}')).not.toBe(cacheKey(['m'], '{"a":2}'));
  });
});

describe('ResponseCache', () => {
  it('answers within the age asked for and forgets what is older', () => {
    const c = new ResponseCache(1 << 20);
    c.set('k', 'answer', 1000);
    expect(c.get('k', 5000, 5999)?.body).toBe('answer');
    expect(c.get('k', 5000, 6000)).toBeUndefined();
    expect(c.get('k', 5000, 1001)).toBeUndefined(); // gone, not only stale
    expect(c.size).toEqual({ entries: 0, bytes: 0 });
  });

  it('lets the least recently used go first and keeps within its bytes', () => {
    const c = new ResponseCache(10_000);
    const body = Buffer.alloc(1000);
    for (let i = 0; i < 8; i++) c.set(`k${i}`, body, 0);
    c.get('k0', 1e9, 1); // k0 is now the most recently used
    for (let i = 8; i < 12; i++) c.set(`k${i}`, body, 0);
    expect(c.size.bytes).toBeLessThanOrEqual(10_000);
    expect(c.get('k0', 1e9, 2)).toBeDefined();
    expect(c.get('k1', 1e9, 2)).toBeUndefined();
    expect(c.get('k11', 1e9, 2)).toBeDefined();
  });

  it('replaces an entry in place, refuses one answer over an eighth of it, and does nothing when off', () => {
    const c = new ResponseCache(8000);
    c.set('k', 'a', 0);
    c.set('k', 'bb', 5);
    expect(c.size.entries).toBe(1);
    expect(c.get('k', 1e9, 6)?.storedAt).toBe(5);
    c.set('big', Buffer.alloc(1001), 0);
    expect(c.get('big', 1e9, 1)).toBeUndefined();
    expect(new ResponseCache(0).enabled).toBe(false);
  });
});
