// The hub-wide retry budget: its arithmetic, and the proxy's accounting of it on every way a request
// through nodes can end (answered, failed, refused a retry, cancelled by the caller, out of time).
// The proxy runs for real; the agents are stand-ins behind the NodeRelay seam (core/relay), so that
// each try can be made to answer, fail or hang on cue.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../core/config/config.ts';
import type { AppContext } from '../../core/context.ts';
import type { RelayRequest, RelayResponse } from '../../core/relay/node-relay.ts';
import { RelayError, type AgentSession } from './agent-session.ts';
import { createProxy, type NodeTry, type ProxyCall } from './proxy.ts';
import type { Registry } from './registry.ts';
import { RetryBudget } from './retry-budget.ts';
import type { Services } from './services.ts';
import type { ServiceRow } from './services-store.ts';

describe('RetryBudget', () => {
  it('allows max(min, percent × requests in flight) retries at once', () => {
    const b = new RetryBudget(20, 3);
    const tickets = Array.from({ length: 10 }, () => b.admit());
    expect(b.limit()).toBe(3);
    expect(tickets.slice(0, 4).map((t) => t.retry())).toEqual([true, true, true, false]);
    expect(b.inFlight).toEqual({ requests: 10, retries: 3 });
    const more = Array.from({ length: 10 }, () => b.admit()); // 20 requests: 20 % is 4
    expect(tickets[3]!.retry()).toBe(true);
    expect(tickets[4]!.retry()).toBe(false);
    // A request's next retry gives back the slot of its last one first.
    expect(tickets[0]!.retry()).toBe(true);
    expect(b.inFlight.retries).toBe(4);
    for (const t of [...tickets, ...more]) t.done();
    expect(b.inFlight).toEqual({ requests: 0, retries: 0 });
  });

  it('done is idempotent and ends a ticket for good', () => {
    const b = new RetryBudget(100, 0);
    const t = b.admit();
    expect(t.retry()).toBe(true);
    t.done();
    t.done();
    expect(t.retry()).toBe(false);
    expect(b.inFlight).toEqual({ requests: 0, retries: 0 });
  });

  it('0 % with no minimum turns retries off; 100 % lets every request retry', () => {
    const off = new RetryBudget(0, 0);
    expect(off.admit().retry()).toBe(false);
    const all = new RetryBudget(100, 0);
    const ts = Array.from({ length: 5 }, () => all.admit());
    expect(ts.map((t) => t.retry())).toEqual([true, true, true, true, true]);
  });
});

// ---- the proxy's accounting, on every exit path ----

type Try = (req: RelayRequest) => Promise<RelayResponse>;
const connectFailed = () => new RelayError('bad_gateway', 'the node could not reach the service', 'unsent', 'connect_failed');
const answer = (): RelayResponse => ({ status: 200, headers: { 'content-type': 'text/plain' }, body: Readable.from([Buffer.from('ok')]), whole: Buffer.from('ok') });
/** A try that waits for the caller to give up (as the agent session does), then fails. */
const hang: Try = (req) => new Promise((_, reject) => req.signal!.addEventListener('abort', () => reject(new RelayError('bad_gateway', 'cancelled', 'lost', 'stream_reset')), { once: true }));

function proxyWith(nodes: Record<string, Try>, hub: Partial<typeof DEFAULTS.hub> = {}) {
  const config = { ...DEFAULTS, hub: { ...DEFAULTS.hub, ...hub } };
  const relay = { isOnline: (id: string) => id in nodes, request: (id: string, req: RelayRequest) => nodes[id]!(req) };
  const ctx = { config, state: {}, relay } as unknown as AppContext;
  // WebSocket dials go through the registry's sessions; theirs answer like the node's HTTP tries.
  const registry = {
    isOnline: (id: string) => id in nodes,
    get: (id: string) => (id in nodes ? ({ nodeId: id, features: new Set(), upgrade: async (req: RelayRequest) => ({ ...(await nodes[id]!(req)), accepted: false }) } as unknown as AgentSession) : undefined),
  } as unknown as Registry;
  const services = { credential: () => null, store: { nodes: () => [] } } as unknown as Services;
  return createProxy(ctx, services, registry);
}

const service = { id: 'svc', slug: 'svc', endpoint_url: 'http://127.0.0.1:9/', auth_method: 'none', auth_key_name: null } as unknown as ServiceRow;
const bound = ['a', 'b', 'c'].map((node_id, priority) => ({ node_id, priority, weight: 1 }));
function call(signal = new AbortController().signal, method = 'GET'): ProxyCall & { tries: NodeTry[] } {
  return { service, method, rest: 'x', search: '', headers: {}, strip: [], body: null, signal, bound, tries: [] };
}

describe('the proxy keeps the budget\'s counts on every exit path', () => {
  it('an answer, a failure on every node, and a failure that may not be retried each give back their counts', async () => {
    let calls = 0;
    const p = proxyWith({ a: async () => (calls++ ? answer() : Promise.reject(connectFailed())), b: async () => answer(), c: async () => answer() });
    const first = call();
    expect((await p.forward(first)).nodeId).toBe('b');
    expect(first.tries).toEqual([{ node_id: 'a', error: 'connect_failed' }, { node_id: 'b' }]);
    expect((await p.forward(call())).nodeId).toBe('a');
    expect(p.inFlight()).toEqual({ requests: 0, retries: 0 });

    const down = proxyWith({ a: async () => Promise.reject(connectFailed()), b: async () => Promise.reject(connectFailed()), c: async () => Promise.reject(connectFailed()) }, { retryBudgetMinConcurrent: 10 });
    const all = call();
    await expect(down.forward(all)).rejects.toMatchObject({ code: 'bad_gateway', reason: 'connect_failed' });
    expect(all.tries.map((t) => t.error)).toEqual(['connect_failed', 'connect_failed', 'connect_failed']);
    // A POST the service may have received is not retried.
    const lost = proxyWith({ a: async () => Promise.reject(new RelayError('bad_gateway', 'gone', 'lost', 'node_disconnected')), b: async () => answer(), c: async () => answer() });
    await expect(lost.forward(call(undefined, 'POST'))).rejects.toMatchObject({ reason: 'node_disconnected' });
    for (const x of [down, lost]) expect(x.inFlight()).toEqual({ requests: 0, retries: 0 });
    expect([...down.retries()]).toEqual([['connect_failed', 2]]);
  });

  it('a caller that goes away while a retry waits, and a WebSocket dial, give back theirs', async () => {
    const p = proxyWith({ a: async () => Promise.reject(connectFailed()), b: hang, c: hang });
    const abort = new AbortController();
    const pending = p.forward(call(abort.signal));
    await new Promise((r) => setTimeout(r, 20));
    expect(p.inFlight()).toEqual({ requests: 1, retries: 1 });
    abort.abort();
    await expect(pending).rejects.toMatchObject({ reason: 'stream_reset' });
    expect(p.inFlight()).toEqual({ requests: 0, retries: 0 });

    const ws = proxyWith({ a: async () => Promise.reject(connectFailed()), b: async () => answer(), c: async () => answer() });
    const dial = await ws.dialWebSocket(call());
    expect(dial).toMatchObject({ accepted: false, status: 200, nodeId: 'b' });
    expect(ws.inFlight()).toEqual({ requests: 0, retries: 0 });
  });

  it('past hub.retryTimeoutSeconds: no retry, the failure as it was, `retry_refused: timeout`', async () => {
    const slowFail: Try = () => new Promise((_, reject) => setTimeout(() => reject(connectFailed()), 80));
    const p = proxyWith({ a: slowFail, b: async () => answer(), c: async () => answer() }, { retryTimeoutSeconds: 0.05 });
    const c = call();
    await expect(p.forward(c)).rejects.toMatchObject({ code: 'bad_gateway', reason: 'connect_failed' });
    expect(c.tries).toEqual([{ node_id: 'a', error: 'connect_failed', retry_refused: 'timeout' }]);
    expect(p.inFlight()).toEqual({ requests: 0, retries: 0 });
    expect([...p.retriesRefused()]).toEqual([['timeout', 1]]);
  });

  it('a burst meeting a failing node retries within the budget; the rest get the failure with `retry_refused: budget`', async () => {
    const held: Array<() => void> = [];
    const healthy: Try = () => new Promise((resolve) => held.push(() => resolve(answer())));
    const p = proxyWith({ a: async () => Promise.reject(connectFailed()), b: healthy, c: healthy }, { retryBudgetPercent: 20, retryBudgetMinConcurrent: 3 });
    const calls = Array.from({ length: 40 }, () => call());
    const results = calls.map((c) => p.forward(c).then((r) => r.status, (e: RelayError) => e.reason));
    await new Promise((r) => setTimeout(r, 20));
    // All 40 were in flight when the first failures came: 20 % of 40 is 8.
    expect(held.length).toBe(8);
    expect(p.inFlight()).toEqual({ requests: 8, retries: 8 });
    held.forEach((release) => release());
    const out = await Promise.all(results);
    expect(out.filter((s) => s === 200)).toHaveLength(8);
    expect(out.filter((s) => s === 'connect_failed')).toHaveLength(32);
    expect(calls.filter((c) => c.tries.at(-1)!.retry_refused === 'budget')).toHaveLength(32);
    expect(p.inFlight()).toEqual({ requests: 0, retries: 0 });
    expect([...p.retriesRefused()]).toEqual([['budget', 32]]);
  });
});
