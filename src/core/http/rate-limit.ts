// Counting limiter for failures (login attempts): at most `max` events per key in a sliding window.
// In memory: one appliance process answers all requests (DESIGN.md §1).
export interface FailureLimiter {
  /** Seconds until the key may try again, or 0 when it may try now. */
  blockedFor(key: string): number;
  fail(key: string): void;
  reset(key: string): void;
}

export function createFailureLimiter(max: number, windowSeconds: number, now: () => number = Date.now): FailureLimiter {
  const hits = new Map<string, number[]>();
  const windowMs = windowSeconds * 1000;
  const prune = (key: string) => {
    const list = hits.get(key);
    if (!list) return [];
    const cutoff = now() - windowMs;
    while (list.length && list[0]! <= cutoff) list.shift();
    if (!list.length) hits.delete(key);
    return list;
  };
  return {
    blockedFor(key) {
      const list = prune(key);
      if (list.length < max) return 0;
      return Math.max(1, Math.ceil((list[0]! + windowMs - now()) / 1000));
    },
    fail(key) {
      const list = prune(key);
      list.push(now());
      hits.set(key, list);
      if (hits.size > 100_000) hits.delete(hits.keys().next().value!);
    },
    reset(key) {
      hits.delete(key);
    },
  };
}
