// The hub's parts, built once per appliance context and shared by the public and admin scopes: the
// node and service services, the registry of connected agents (which is the NodeRelay), the proxy.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { AppContext } from '../../core/context.ts';
import { customMetric } from '../../core/metrics/metrics.ts';
import { AgentSession } from './agent-session.ts';
import type { LongPollSocket } from './long-poll.ts';
import { CLOSE } from '../../protocol/version.ts';
import { nodeGone } from '../../core/relay/node-relay.ts';
import { tuneHeapForRelay } from '../../protocol/heap.ts';
import { createNodesService } from './nodes-service.ts';
import type { NodeRow } from './nodes-store.ts';
import { createProxy, type Proxy } from './proxy.ts';
import { Registry } from './registry.ts';
import { createServiceLookup } from './service-lookup.ts';
import { createServices } from './services.ts';

export interface NodeView {
  id: string;
  name: string;
  owner_id: string;
  status: 'online' | 'offline' | 'pending';
  last_seen: string | null;
  enrolled_at: string | null;
  registration_expires_at: string | null;
  created_at: string;
}

function createHub(ctx: AppContext) {
  tuneHeapForRelay();
  const log = ctx.log.child({ surface: 'hub' });
  const nodes = createNodesService(ctx);
  const services = createServices(ctx, nodes);
  const registry = new Registry(log, (nodeId, online) => {
    if (!ctx.db.open) return;
    nodes.store.touch(nodeId, new Date().toISOString());
    if (!online) log.info({ node: nodeId }, 'node offline');
  });
  const proxy = createProxy(ctx, services, registry);
  registerRelayMetrics(ctx, registry, proxy);
  const lookup = createServiceLookup(ctx.db, services.store);
  // A node with no live session is offline, or gone when its row was deleted (looked up only then).
  ctx.relay.install({
    isOnline: (nodeId) => registry.isOnline(nodeId),
    request: (nodeId, req) =>
      registry.isOnline(nodeId) || nodes.store.get(nodeId) ? registry.request(nodeId, req) : Promise.reject(nodeGone(nodeId)),
  });

  const timings = {
    heartbeatSeconds: ctx.config.hub.heartbeatSeconds,
    offlineAfterSeconds: ctx.config.hub.offlineAfterSeconds,
    authTimeoutSeconds: ctx.config.hub.authTimeoutSeconds,
    reauthSeconds: ctx.config.hub.reauthSeconds,
  };

  /** Long-poll sessions by id, authenticated or not, until closed (long-poll.ts adds and removes them). */
  const longPolls = new Map<string, LongPollSocket>();

  return {
    nodes,
    services,
    registry,
    proxy,
    lookup,

    accept(socket: WebSocket, remote: string, raw?: Socket): void {
      const session = new AgentSession(socket, remote, {
        timings,
        log,
        verify: (id, token) => nodes.verify(id, token),
        online: (s) => registry.add(s),
        offline: (s) => registry.remove(s),
      }, raw);
      session.start();
    },

    nodeView(n: NodeRow): NodeView {
      const live = registry.lastSeen(n.id);
      return {
        id: n.id,
        name: n.name,
        owner_id: n.owner_id,
        status: live ? 'online' : n.enrolled_at ? 'offline' : 'pending',
        last_seen: live?.toISOString() ?? n.last_seen_at,
        enrolled_at: n.enrolled_at,
        registration_expires_at: n.registration_expires_at,
        created_at: n.created_at,
      };
    },

    /** Tells every agent the hub is going away (1001), over either transport; their streams end. */
    goingAway(): void {
      registry.closeAll();
      for (const socket of longPolls.values()) socket.close(CLOSE.goingAway, 'hub shutting down');
    },

    longPolls,

    close(): void {
      registry.closeAll();
      void proxy.close();
    },
  };
}

/** Gauges and counters of the agents' connections, read when /metrics is scraped. */
function registerRelayMetrics(ctx: AppContext, registry: Registry, proxy: Proxy): void {
  const r = ctx.metrics.registry;
  r.registerMetric(customMetric('nexus_hub_agents_connected', 'Agents connected to the hub now', 'gauge', () => [{ labels: {}, value: registry.size }]));
  r.registerMetric(customMetric('nexus_hub_streams_open', 'Streams (relayed requests and WebSockets) open over agent connections now', 'gauge', () => [{ labels: {}, value: registry.totals().streams }]));
  r.registerMetric(customMetric('nexus_hub_agent_bytes_total', 'Bytes over agent connections since start, frames included: in = from agents, out = to agents', 'counter', () => {
    const t = registry.totals();
    return [{ labels: { direction: 'in' }, value: t.bytesIn }, { labels: { direction: 'out' }, value: t.bytesOut }];
  }));
  r.registerMetric(customMetric('nexus_hub_proxy_retries_total', 'Proxied requests sent to another node after the one tried failed before answering, by failure', 'counter', () =>
    [...proxy.retries()].map(([reason, value]) => ({ labels: { reason }, value }))));
  // No `service` label on these: slugs are chosen by users and an appliance may proxy hundreds of
  // services, each a series per reason for ever; the audit row names the service of each refusal.
  r.registerMetric(customMetric('nexus_hub_proxy_retries_refused_total', 'Retries on another node that a failure allowed but were not made: budget = the service\'s retry budget was spent, timeout = past hub.retryTimeoutSeconds', 'counter', () =>
    [...proxy.retriesRefused()].map(([reason, value]) => ({ labels: { reason }, value }))));
  r.registerMetric(customMetric('nexus_hub_proxy_requests_in_flight', 'Proxied requests through nodes waiting for their answer now, every service together (what each service\'s retry budget is a share of, for its own)', 'gauge', () => [{ labels: {}, value: proxy.inFlight().requests }]));
  r.registerMetric(customMetric('nexus_hub_proxy_retries_in_flight', 'Retries on another node waiting for their answer now, every service together (each held within its service\'s retry budget)', 'gauge', () => [{ labels: {}, value: proxy.inFlight().retries }]));
  r.registerMetric(customMetric('nexus_hub_proxy_retry_budgets', 'Services with a proxied request through nodes waiting for its answer now: the per-service retry budgets held in memory', 'gauge', () => [{ labels: {}, value: proxy.budgets().held }]));
  r.registerMetric(customMetric('nexus_hub_proxy_retry_body_bytes', 'Bytes of request bodies kept now for a retry on another node (within hub.retryBodyTotalBytes)', 'gauge', () => [{ labels: {}, value: proxy.keptBodies().held }]));
  r.registerMetric(customMetric('nexus_hub_proxy_retry_bodies_not_kept_total', 'Request bodies to a service bound to several nodes that could not be kept for a retry: size = larger than hub.retryBodyMaxBytes, total = hub.retryBodyTotalBytes was in use', 'counter', () =>
    [...proxy.keptBodies().notKept].map(([reason, value]) => ({ labels: { reason }, value }))));
}

export type Hub = ReturnType<typeof createHub>;

const hubs = new WeakMap<AppContext, Hub>();

/** The one Hub of this context (the public and the admin app both ask for it). */
export function hubFor(ctx: AppContext): Hub {
  let hub = hubs.get(ctx);
  if (!hub) hubs.set(ctx, (hub = createHub(ctx)));
  return hub;
}
