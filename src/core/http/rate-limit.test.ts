import { describe, expect, it } from 'vitest';
import { createFailureLimiter } from './rate-limit.ts';

describe('failure limiter', () => {
  it('blocks after max failures within the window and frees the key after it', () => {
    let now = 1_000_000;
    const l = createFailureLimiter(3, 60, () => now);
    for (let i = 0; i < 3; i++) {
      expect(l.blockedFor('a')).toBe(0);
      l.fail('a');
    }
    expect(l.blockedFor('a')).toBe(60);
    expect(l.blockedFor('b')).toBe(0);
    now += 30_000;
    expect(l.blockedFor('a')).toBe(30);
    now += 30_001;
    expect(l.blockedFor('a')).toBe(0);
    l.fail('a');
    l.reset('a');
    expect(l.blockedFor('a')).toBe(0);
  });
});
