// The one way upstream requests leave the gateway: undici with a keep-alive pool, or, for a provider
// that names a node, the hub's NodeRelay (core/relay/node-relay.ts) so the agent on that node dials
// the provider from inside its network.
// Streams go through undici's `request()` (a Readable the gateway iterates as events arrive); a
// non-streamed answer goes through the gateway's own HTTP/1.1 client (core/http/http1-client.ts,
// which says why), handed over once its body is complete: no Readable, async iterator or per-call
// timer on the gateway's busiest path.
import { Agent, request } from 'undici';
import type { CallAbort } from '../../../core/http/call-abort.ts';
import { Http1Client, Http1Error, type Http1Answer } from '../../../core/http/http1-client.ts';
import type { NodeRelay } from '../../../core/relay/node-relay.ts';
import type { Provider } from '../catalog/catalog.ts';
import type { UpstreamRequest } from '../providers/types.ts';

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Uint8Array>;
  /** The whole body, refusing more than `limit` bytes. */
  read(limit: number): Promise<Buffer>;
  /** The whole body when it has already arrived (answers sent for with `whole`), else null. */
  readonly complete: Buffer | null;
  /** Releases the body without reading it (returns the connection to the pool when possible). */
  discard(): void;
}

export interface Upstream {
  /**
   * `whole`: the caller wants the body in one piece (non-streamed calls), at most `whole` bytes; the
   * answer is then handed over once its body is complete (or failed: `read()` rejects).
   */
  send(p: Provider, req: UpstreamRequest, abort: CallAbort, whole?: number): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

async function* once(body: Uint8Array): AsyncIterable<Uint8Array> {
  yield body;
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

/**
 * A whole answer from the gateway's own HTTP/1.1 client (core/http/http1-client.ts), as the gateway
 * reads it. An exchange that failed after the answer's head is still a response (whose `read()`
 * rejects), so it is never mistaken for an upstream that could not be reached.
 */
class WholeResponse implements UpstreamResponse {
  readonly status: number;
  readonly complete: Buffer | null;
  private readonly answer: Http1Answer | null;
  private readonly failure: Error | null;

  constructor(status: number, answer: Http1Answer | null, failure: Error | null) {
    this.status = status;
    this.answer = answer;
    this.complete = answer ? answer.body : null;
    this.failure = failure;
  }

  /** Parsed only when asked for: a 2xx answer's fields are not looked at on the busy path. */
  get headers(): Record<string, string | string[] | undefined> {
    return this.answer ? this.answer.headers : NO_HEADERS;
  }

  read(limit: number): Promise<Buffer> {
    const body = this.complete;
    if (!body) return Promise.reject(this.failure ?? new Error('upstream body is not complete'));
    return body.length > limit ? Promise.reject(new Error(`upstream body is larger than ${limit} bytes`)) : Promise.resolve(body);
  }

  get body(): AsyncIterable<Uint8Array> {
    const whole = this.read(Infinity);
    return (async function* () {
      yield await whole;
    })();
  }

  discard(): void {}
}

const NO_HEADERS: Record<string, string | undefined> = Object.freeze({}) as Record<string, string | undefined>;

export function createUpstream(relay: NodeRelay, opts: { connectTimeoutMs: number; headersTimeoutMs: number; bodyTimeoutMs: number }): Upstream {
  const agent = new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 300_000,
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: opts.bodyTimeoutMs,
    connect: { timeout: opts.connectTimeoutMs },
  });
  const client = new Http1Client(opts);
  const viaNode = async (p: Provider, req: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse> => {
    const res = await relay.request(p.nodeId!, {
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: req.body === null ? null : once(typeof req.body === 'string' ? Buffer.from(req.body, 'utf8') : req.body),
      signal,
    });
    return {
      status: res.status,
      headers: res.headers,
      body: res.body,
      complete: null,
      read: (limit) => readAll(res.body, limit),
      discard() {
        const it = res.body[Symbol.asyncIterator]();
        void it.return?.()?.catch(() => {});
      },
    };
  };
  const streamed = async (req: UpstreamRequest, signal: AbortSignal): Promise<UpstreamResponse> => {
    const res = await request(req.url, { method: req.method, headers: req.headers, body: req.body, dispatcher: agent, signal });
    return {
      status: res.statusCode,
      headers: res.headers,
      body: res.body,
      complete: null,
      read: (limit) => readAll(res.body, limit),
      discard() {
        res.body.dump({ limit: 64 * 1024 }).catch(() => {});
      },
    };
  };
  return {
    send(p, req, abort, whole) {
      if (p.nodeId) return viaNode(p, req, abort.signal);
      if (whole === undefined) return streamed(req, abort.signal);
      return client.request(req, whole, abort).then(
        (answer) => new WholeResponse(answer.status, answer, null),
        (err: unknown) => {
          // After the head the server was reached (and may have done the work): an answer whose body failed.
          if (err instanceof Http1Error && err.status !== undefined && err.code !== 'ABORTED') return new WholeResponse(err.status, null, err);
          throw err;
        },
      );
    },
    close: () => Promise.all([agent.close(), client.close()]).then(() => {}),
  };
}
