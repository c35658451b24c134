// Picks the order in which a model's deployments are tried: lowest `priority` first, weighted random
// within a priority, deployments cooling down after a failure last (they are still tried when
// nothing else is left: a cooled-down deployment beats none).
import type { Deployment } from '../catalog/catalog.ts';

export interface Router {
  order(deployments: Deployment[]): Deployment[];
  /** Records a failure; the deployment cools down for `seconds`. */
  fail(d: Deployment, seconds?: number): void;
  ok(d: Deployment): void;
  /** Drops the cooldown of deployments that were removed or whose provider changed. */
  forget(deploymentIds: Iterable<string>): void;
}

export function createRouter(cooldownSeconds: number, now: () => number = Date.now, random: () => number = Math.random): Router {
  const coolUntil = new Map<string, number>();
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
  return {
    order(deployments) {
      if (deployments.length === 1 && coolUntil.size === 0) return deployments;
      const t = now();
      const ready = deployments.filter((d) => !cooling(d, t));
      const cold = deployments.filter((d) => cooling(d, t)).sort((a, b) => coolUntil.get(a.id)! - coolUntil.get(b.id)!);
      const priorities = [...new Set(ready.map((d) => d.priority))].sort((a, b) => a - b);
      return [...priorities.flatMap((p) => weighted(ready.filter((d) => d.priority === p))), ...cold];
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
    forget(ids) {
      for (const id of ids) coolUntil.delete(id);
    },
  };
}
