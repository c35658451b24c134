// The per-service retry budgets: their arithmetic, and the proxy's accounting of them on every way a
// request through nodes can end (answered, failed, refused a retry, cancelled by the caller, out of
// time), one service's failures leaving another's retries alone.
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
import { RetryBudgets } from './retry-budget.ts';
import type { Services } from './services.ts';
import type { ServiceRow } from './services-store.ts';

describe('RetryBudgets', () => {
  it('allows max(min, percent × requests in flight) retries at once', () => {
    const b = new RetryBudgets(20, 3);
    const tickets = Array.from({ length: 10 }, () => b.admit('s'));
    expect(b.limit(10)).toBe(3);
    expect(tickets.slice(0, 4).map((t) => t.retry())).toEqual([true, true, true, false]);
    expect(b.inFlight).toEqual({ requests: 10, retries: 3 });
    const more = Array.from({ length: 10 }, () => b.admit('s')); // 20 requests: 20 % is 4
    expect(tickets[3]!.retry()).toBe(true);
    expect(tickets[4]!.retry()).toBe(false);
    // A request's next retry gives back the slot of its last one first.
    expect(tickets[0]!.retry()).toBe(true);
    expect(b.inFlight.retries).toBe(4);
    for (const t of [...tickets, ...more]) t.done();
    expect(b.inFlight).toEqual({ requests: 0, retries: 0 });
    expect(b.held).toBe(0);
  });

  it('keeps one budget per service: one spent leaves the others whole; a service is forgotten when idle', () => {
    const b = new RetryBudgets(20, 3);
    const a = Array.from({ length: 40 }, () => b.admit('a'));
    const other = b.admit('b');
    expect(b.held).toBe(2);
    // Service a: 20 % of its own 40 requests, not of the 41 of the hub.
    expect(a.map((t) => t.retry()).filter(Boolean)).toHaveLength(8);
    expect(other.retry()).toBe(true);
    expect(b.of('a')).toEqual({ requests: 40, retries: 8 });
    expect(b.of('b')).toEqual({ requests: 1, retries: 1 });
    expect(b.inFlight).toEqual({ requests: 41, retries: 9 });
    other.done();
    expect(b.held).toBe(1);
    expect(b.of('b')).toEqual({ requests: 0, retries: 0 });
    for (const t of a) t.done();
    expect(b.held).toBe(0);
    expect(b.inFlight).toEqual({ requests: 0, retries: 0 });
    // A service seen again starts from zero.
    const again = b.admit('a');
    expect(b.of('a')).toEqual({ requests: 1, retries: 0 });
    again.done();
    expect(b.held).toBe(0);
  });

  it('thousands of services come and go without leaving state behind', () => {
    const b = new RetryBudgets(20, 3);
    for (let round = 0; round < 3; round++) {
      const tickets = Array.from({ length: 5000 }, (_, i) => b.admit(`svc-${round}-${i % 1000}`));
      expect(b.held).toBe(1000);
      tickets.forEach((t, i) => i % 3 === 0 && t.retry());
      tickets.forEach((t) => t.done());
      expect(b.held).toBe(0);
      expect(b.inFlight).toEqual({ requests: 0, retries: 0 });
    }
  });

  it('done is idempotent and ends a ticket for good', () => {
    const b = new RetryBudgets(100, 0);
    const t = b.admit('s');
    expect(t.retry()).toBe(true);
    t.done();
    t.done();
    expect(t.retry()).toBe(false);
    expect(b.inFlight).toEqual({ requests: 0, retries: 0 });
  });

  it('0 % with no minimum turns retries off; 100 % lets every request retry', () => {
    const off = new RetryBudgets(0, 0);
    expect(off.admit('s').retry()).toBe(false);
    const all = new RetryBudgets(100, 0);
    const ts = Array.from({ length: 5 }, () => all.admit('s'));
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

const serviceNamed = (id: string) => ({ id, slug: id, endpoint_url: 'http://127.0.0.1:9/', auth_method: 'none', auth_key_name: null }) as unknown as ServiceRow;
const service = serviceNamed('svc');
const bound = ['a', 'b', 'c'].map((node_id, priority) => ({ node_id, priority, weight: 1 }));
function call(signal = new AbortController().signal, method = 'GET', svc = service): ProxyCall & { tries: NodeTry[] } {
  return { service: svc, method, rest: 'x', search: '', headers: {}, strip: [], body: null, signal, bound, tries: [] };
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

  it("a burst of failures on one service spends its own budget: another service's retries still go through", async () => {
    const held: Array<() => void> = [];
    const healthy: Try = () => new Promise((resolve) => held.push(() => resolve(answer())));
    const p = proxyWith({ a: async () => Promise.reject(connectFailed()), b: healthy, c: healthy }, { retryBudgetPercent: 20, retryBudgetMinConcurrent: 3 });
    const burst = Array.from({ length: 40 }, () => call(undefined, 'GET', serviceNamed('busy')));
    const results = burst.map((c) => p.forward(c).then((r) => r.status, (e: RelayError) => e.reason));
    await new Promise((r) => setTimeout(r, 20));
    expect(held.length).toBe(8);
    expect(p.budgets().of('busy')).toEqual({ requests: 8, retries: 8 });
    // With one budget for the hub, these would find 8 retries of 9 requests in flight over max(3, 1.8).
    const quiet = Array.from({ length: 3 }, () => call(undefined, 'GET', serviceNamed('quiet')));
    const quietResults = quiet.map((c) => p.forward(c).then((r) => r.status, (e: RelayError) => e.reason));
    await new Promise((r) => setTimeout(r, 20));
    expect(held.length).toBe(11);
    expect(p.budgets().of('quiet')).toEqual({ requests: 3, retries: 3 });
    expect(p.budgets().held).toBe(2);
    held.forEach((release) => release());
    expect(await Promise.all(quietResults)).toEqual([200, 200, 200]);
    expect((await Promise.all(results)).filter((s) => s === 200)).toHaveLength(8);
    expect(quiet.every((c) => c.tries.at(-1)!.retry_refused === undefined)).toBe(true);
    expect(p.inFlight()).toEqual({ requests: 0, retries: 0 });
    expect(p.budgets().held).toBe(0);
  });

  it('hundreds of parallel requests over many services, failing and answering at random: the counts come back to zero exactly', async () => {
    let n = 0;
    const flaky: Try = () => new Promise((resolve, reject) => setTimeout(() => (n++ % 3 ? resolve(answer()) : reject(connectFailed())), n % 7));
    const p = proxyWith({ a: flaky, b: flaky, c: flaky }, { retryBudgetPercent: 20, retryBudgetMinConcurrent: 1 });
    const calls = Array.from({ length: 600 }, (_, i) => call(undefined, 'GET', serviceNamed(`s${i % 37}`)));
    const out = await Promise.all(calls.map((c) => p.forward(c).then((r) => r.status, (e: RelayError) => e.reason)));
    expect(out.filter((s) => s === 200).length).toBeGreaterThan(300);
    expect(out.every((s) => s === 200 || s === 'connect_failed')).toBe(true);
    expect(p.inFlight()).toEqual({ requests: 0, retries: 0 });
    expect(p.budgets().held).toBe(0);
    const retried = [...p.retries()].reduce((sum, [, v]) => sum + v, 0);
    const refused = [...p.retriesRefused()].reduce((sum, [, v]) => sum + v, 0);
    // Every failure that could go on either went on or was refused, and only those.
    const failedTries = calls.flatMap((c) => c.tries).filter((t) => t.error).length;
    const lastTriesFailedWithNoNodeLeft = calls.filter((c) => c.tries.length === 3 && c.tries[2]!.error).length;
    expect(retried + refused).toBe(failedTries - lastTriesFailedWithNoNodeLeft);
  });
});
