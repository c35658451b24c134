// The one way upstream requests leave the gateway: undici with a keep-alive pool, or, for a provider
// that names a node, the hub's NodeRelay (core/relay/node-relay.ts) so the agent on that node dials
// the provider from inside its network.
import { Agent, request } from 'undici';
import type { NodeRelay } from '../../../core/relay/node-relay.ts';
import type { Provider } from '../catalog/catalog.ts';
import type { UpstreamRequest } from '../providers/types.ts';

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Uint8Array>;
  /** Releases the body without reading it (returns the connection to the pool when possible). */
  discard(): void;
}

export interface Upstream {
  send(p: Provider, req: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

async function* once(body: string): AsyncIterable<Uint8Array> {
  yield Buffer.from(body, 'utf8');
}

export function createUpstream(relay: NodeRelay, opts: { connectTimeoutMs: number; headersTimeoutMs: number; bodyTimeoutMs: number }): Upstream {
  const agent = new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 300_000,
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: opts.bodyTimeoutMs,
    connect: { timeout: opts.connectTimeoutMs },
  });
  return {
    async send(p, req, signal) {
      if (p.nodeId) {
        const res = await relay.request(p.nodeId, {
          method: req.method,
          url: req.url,
          headers: req.headers,
          body: req.body === null ? null : once(req.body),
          signal,
        });
        return {
          status: res.status,
          headers: res.headers,
          body: res.body,
          discard() {
            const it = res.body[Symbol.asyncIterator]();
            void it.return?.()?.catch(() => {});
          },
        };
      }
      const res = await request(req.url, { method: req.method, headers: req.headers, body: req.body, dispatcher: agent, signal });
      return {
        status: res.statusCode,
        headers: res.headers,
        body: res.body,
        discard() {
          res.body.dump({ limit: 64 * 1024 }).catch(() => {});
        },
      };
    },
    close: () => agent.close(),
  };
}

/** Reads a (small) body whole, refusing to hold more than `limit` bytes. */
export async function readAll(body: AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body) {
    size += c.byteLength;
    if (size > limit) throw new Error(`upstream body is larger than ${limit} bytes`);
    chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}
