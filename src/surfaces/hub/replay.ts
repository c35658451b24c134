// A small request body kept while it streams to a node, so that a request the node failed before
// answering can start over on another one (proxy.ts). The caller's bytes still go out as they arrive;
// the copy is only dropped, for good, once more than `limit` bytes have come (then the body streams on
// as before, and is no longer replayable).
import { Readable } from 'node:stream';

/** Bodies up to this size are kept for a retry (docs/hub.md, "Retries on another node"). */
export const REPLAY_LIMIT = 64 * 1024;

export class KeptBody {
  private source: Readable;
  private limit: number;
  /** Every chunk received so far, or null once they add up to more than `limit`. */
  private kept: Buffer[] | null = [];
  private size = 0;
  private ended = false;
  private failure: Error | null = null;
  /** The current try's body. */
  private sink: Readable | null = null;

  constructor(source: Readable, limit = REPLAY_LIMIT) {
    this.source = source;
    this.limit = limit;
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

  private onData(chunk: Buffer): void {
    if (this.kept) {
      if (this.size + chunk.length <= this.limit) {
        this.kept.push(chunk);
        this.size += chunk.length;
      } else {
        this.kept = null;
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
