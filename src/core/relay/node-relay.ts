// The seam between surfaces that need to reach a private host (the service proxy, gateway providers
// with `node_id`) and the hub that holds the agents' sockets. The hub surface installs the
// implementation at start; callers only see this interface (STYLE.md habit 1).
import { AppError } from '../errors/errors.ts';

export interface RelayRequest {
  method: string;
  /** Absolute URL as the agent will dial it (e.g. http://localhost:11434/v1/chat/completions). */
  url: string;
  headers: Record<string, string | string[]>;
  /** Request body, streamed; null for none. */
  body: AsyncIterable<Uint8Array> | null;
  /** Service slug whose agent-side credential the agent injects, when the route has one. */
  service?: string;
  signal?: AbortSignal;
}

export interface RelayResponse {
  status: number;
  headers: Record<string, string | string[]>;
  /** Response body, streamed with flow control; consume or cancel it. */
  body: AsyncIterable<Uint8Array>;
  /**
   * The whole body, when it had already arrived with the head (small responses do): a caller that
   * takes it need not touch `body`, which then yields the same bytes.
   */
  whole?: Buffer;
}

export interface NodeRelay {
  isOnline(nodeId: string): boolean;
  /** Sends a request through the node's agent. Throws AppError 'unavailable' (8002) when offline. */
  request(nodeId: string, req: RelayRequest): Promise<RelayResponse>;
}

export const NODE_OFFLINE = 8002;
export const NODE_REGISTRATION_FAILED = 8003;

export function nodeOffline(nodeId: string): AppError {
  return new AppError('unavailable', `node ${nodeId} is offline`, { numericCode: NODE_OFFLINE });
}

/**
 * The node a provider (or anything else) routes through was deleted (`DELETE /api/v1/nodes/{id}?force=true`):
 * the same 503 8002 as a service left with no node, and what to do about it.
 */
export function nodeGone(nodeId: string): AppError {
  return new AppError('unavailable', `no node bound: node ${nodeId} was deleted; bind a node again (a provider: nexus provider update NAME --node NODE)`, { numericCode: NODE_OFFLINE });
}

/** Holder the hub fills in; until then every node counts as offline. */
export class NodeRelayHolder implements NodeRelay {
  private impl: NodeRelay | null = null;
  install(impl: NodeRelay): void {
    this.impl = impl;
  }
  isOnline(nodeId: string): boolean {
    return this.impl?.isOnline(nodeId) ?? false;
  }
  request(nodeId: string, req: RelayRequest): Promise<RelayResponse> {
    if (!this.impl) return Promise.reject(nodeOffline(nodeId));
    return this.impl.request(nodeId, req);
  }
}
