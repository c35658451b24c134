// Which node serves a request: the lowest priority number with an online node wins; within one
// priority, smooth weighted round robin (the nginx algorithm: even spread, no bursts). Offline nodes
// are skipped, so failover needs no health probe beyond the registry's heartbeat view.
import type { ServiceNode } from './services-store.ts';

export class NodePicker {
  private current = new Map<string, Map<string, number>>();

  /** Online candidates in the order to try them: the WRR pick first, then the rest by priority. */
  order(serviceId: string, nodes: ServiceNode[], isOnline: (id: string) => boolean): string[] {
    const online = nodes.filter((n) => isOnline(n.node_id));
    if (!online.length) return [];
    const best = Math.min(...online.map((n) => n.priority));
    const group = online.filter((n) => n.priority === best);
    let state = this.current.get(serviceId);
    if (!state) this.current.set(serviceId, (state = new Map()));
    let total = 0;
    let pick: ServiceNode | null = null;
    for (const n of group) {
      const w = Math.max(1, n.weight);
      total += w;
      const c = (state.get(n.node_id) ?? 0) + w;
      state.set(n.node_id, c);
      if (!pick || c > state.get(pick.node_id)!) pick = n;
    }
    state.set(pick!.node_id, state.get(pick!.node_id)! - total);
    const rest = online.filter((n) => n !== pick).sort((a, b) => a.priority - b.priority).map((n) => n.node_id);
    return [pick!.node_id, ...rest];
  }

  forget(serviceId: string): void {
    this.current.delete(serviceId);
  }
}
