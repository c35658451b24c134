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

  it('latency: unmeasured first, then fastest by moving average; a stale sample is tried again (calls without output tokens: the whole time)', () => {
    let t = 0;
    const router = createRouter(30, () => t, () => 0);
    const [slow, fast] = [dep('slow', 0), dep('fast', 0)];
    expect(router.order([slow, fast], 'latency').map((d) => d.id)).toEqual(['slow', 'fast']); // both unmeasured: weighted order
    router.took(slow, false, 300);
    expect(router.order([slow, fast], 'latency')[0]!.id).toBe('fast'); // not measured yet
    router.took(fast, false, 20);
    for (let i = 0; i < 5; i++) expect(router.order([slow, fast], 'latency')[0]!.id).toBe('fast');
    // The fast one slows down: 0.3 of each new sample moves the average.
    router.took(fast, false, 1000);
    expect(router.stats('fast').latency_ms).toBe(314);
    expect(router.order([slow, fast], 'latency')[0]!.id).toBe('slow');
    router.took(fast, false, 10);
    router.took(fast, false, 10);
    router.took(fast, false, 10);
    expect(router.order([slow, fast], 'latency')[0]!.id).toBe('fast');
    // Nothing heard from the slow one for longer than the stale time: it gets the next call.
    t += LATENCY_STALE_MS + 1;
    router.took(fast, false, 10);
    expect(router.order([slow, fast], 'latency')[0]!.id).toBe('slow');
    // weighted ignores all of it, and forgetting a deployment drops its samples.
    router.forget(['fast']);
    expect(router.stats('fast').latency_ms).toBeNull();
  });

  it('latency: non-streamed calls compare per output token, so a large call does not make a deployment look slow', () => {
    const router = createRouter(30, () => 0, () => 0);
    const [a, b] = [dep('a', 0), dep('b', 0)];
    router.took(a, false, 2000, 1000); // 2 ms a token
    router.took(b, false, 100, 10); // 10 ms a token, but a smaller call
    expect(router.order([b, a], 'latency').map((d) => d.id)).toEqual(['a', 'b']);
    expect(router.stats('a')).toMatchObject({ latency_ms: 2000, ms_per_output_token: 2, ttft_ms: null });
    expect(router.stats('b')).toMatchObject({ latency_ms: 100, ms_per_output_token: 10 });
    // Zero output tokens (or none reported) is the whole time only: the per-token average stays.
    router.took(a, false, 50, 0);
    expect(router.stats('a').ms_per_output_token).toBe(2);
  });

  it('latency: streams are ranked by time to first token, apart from the other calls\' figures', () => {
    const router = createRouter(30, () => 0, () => 0);
    const [a, b] = [dep('a', 0), dep('b', 0)];
    router.took(a, false, 100, 100); // 1 ms a token
    router.took(b, false, 500, 100); // 5 ms a token
    expect(router.order([b, a], 'latency', true).map((d) => d.id)).toEqual(['b', 'a']); // no stream measured: weighted order
    router.took(a, true, 900);
    expect(router.order([a, b], 'latency', true)[0]!.id).toBe('b'); // b's first token is not measured yet
    router.took(b, true, 150);
    expect(router.order([a, b], 'latency', true)[0]!.id).toBe('b');
    expect(router.order([b, a], 'latency', false)[0]!.id).toBe('a');
    expect(router.stats('b')).toMatchObject({ ttft_ms: 150, ms_per_output_token: 5, latency_ms: 500 });
  });

  it('latency: when a measured deployment has no per-token figure, the group is ranked by whole time alike', () => {
    let t = 0;
    const router = createRouter(30, () => t, () => 0);
    const [a, b] = [dep('a', 0), dep('b', 0)];
    router.took(a, false, 400, 100); // 4 ms a token, 400 ms
    router.took(b, false, 300); // no usage: 300 ms
    expect(router.order([a, b], 'latency').map((d) => d.id)).toEqual(['b', 'a']);
    // Once b's whole-time sample is stale, it is tried first again (unmeasured), and then per token.
    t += LATENCY_STALE_MS + 1;
    router.took(a, false, 400, 100);
    expect(router.order([a, b], 'latency')[0]!.id).toBe('b');
    router.took(b, false, 1000, 100); // 10 ms a token
    expect(router.order([b, a], 'latency').map((d) => d.id)).toEqual(['a', 'b']);
  });
});

