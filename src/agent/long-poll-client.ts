// The agent's side of the HTTP fallback (protocol/long-poll.ts): looks like a ws WebSocket to
// connect.ts — open/message/close events, send and close — but moves frames in long-polled HTTP bodies.
import { EventEmitter } from 'node:events';
import { decodeBatch, encodeBatch, LP_KIND, LP_MAX_BATCH, LP_POLL_WAIT_MS, type LpFrame } from '../protocol/long-poll.ts';
import { SUBPROTOCOL } from '../protocol/version.ts';
import { httpBase } from './enroll.ts';
import { hubFetch } from './hub-egress.ts';

/** How long a session whose send failed waits for the pending poll to bring the hub's close frame. */
const CLOSE_FRAME_WAIT_MS = 2000;

export class LongPollClient extends EventEmitter {
  readonly OPEN = 1;
  readyState = 0;
  private base: string;
  private session = '';
  private queue: Array<{ frame: LpFrame; done?: (err?: Error) => void }> = [];
  private flushing = false;
  private abort = new AbortController();
  private readonly fetch: typeof fetch;

  constructor(hubUrl: string, ca?: string) {
    super();
    this.base = `${httpBase(hubUrl)}/api/internal/things`;
    this.fetch = hubFetch(ca);
    void this.start();
  }

  send(data: Buffer | string, opts?: { binary?: boolean } | ((err?: Error) => void), cb?: (err?: Error) => void): void {
    const done = typeof opts === 'function' ? opts : cb;
    if (this.readyState !== 1) return done?.(new Error('not open'));
    const binary = typeof data !== 'string';
    this.queue.push({ frame: { kind: binary ? LP_KIND.binary : LP_KIND.text, data: Buffer.from(data) }, ...(done ? { done } : {}) });
    setImmediate(() => void this.flush());
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState !== 1) return this.finish(code, reason);
    this.queue.push({ frame: { kind: LP_KIND.close, data: Buffer.from(JSON.stringify({ code, reason })) } });
    void this.flush().finally(() => this.finish(code, reason));
  }

  terminate(): void {
    this.finish(1006, '');
  }

  private async start(): Promise<void> {
    try {
      const res = await this.fetch(`${this.base}/connect`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ protocol: SUBPROTOCOL }),
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(10_000)]),
      });
      if (!res.ok) throw new Error(`hub answered HTTP ${res.status} to connect`);
      this.session = ((await res.json()) as { session: string }).session;
    } catch (err) {
      this.emit('error', err);
      return this.finish(1006, (err as Error).message);
    }
    this.readyState = 1;
    this.emit('open');
    while (this.readyState === 1 || this.readyState === 2) {
      let frames: LpFrame[];
      try {
        const res = await this.fetch(`${this.base}/poll/${this.session}`, {
          method: 'POST',
          signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(LP_POLL_WAIT_MS + 15_000)]),
        });
        // A hub that is shutting down answers every request from then on with 503: its close frame
        // went out in the answer to a poll already pending, or is lost when none was.
        if (res.status === 503) {
          await res.body?.cancel();
          return this.finish(1001, 'hub unavailable (HTTP 503); it is shutting down or restarting');
        }
        if (!res.ok) throw new Error(`poll answered HTTP ${res.status}`);
        frames = decodeBatch(Buffer.from(await res.arrayBuffer()));
      } catch (err) {
        if (this.readyState === 1) this.emit('error', err);
        return this.finish(1006, 'connection lost');
      }
      for (const f of frames) {
        if (f.kind === LP_KIND.close) {
          const { code, reason } = JSON.parse(f.data.toString('utf8')) as { code: number; reason: string };
          return this.finish(code, reason);
        }
        if (this.readyState === 1) this.emit('message', f.data, f.kind === LP_KIND.binary);
      }
    }
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length && this.readyState === 1) {
        const batch: typeof this.queue = [];
        let size = 0;
        while (this.queue.length && size < LP_MAX_BATCH) {
          const item = this.queue.shift()!;
          batch.push(item);
          size += item.frame.data.length + 5;
        }
        try {
          const res = await this.fetch(`${this.base}/send/${this.session}`, {
            method: 'POST',
            headers: { 'content-type': 'application/octet-stream' },
            body: new Uint8Array(encodeBatch(batch.map((b) => b.frame))),
            signal: this.abort.signal,
          });
          if (!res.ok) throw new Error(`send answered HTTP ${res.status}`);
          for (const b of batch) b.done?.();
        } catch (err) {
          for (const b of batch) b.done?.(err as Error);
          this.emit('error', err);
          return this.lost();
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /**
   * A send failed: frames were lost, so the session is over. A hub that is shutting down refuses new
   * requests (503) while its close frame is on the way in the pending poll's answer; that answer gets
   * a moment to arrive, so the agent reports why the hub went away instead of a lost connection.
   */
  private lost(): void {
    if (this.readyState !== 1) return this.finish(1006, 'connection lost');
    this.readyState = 2;
    setTimeout(() => this.finish(1006, 'connection lost'), CLOSE_FRAME_WAIT_MS).unref();
  }

  private finish(code: number, reason: string): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.abort.abort();
    for (const q of this.queue) q.done?.(new Error('closed'));
    this.queue = [];
    this.emit('close', code, Buffer.from(reason));
  }
}
