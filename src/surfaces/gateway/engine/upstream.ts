// The one way upstream requests leave the gateway: undici with a keep-alive pool, or, for a provider
// that names a node, the hub's NodeRelay (core/relay/node-relay.ts) so the agent on that node dials
// the provider from inside its network.
// Streams go through undici's `request()` (a Readable the gateway iterates as events arrive); a
// non-streamed answer is collected straight from undici's dispatch callbacks into a Buffer and
// handed over once complete, which skips the Readable, its async iterator and its promises on the
// gateway's busiest path.
import { Agent, request, util, type Dispatcher } from 'undici';
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
  send(p: Provider, req: UpstreamRequest, signal: AbortSignal, whole?: number): Promise<UpstreamResponse>;
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

const tooLarge = (limit: number) => new Error(`upstream body is larger than ${limit} bytes`);

/**
 * An undici dispatch handler that collects the body into one Buffer (the callback API undici's own
 * `request()` is built on) and is itself the response the gateway reads. It settles when the body is
 * complete, so the gateway takes the whole answer in one step; an exchange that fails after the
 * headers still settles as a response (whose `read()` rejects), so it is never mistaken for an
 * upstream that could not be reached. The caller's signal aborts the exchange at any point.
 */
class WholeResponse implements Dispatcher.DispatchHandler, UpstreamResponse {
  status = 0;
  headers: Record<string, string | string[] | undefined> = NO_HEADERS;
  complete: Buffer | null = null;
  private chunks: Buffer[] = [];
  private size = 0;
  private whole: Promise<Buffer> | null = null; // a failed body
  private abortFn: ((err?: Error) => void) | null = null;
  private failure: Error | null = null;
  private onSettle: ((res: WholeResponse) => void) | null;
  private onFail: ((err: Error) => void) | null;
  private readonly signal: AbortSignal;
  private readonly limit: number;
  private readonly onAbort = () => this.fail((this.signal.reason as Error | undefined) ?? new Error('aborted'));

  constructor(signal: AbortSignal, limit: number, resolve: (res: WholeResponse) => void, reject: (err: Error) => void) {
    this.signal = signal;
    this.limit = limit;
    this.onSettle = resolve;
    this.onFail = reject;
    if (signal.aborted) this.failure = (signal.reason as Error | undefined) ?? new Error('aborted');
    else signal.addEventListener('abort', this.onAbort, { once: true });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.abortFn?.(err);
  }

  // ---- undici's side ----
  onConnect(abort: (err?: Error) => void): void {
    if (this.failure) return abort(this.failure);
    this.abortFn = abort;
  }

  onHeaders(status: number, rawHeaders: Buffer[]): boolean {
    if (status < 200) return true;
    this.status = status;
    // Only error answers are looked at (Retry-After), so a 2xx skips parsing its headers.
    if (status >= 300) this.headers = util.parseHeaders(rawHeaders) as Record<string, string | string[] | undefined>;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > this.limit) {
      this.fail(tooLarge(this.limit));
      return false;
    }
    this.chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    this.signal.removeEventListener('abort', this.onAbort);
    const { chunks } = this;
    this.complete = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.size);
    this.chunks = [];
    this.settle();
  }

  onError(err: Error): void {
    this.signal.removeEventListener('abort', this.onAbort);
    const e = this.failure ?? err;
    this.chunks = [];
    if (this.status === 0) {
      this.onFail?.(e);
      this.onSettle = this.onFail = null;
      return;
    }
    this.whole = Promise.reject(e);
    this.whole.catch(() => {}); // seen by whoever reads the body, if anyone does
    this.settle();
  }

  private settle(): void {
    const onSettle = this.onSettle;
    this.onSettle = this.onFail = null;
    onSettle?.(this);
  }

  // ---- the gateway's side ----
  read(limit: number): Promise<Buffer> {
    const body = this.complete;
    if (body) return body.length > limit ? Promise.reject(tooLarge(limit)) : Promise.resolve(body);
    return this.whole ?? Promise.reject(new Error('upstream body is not complete'));
  }

  get body(): AsyncIterable<Uint8Array> {
    const whole = this.read(this.limit);
    return (async function* () {
      yield await whole;
    })();
  }

  discard(): void {
    this.fail(new Error('discarded'));
    this.whole?.catch(() => {});
  }
}

const NO_HEADERS: Record<string, string | undefined> = Object.freeze({}) as Record<string, string | undefined>;

// origin + path of each upstream URL seen, so a request does not re-parse its URL.
const targets = new Map<string, { origin: string; path: string }>();
function target(url: string): { origin: string; path: string } {
  let t = targets.get(url);
  if (!t) {
    const u = new URL(url);
    t = { origin: u.origin, path: u.pathname + u.search };
    if (targets.size >= 1000) targets.clear();
    targets.set(url, t);
  }
  return t;
}

export function createUpstream(relay: NodeRelay, opts: { connectTimeoutMs: number; headersTimeoutMs: number; bodyTimeoutMs: number }): Upstream {
  const agent = new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 300_000,
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: opts.bodyTimeoutMs,
    connect: { timeout: opts.connectTimeoutMs },
  });
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
    send(p, req, signal, whole) {
      if (p.nodeId) return viaNode(p, req, signal);
      if (whole === undefined) return streamed(req, signal);
      const { origin, path } = target(req.url);
      return new Promise<WholeResponse>((resolve, reject) => {
        agent.dispatch({ origin, path, method: req.method, headers: req.headers, body: req.body }, new WholeResponse(signal, whole, resolve, reject));
      });
    },
    close: () => agent.close(),
  };
}
