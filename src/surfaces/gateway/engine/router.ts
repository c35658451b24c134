// Picks the order in which a model's deployments are tried: lowest `priority` first, then within a
// priority by the model's routing strategy, deployments cooling down after a failure last (they are
// still tried when nothing else is left: a cooled-down deployment beats none).
//
// Strategies within a priority:
// - `weighted` (default): random, in proportion to `weight`.
// - `least_busy`: fewest calls in flight from this appliance first (ties: by weight), which evens out
//   deployments whose answers take different times.
// - `latency`: quickest first, by moving averages (EWMA, α 0.3) over successful calls, kept apart by
//   kind so that calls of different sizes compare: a stream is ranked by time to first token (from
//   sending the request to its first chunk), another call by time per output token (the whole
//   answer's time over the output tokens its usage reports). When a deployment in the group has
//   answers of that kind but none with output tokens lately (embeddings, speech, a provider that
//   reports no usage), the group is ranked by the whole answer's time instead, for every deployment
//   alike. A deployment without a sample of the figure used, or whose last one is older than
//   `LATENCY_STALE_MS`, is tried first once (so a slow deployment that recovered is seen again within
//   that time).
import type { Deployment, RoutingStrategy } from '../catalog/catalog.ts';

export interface Router {
  /** The order to try `deployments` in, for a streamed call or another (`latency` ranks them apart). */
  order(deployments: Deployment[], strategy?: RoutingStrategy, stream?: boolean): Deployment[];
  /** A call to `d` starts (counted in flight until `end`). */
  begin(d: Deployment): void;
  end(d: Deployment): void;
  /** Records a failure; the deployment cools down for `seconds`. */
  fail(d: Deployment, seconds?: number): void;
  /** Records a success (a failed deployment's cooldown ends). */
  ok(d: Deployment): void;
  /**
   * How long a successful call took, in ms from sending it: a stream's time to its first chunk, or
   * another call's whole answer, with the output tokens its usage reported (none: not known).
   */
  took(d: Deployment, stream: boolean, ms: number, outputTokens?: number | null): void;
  /** Drops what is known of deployments that were removed or whose provider changed. */
  forget(deploymentIds: Iterable<string>): void;
  /** What the router knows of a deployment now (for the admin API). */
  stats(deploymentId: string): DeploymentStats;
}

export interface DeploymentStats {
  in_flight: number;
  /** Non-streamed calls: the whole answer's time (EWMA, ms). */
  latency_ms: number | null;
  /** Non-streamed calls that reported output tokens: time per output token (EWMA, ms). */
  ms_per_output_token: number | null;
  /** Streams: time to the first chunk (EWMA, ms). */
  ttft_ms: number | null;
  cooling_until: string | null;
}

export const LATENCY_STALE_MS = 30_000;
const ALPHA = 0.3;

/** A moving average and when it last moved (`value` NaN: no sample). */
class Ewma {
  value = Number.NaN;
  at = 0;

  add(x: number, t: number): void {
    this.value = Number.isNaN(this.value) ? x : this.value + ALPHA * (x - this.value);
    this.at = t;
  }

  /** The average, or null when there is none or it is stale at `t`. */
  fresh(t: number): number | null {
    return Number.isNaN(this.value) || t - this.at > LATENCY_STALE_MS ? null : this.value;
  }

  clear(): void {
    this.value = Number.NaN;
  }

  shown(): number | null {
    return Number.isNaN(this.value) ? null : Math.round(this.value * 100) / 100;
  }
}

interface Live {
  inFlight: number;
  /** Non-streamed calls: the whole answer. */
  whole: Ewma;
  /** Non-streamed calls with output tokens: per token. */
  perToken: Ewma;
  /** Streams: to the first chunk. */
  ttft: Ewma;
}

export function createRouter(cooldownSeconds: number, now: () => number = Date.now, random: () => number = Math.random): Router {
  const coolUntil = new Map<string, number>();
  const live = new Map<string, Live>();
  const liveOf = (d: Deployment): Live => {
    let l = live.get(d.id);
    if (!l) live.set(d.id, (l = { inFlight: 0, whole: new Ewma(), perToken: new Ewma(), ttft: new Ewma() }));
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
  /** Which figure ranks `group` for a call: per output token unless a measured deployment has none. */
  const figureFor = (group: Deployment[], stream: boolean, t: number): 'ttft' | 'perToken' | 'whole' => {
    if (stream) return 'ttft';
    for (const d of group) {
      const l = live.get(d.id);
      if (l && l.whole.fresh(t) !== null && l.perToken.fresh(t) === null) return 'whole';
    }
    return 'perToken';
  };
  const within = (group: Deployment[], strategy: RoutingStrategy, stream: boolean, t: number): Deployment[] => {
    if (group.length < 2 || strategy === 'weighted') return weighted(group);
    if (strategy === 'least_busy') return ranked(group, (d) => live.get(d.id)?.inFlight ?? 0);
    const figure = figureFor(group, stream, t);
    return ranked(group, (d) => live.get(d.id)?.[figure].fresh(t) ?? -1);
  };
  return {
    order(deployments, strategy = 'weighted', stream = false) {
      if (deployments.length === 1 && coolUntil.size === 0) return deployments;
      const t = now();
      const ready = deployments.filter((d) => !cooling(d, t));
      const cold = deployments.filter((d) => cooling(d, t)).sort((a, b) => coolUntil.get(a.id)! - coolUntil.get(b.id)!);
      const priorities = [...new Set(ready.map((d) => d.priority))].sort((a, b) => a - b);
      return [...priorities.flatMap((p) => within(ready.filter((d) => d.priority === p), strategy, stream, t)), ...cold];
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
    ok(d) {
      if (coolUntil.size) coolUntil.delete(d.id);
    },
    took(d, stream, ms, outputTokens) {
      const l = liveOf(d);
      const t = now();
      if (stream) {
        l.ttft.add(ms, t);
        return;
      }
      l.whole.add(ms, t);
      if (outputTokens && outputTokens > 0) l.perToken.add(ms / outputTokens, t);
    },
    forget(ids) {
      for (const id of ids) {
        coolUntil.delete(id);
        const l = live.get(id);
        // Calls in flight still end on it; what was measured no longer applies.
        if (l) {
          l.whole.clear();
          l.perToken.clear();
          l.ttft.clear();
          if (l.inFlight === 0) live.delete(id);
        }
      }
    },
    stats(id) {
      const l = live.get(id);
      const until = coolUntil.get(id);
      return {
        in_flight: l?.inFlight ?? 0,
        latency_ms: l ? l.whole.shown() : null,
        ms_per_output_token: l ? l.perToken.shown() : null,
        ttft_ms: l ? l.ttft.shown() : null,
        cooling_until: until !== undefined && until > now() ? new Date(until).toISOString() : null,
      };
    },
  };
}
