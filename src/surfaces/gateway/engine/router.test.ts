import { describe, expect, it } from 'vitest';
import type { Deployment, Provider } from '../catalog/catalog.ts';
import { createRouter } from './router.ts';

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
});
