// Connected agents by node id, and the NodeRelay the rest of the appliance reaches nodes through
// (core/relay/node-relay.ts). One live session per node: a new connection replaces the old one.
import type { Logger } from '../../core/log/log.ts';
import { nodeOffline, type NodeRelay, type RelayRequest, type RelayResponse } from '../../core/relay/node-relay.ts';
import { CLOSE } from '../../protocol/version.ts';
import type { AgentSession } from './agent-session.ts';

export interface AgentInfo {
  node_id: string;
  remote: string;
  connected_at: string;
  last_seen: string;
  streams: number;
  bytes_in: number;
  bytes_out: number;
}

/** What the connected agents amount to, for /metrics. */
export interface RelayTotals {
  agents: number;
  streams: number;
  /** Since the process started, over every connection, closed ones included (frames counted whole). */
  bytesIn: number;
  bytesOut: number;
}

export class Registry implements NodeRelay {
  private sessions = new Map<string, AgentSession>();
  /** Sessions whose bytes moved to the totals below (replaced or gone). */
  private retired = new WeakSet<AgentSession>();
  private retiredIn = 0;
  private retiredOut = 0;
  private log: Logger;
  private onChange: (nodeId: string, online: boolean) => void;

  constructor(log: Logger, onChange: (nodeId: string, online: boolean) => void) {
    this.log = log;
    this.onChange = onChange;
  }

  add(session: AgentSession): void {
    const id = session.nodeId!;
    const old = this.sessions.get(id);
    this.sessions.set(id, session);
    if (old && old !== session) {
      this.retire(old);
      old.close(CLOSE.replaced, 'replaced by a newer connection of the same node');
    }
    this.log.info({ node: id, remote: session.remote }, 'agent connected');
    this.onChange(id, true);
  }

  remove(session: AgentSession): void {
    this.retire(session);
    const id = session.nodeId!;
    if (this.sessions.get(id) !== session) return;
    this.sessions.delete(id);
    this.onChange(id, false);
  }

  get(nodeId: string): AgentSession | undefined {
    return this.sessions.get(nodeId);
  }

  lastSeen(nodeId: string): Date | null {
    const s = this.sessions.get(nodeId);
    return s ? new Date(s.lastSeen) : null;
  }

  disconnect(nodeId: string, code: number, reason: string): boolean {
    const s = this.sessions.get(nodeId);
    if (!s) return false;
    s.close(code, reason);
    return true;
  }

  list(): AgentInfo[] {
    return [...this.sessions.values()].map((s) => ({
      node_id: s.nodeId!,
      remote: s.remote,
      connected_at: s.connectedAt.toISOString(),
      last_seen: new Date(s.lastSeen).toISOString(),
      streams: s.mux.size,
      bytes_in: s.mux.bytesIn,
      bytes_out: s.mux.bytesOut,
    }));
  }

  private retire(session: AgentSession): void {
    if (this.retired.has(session)) return;
    this.retired.add(session);
    this.retiredIn += session.mux.bytesIn;
    this.retiredOut += session.mux.bytesOut;
  }

  totals(): RelayTotals {
    const t = { agents: this.sessions.size, streams: 0, bytesIn: this.retiredIn, bytesOut: this.retiredOut };
    for (const s of this.sessions.values()) {
      t.streams += s.mux.size;
      t.bytesIn += s.mux.bytesIn;
      t.bytesOut += s.mux.bytesOut;
    }
    return t;
  }

  get size(): number {
    return this.sessions.size;
  }

  closeAll(): void {
    for (const s of [...this.sessions.values()]) s.close(CLOSE.goingAway, 'hub shutting down');
  }

  // ---- NodeRelay ----

  isOnline(nodeId: string): boolean {
    return this.sessions.has(nodeId);
  }

  request(nodeId: string, req: RelayRequest): Promise<RelayResponse> {
    const s = this.sessions.get(nodeId);
    if (!s) return Promise.reject(nodeOffline(nodeId));
    return s.request(req);
  }
}
