// A request body kept while it streams to a node, so that a request the node failed before answering
// can start over on another one (proxy.ts). The caller's bytes still go out as they arrive; the copy
// is dropped, for good, once the body outgrows what it may keep (then the body streams on as before,
// and is no longer replayable), and given back as soon as no retry can follow (the answer's head came,
// or the request failed for good).
//
// What may be kept, as Envoy does with its buffer limit (a retry is abandoned, `retry_or_shadow_abandoned`,
// once the body outgrows `per_request_buffer_limit_bytes`) and Traefik with `maxRequestBodyBytes`: a body
// of at most `hub.retryBodyMaxBytes`, within `hub.retryBodyTotalBytes` for every kept body of the hub
// together. A body that declares its length reserves all of it before its first byte (or is not kept
// at all); one of unknown length reserves its bytes as they come.
import { Readable } from 'node:stream';

export type NotKept = 'size' | 'total';

/** The hub's allowance of kept bytes, shared by every KeptBody (docs/hub.md, "Retries on another node"). */
export class KeptBytes {
  /** Bodies larger than this are not kept. */
  readonly perBody: number;
  /** Bytes every kept body together may hold. */
  readonly total: number;
  /** Bytes reserved now. */
  private reserved = 0;
  /** Bodies not kept (or dropped) since start, by why. */
  readonly notKept = new Map<NotKept, number>();

  constructor(perBody: number, total: number) {
    this.perBody = perBody;
    this.total = total;
  }

  get held(): number {
    return this.reserved;
  }

  /**
   * A body to keep for `source`, or null when it cannot be (declared larger than `perBody`, or its
   * declared length does not fit in what is left of `total`): that body streams as if no copy were
   * made. `declared`: its Content-Length, undefined when not given.
   */
  keep(source: Readable, declared: number | undefined): KeptBody | null {
    if (declared !== undefined) {
      if (!(declared <= this.perBody)) return this.refuse('size');
      if (!this.take(declared)) return this.refuse('total');
    }
    return new KeptBody(source, this, declared);
  }

  /** Reserves `n` bytes when they fit. */
  take(n: number): boolean {
    if (this.reserved + n > this.total) return false;
    this.reserved += n;
    return true;
  }

  give(n: number): void {
    this.reserved -= n;
  }

  refuse(why: NotKept): null {
    this.notKept.set(why, (this.notKept.get(why) ?? 0) + 1);
    return null;
  }
}

export class KeptBody {
  private source: Readable;
  private pool: KeptBytes;
  /** Every chunk received so far, or null once the copy is dropped. */
  private kept: Buffer[] | null = [];
  private size = 0;
  /** Bytes held in the pool for this body: its declared length, or what came so far. */
  private reserved: number;
  /** A declared length reserved up front: the chunks are already paid for. */
  private readonly prepaid: boolean;
  private ended = false;
  private failure: Error | null = null;
  /** The current try's body. */
  private sink: Readable | null = null;

  /** Made by `KeptBytes.keep`, which has reserved `declared` bytes when it is given. */
  constructor(source: Readable, pool: KeptBytes, declared?: number) {
    this.source = source;
    this.pool = pool;
    this.prepaid = declared !== undefined;
    this.reserved = declared ?? 0;
    // Flowing, but held until a try reads.
    source.on('data', (chunk: Buffer) => this.onData(chunk));
    source.pause();
    source.once('end', () => {
      this.ended = true;
      this.sink?.push(null);
    });
    source.once('error', (err) => this.fail(err));
    source.once('close', () => this.ended || this.fail(new Error('request body ended early')));
  }

  /** All of the body received so far is kept: a new try can send it from its first byte. */
  get replayable(): boolean {
    return this.kept !== null;
  }

  /** The body for one try: the bytes kept so far, then the rest as it arrives. The last try's body is let go. */
  take(): Readable {
    if (!this.kept) throw new Error('the body is no longer kept');
    const previous = this.sink;
    const sink = new Readable({ read: () => this.source.resume() });
    this.sink = sink;
    previous?.destroy();
    for (const chunk of this.kept) sink.push(chunk);
    if (this.ended) sink.push(null);
    const failure = this.failure;
    if (failure) process.nextTick(() => sink.destroy(failure));
    sink.once('close', () => {
      if (this.sink !== sink) return;
      this.sink = null;
      this.source.pause();
    });
    return sink;
  }

  /** No retry can follow: the copy and its reservation go; the rest of the body streams on (idempotent). */
  release(): void {
    this.kept = null;
    this.pool.give(this.reserved);
    this.reserved = 0;
  }

  private onData(chunk: Buffer): void {
    if (this.kept) {
      const fits = this.size + chunk.length <= this.pool.perBody;
      if (fits && (this.prepaid || this.pool.take(chunk.length))) {
        this.kept.push(chunk);
        this.size += chunk.length;
        if (!this.prepaid) this.reserved += chunk.length;
      } else {
        this.pool.refuse(fits ? 'total' : 'size');
        this.release();
      }
    }
    // With no try reading (between two), what came is kept, or the body could not be sent again anyway.
    if (!this.sink) return void this.source.pause();
    if (!this.sink.push(chunk)) this.source.pause();
  }

  private fail(err: Error): void {
    if (this.failure) return; // an error, then its close
    this.failure = err;
    this.sink?.destroy(err);
  }
}
