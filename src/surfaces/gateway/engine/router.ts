// Picks the order in which a model's deployments are tried: lowest `priority` first, then within a
// priority by the model's routing strategy, deployments cooling down after a failure last (they are
// still tried when nothing else is left: a cooled-down deployment beats none).
//
// Strategies within a priority:
// - `weighted` (default): random, in proportion to `weight`.
// - `least_busy`: fewest calls in flight from this appliance first (ties: by weight), which evens out
//   deployments whose answers take different times.
// - `latency`: lowest time to answer first — a moving average (EWMA, α 0.3) of the time from sending
//   a request to the answer's head (streams) or whole body (other calls), over successful calls. A
//   deployment without a sample, or whose last sample is older than `LATENCY_STALE_MS`, is tried
//   first once (so a slow deployment that recovered is seen again within that time).
import type { Deployment, RoutingStrategy } from '../catalog/catalog.ts';

export interface Router {
  order(deployments: Deployment[], strategy?: RoutingStrategy): Deployment[];
  /** A call to `d` starts (counted in flight until `end`). */
  begin(d: Deployment): void;
  end(d: Deployment): void;
  /** Records a failure; the deployment cools down for `seconds`. */
  fail(d: Deployment, seconds?: number): void;
  /** Records a success, and how long the deployment took to answer. */
  ok(d: Deployment, latencyMs?: number): void;
  /** Drops what is known of deployments that were removed or whose provider changed. */
  forget(deploymentIds: Iterable<string>): void;
  /** What the router knows of a deployment now (for the admin API). */
  stats(deploymentId: string): DeploymentStats;
}

export interface DeploymentStats {
  in_flight: number;
  latency_ms: number | null;
  cooling_until: string | null;
}

export const LATENCY_STALE_MS = 30_000;
const ALPHA = 0.3;

interface Live {
  inFlight: number;
  latency: number; // EWMA, ms; NaN: no sample
  sampledAt: number;
}

export function createRouter(cooldownSeconds: number, now: () => number = Date.now, random: () => number = Math.random): Router {
  const coolUntil = new Map<string, number>();
  const live = new Map<string, Live>();
  const liveOf = (d: Deployment): Live => {
    let l = live.get(d.id);
    if (!l) live.set(d.id, (l = { inFlight: 0, latency: Number.NaN, sampledAt: 0 }));
    return l;
  };
  const cooling = (d: Deployment, t: number) => {
    const until = coolUntil.get(d.id);
    if (until === undefined) return false;
    if (until > t) return true;
    coolUntil.delete(d.id);
    return false;
  };
  const weighted = (group: Deployment[]): Deployment[] => {
    const left = [...group];
    const out: Deployment[] = [];
    while (left.length) {
      const total = left.reduce((s, d) => s + Math.max(0, d.weight), 0);
      let pick = 0;
      if (total > 0) {
        let r = random() * total;
        pick = left.findIndex((d) => (r -= Math.max(0, d.weight)) < 0);
        if (pick < 0) pick = left.length - 1;
      }
      out.push(left.splice(pick, 1)[0]!);
    }
    return out;
  };
  /** Weighted order, then a stable sort by `rank`: ties keep their weighted order. */
  const ranked = (group: Deployment[], rank: (d: Deployment) => number): Deployment[] => {
    const ranks = new Map(group.map((d) => [d.id, rank(d)]));
    return weighted(group).sort((a, b) => ranks.get(a.id)! - ranks.get(b.id)!);
  };
  const within = (group: Deployment[], strategy: RoutingStrategy, t: number): Deployment[] => {
    if (group.length < 2 || strategy === 'weighted') return weighted(group);
    if (strategy === 'least_busy') return ranked(group, (d) => live.get(d.id)?.inFlight ?? 0);
    return ranked(group, (d) => {
      const l = live.get(d.id);
      return !l || Number.isNaN(l.latency) || t - l.sampledAt > LATENCY_STALE_MS ? -1 : l.latency;
    });
  };
  return {
    order(deployments, strategy = 'weighted') {
      if (deployments.length === 1 && coolUntil.size === 0) return deployments;
      const t = now();
      const ready = deployments.filter((d) => !cooling(d, t));
      const cold = deployments.filter((d) => cooling(d, t)).sort((a, b) => coolUntil.get(a.id)! - coolUntil.get(b.id)!);
      const priorities = [...new Set(ready.map((d) => d.priority))].sort((a, b) => a - b);
      return [...priorities.flatMap((p) => within(ready.filter((d) => d.priority === p), strategy, t)), ...cold];
    },
    begin(d) {
      liveOf(d).inFlight++;
    },
    end(d) {
      const l = live.get(d.id);
      if (l && l.inFlight > 0) l.inFlight--;
    },
    fail(d, seconds = cooldownSeconds) {
      const t = now();
      // Failures are rare: a good moment to drop cooldowns that ran out for deployments no longer
      // routed to (e.g. a request that failed on a deployment an edit had just removed).
      for (const [id, until] of coolUntil) if (until <= t) coolUntil.delete(id);
      coolUntil.set(d.id, t + Math.min(seconds, 3600) * 1000);
    },
    ok(d, latencyMs) {
      if (coolUntil.size) coolUntil.delete(d.id);
      if (latencyMs === undefined) return;
      const l = liveOf(d);
      l.latency = Number.isNaN(l.latency) ? latencyMs : l.latency + ALPHA * (latencyMs - l.latency);
      l.sampledAt = now();
    },
    forget(ids) {
      for (const id of ids) {
        coolUntil.delete(id);
        const l = live.get(id);
        // Calls in flight still end on it; what was measured no longer applies.
        if (l) {
          l.latency = Number.NaN;
          if (l.inFlight === 0) live.delete(id);
        }
      }
    },
    stats(id) {
      const l = live.get(id);
      const until = coolUntil.get(id);
      return {
        in_flight: l?.inFlight ?? 0,
        latency_ms: l && !Number.isNaN(l.latency) ? Math.round(l.latency * 100) / 100 : null,
        cooling_until: until !== undefined && until > now() ? new Date(until).toISOString() : null,
      };
    },
  };
}
