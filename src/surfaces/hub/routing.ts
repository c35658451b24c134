// Which node serves a request: the lowest priority number with an online node wins; within one
// priority, smooth weighted round robin (the nginx algorithm: even spread, no bursts). Offline nodes
// are skipped, so failover needs no health probe beyond the registry's heartbeat view. The WRR state
// belongs to one binding: when a service's nodes, priorities or weights change (PATCH
// /api/v1/keys/{id}), the next pick starts from fresh state instead of carrying old counters over.
import type { ServiceNode } from './services-store.ts';

const bindingOf = (nodes: ServiceNode[]) => nodes.map((n) => `${n.node_id}:${n.priority}:${n.weight}`).join(',');

export class NodePicker {
  /** `nodes` is the array the binding was last seen in: the service lookup hands out the same one until it changes. */
  private current = new Map<string, { nodes: ServiceNode[]; binding: string; weights: Map<string, number> }>();

  /** Online candidates in the order to try them: the WRR pick first, then the rest by priority. */
  order(serviceId: string, nodes: ServiceNode[], isOnline: (id: string) => boolean): string[] {
    if (nodes.length === 1) {
      // Nothing to balance (and no state to keep for a later binding).
      if (this.current.size) this.current.delete(serviceId);
      const id = nodes[0]!.node_id;
      return isOnline(id) ? [id] : [];
    }
    const online = nodes.filter((n) => isOnline(n.node_id));
    if (!online.length) return [];
    const best = Math.min(...online.map((n) => n.priority));
    const group = online.filter((n) => n.priority === best);
    let held = this.current.get(serviceId);
    if (held?.nodes !== nodes) {
      const binding = bindingOf(nodes);
      if (held?.binding === binding) held.nodes = nodes;
      else this.current.set(serviceId, (held = { nodes, binding, weights: new Map() }));
    }
    const state = held.weights;
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
