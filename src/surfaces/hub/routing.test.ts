import { describe, expect, it } from 'vitest';
import { NodePicker } from './routing.ts';

describe('node picking after a binding changes', () => {
  const all = () => true;

  it('starts the smooth WRR from fresh state, not from the old binding’s counters', () => {
    const p = new NodePicker();
    const even = [{ node_id: 'a', priority: 0, weight: 1 }, { node_id: 'b', priority: 0, weight: 1 }];
    expect(p.order('s', even, all)[0]).toBe('a'); // a now owes one turn
    // With a's debt carried over, b would win next; a fresh 2:1 binding starts with a.
    const heavier = [{ node_id: 'a', priority: 0, weight: 2 }, { node_id: 'b', priority: 0, weight: 1 }];
    expect(Array.from({ length: 3 }, () => p.order('s', heavier, all)[0])).toEqual(['a', 'b', 'a']);
  });

  it('keeps the state while the binding is unchanged, and serves the new priority order at once', () => {
    const p = new NodePicker();
    const first = [{ node_id: 'a', priority: 0, weight: 1 }, { node_id: 'b', priority: 1, weight: 1 }];
    expect(p.order('s', first, all)).toEqual(['a', 'b']);
    const swapped = [{ node_id: 'a', priority: 1, weight: 1 }, { node_id: 'b', priority: 0, weight: 1 }];
    expect(p.order('s', swapped, all)).toEqual(['b', 'a']);
    const pair = [{ node_id: 'x', priority: 0, weight: 1 }, { node_id: 'y', priority: 0, weight: 1 }];
    expect(Array.from({ length: 4 }, () => p.order('t', [...pair], all)[0])).toEqual(['x', 'y', 'x', 'y']);
  });

  it('forgets the state when the binding shrinks to one node and grows back', () => {
    const p = new NodePicker();
    const even = [{ node_id: 'a', priority: 0, weight: 1 }, { node_id: 'b', priority: 0, weight: 1 }];
    expect(p.order('s', even, all)[0]).toBe('a');
    expect(p.order('s', [{ node_id: 'b', priority: 0, weight: 1 }], all)).toEqual(['b']);
    expect(p.order('s', [{ node_id: 'b', priority: 0, weight: 1 }], () => false)).toEqual([]);
    expect(p.order('s', [...even], all)[0]).toBe('a');
  });
});
