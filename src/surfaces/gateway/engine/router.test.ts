import { describe, expect, it } from 'vitest';
import type { Deployment, Provider } from '../catalog/catalog.ts';
import { createRouter, LATENCY_STALE_MS } from './router.ts';

const provider = { id: 'p' } as Provider;
const dep = (id: string, priority: number, weight = 1): Deployment => ({ id, provider, upstreamModel: id, priority, weight });

describe('router', () => {
  it('orders by priority, then weight, and puts cooling deployments last', () => {
    let t = 1000;
    const seq = [0.9, 0.1];
    const router = createRouter(30, () => t, () => seq.shift() ?? 0);
    const a = dep('a', 0, 1);
    const b = dep('b', 0, 9);
    const c = dep('c', 1);
    // r = 0.9 * 10 = 9 falls in b's share (1..10); then only a is left.
    expect(router.order([c, a, b]).map((d) => d.id)).toEqual(['b', 'a', 'c']);
    router.fail(a);
    expect(router.order([a, c]).map((d) => d.id)).toEqual(['c', 'a']);
    t += 31_000;
    expect(router.order([a, c]).map((d) => d.id)).toEqual(['a', 'c']);
  });

  it('spreads by weight', () => {
    const router = createRouter(30);
    const counts = { a: 0, b: 0 };
    for (let i = 0; i < 4000; i++) counts[router.order([dep('a', 0, 1), dep('b', 0, 3)])[0]!.id as 'a' | 'b']++;
    expect(counts.b).toBeGreaterThan(counts.a * 2);
    expect(counts.a).toBeGreaterThan(0);
  });

  it('forgets the cooldown of deployments that went away', () => {
    const router = createRouter(30);
    const a = dep('a', 0);
    const c = dep('c', 1);
    router.fail(a);
    expect(router.order([a, c]).map((d) => d.id)).toEqual(['c', 'a']);
    router.forget(['a']);
    expect(router.order([a, c]).map((d) => d.id)).toEqual(['a', 'c']);
  });

  it('least_busy: fewest calls in flight first, by weight among equals, priorities and cooldowns still first', () => {
    const router = createRouter(30, () => 0, () => 0);
    const [a, b, c] = [dep('a', 0), dep('b', 0), dep('c', 1)];
    const picks: string[] = [];
    for (let i = 0; i < 6; i++) {
      const d = router.order([a, b, c], 'least_busy')[0]!;
      router.begin(d);
      picks.push(d.id);
    }
    expect(picks.filter((x) => x === 'a').length).toBe(3);
    expect(picks.filter((x) => x === 'b').length).toBe(3);
    expect(router.stats('a').in_flight).toBe(3);
    router.end(b);
    router.end(b);
    expect(router.order([a, b, c], 'least_busy').map((d) => d.id)).toEqual(['b', 'a', 'c']);
    router.fail(b);
    expect(router.order([a, b, c], 'least_busy').map((d) => d.id)).toEqual(['a', 'c', 'b']);
    for (let i = 0; i < 5; i++) router.end(a); // never below zero
    expect(router.stats('a').in_flight).toBe(0);
  });

  it('latency: unmeasured first, then fastest by moving average; a stale sample is tried again', () => {
    let t = 0;
    const router = createRouter(30, () => t, () => 0);
    const [slow, fast] = [dep('slow', 0), dep('fast', 0)];
    expect(router.order([slow, fast], 'latency').map((d) => d.id)).toEqual(['slow', 'fast']); // both unmeasured: weighted order
    router.ok(slow, 300);
    expect(router.order([slow, fast], 'latency')[0]!.id).toBe('fast'); // not measured yet
    router.ok(fast, 20);
    for (let i = 0; i < 5; i++) expect(router.order([slow, fast], 'latency')[0]!.id).toBe('fast');
    // The fast one slows down: 0.3 of each new sample moves the average.
    router.ok(fast, 1000);
    expect(router.stats('fast').latency_ms).toBe(314);
    expect(router.order([slow, fast], 'latency')[0]!.id).toBe('slow');
    router.ok(fast, 10);
    router.ok(fast, 10);
    router.ok(fast, 10);
    expect(router.order([slow, fast], 'latency')[0]!.id).toBe('fast');
    // Nothing heard from the slow one for longer than the stale time: it gets the next call.
    t += LATENCY_STALE_MS + 1;
    router.ok(fast, 10);
    expect(router.order([slow, fast], 'latency')[0]!.id).toBe('slow');
    // weighted ignores all of it, and forgetting a deployment drops its samples.
    router.forget(['fast']);
    expect(router.stats('fast').latency_ms).toBeNull();
  });
});

