// The abort of one call: an AbortController's job, without its EventTarget on the busy path. Every
// gateway request has one (aborted when the client leaves or a stream outlives its limit), and on the
// usual non-streamed call only the HTTP/1.1 client listens to it (http1-client.ts `CancelSignal`).
// Making the AbortSignal and adding and removing a listener on it took ~1.5 % of the request
// thread in a CPU profile (BENCHMARKS.md, "per-call cuts"); a real AbortSignal is still made, lazily, for what
// needs one (undici streams, the node relay, the response cache's waiters) and follows this abort.
import type { CancelSignal } from './http1-client.ts';

export class CallAbort implements CancelSignal {
  aborted = false;
  /** What abort() was given, or an AbortError (as AbortSignal's `reason`). */
  reason: unknown = undefined;
  private listeners: (() => void)[] | null = null;
  private controller: AbortController | null = null;

  /** A real AbortSignal that aborts with this call (made on first use). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason;
    const listeners = this.listeners;
    this.listeners = null;
    if (listeners) for (const fn of listeners) fn();
    this.controller?.abort(this.reason);
  }

  /** Called once, on abort (never when already aborted: look at `aborted` first, as with AbortSignal). */
  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const all = this.listeners;
    if (!all) return;
    const i = all.indexOf(listener);
    if (i >= 0) all.splice(i, 1);
  }
}
