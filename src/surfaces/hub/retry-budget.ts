// The hub-wide retry budget (docs/hub.md, "Retries on another node"). Retries in flight stay within
// max(minConcurrent, percent × the proxied requests in flight through nodes), the rule of Envoy's
// circuit-breaker `retry_budget` (`budget_percent`, `min_retry_concurrency`; 20 % and 3 there too).
// Without it, a partial outage lets every request that meets the failing node try another one as
// well, doubling the load on the healthy nodes just when they carry the failed one's share.
//
// Counted per request from its first try until its answer's head arrives or its last try fails (the
// window in which a retry can happen); a retry holds its slot until that try ends the same way.

/** One proxied request through nodes, from `RetryBudget.admit` to `done` (idempotent). */
export interface RetryTicket {
  /** Whether a retry may start now. Granted, it holds a slot until the next `retry` or `done`. */
  retry(): boolean;
  /** The request's answer has begun, or it failed for good: its counts are given back. */
  done(): void;
}

export class RetryBudget {
  private readonly percent: number;
  private readonly minConcurrent: number;
  /** Requests admitted and not done. */
  private active = 0;
  /** Retries holding a slot. */
  private retrying = 0;

  constructor(percent: number, minConcurrent: number) {
    this.percent = percent;
    this.minConcurrent = minConcurrent;
  }

  /** Requests and retries in flight now (for /metrics). */
  get inFlight(): { requests: number; retries: number } {
    return { requests: this.active, retries: this.retrying };
  }

  /** The most retries that may be in flight with `active` requests. */
  limit(active = this.active): number {
    return Math.max(this.minConcurrent, (this.percent / 100) * active);
  }

  admit(): RetryTicket {
    this.active++;
    let open = true;
    let holding = false;
    const release = () => {
      if (!holding) return;
      holding = false;
      this.retrying--;
    };
    return {
      retry: () => {
        if (!open) return false;
        // The try this slot was held for has ended; the next one asks again.
        release();
        if (this.retrying + 1 > this.limit()) return false;
        holding = true;
        this.retrying++;
        return true;
      },
      done: () => {
        if (!open) return;
        open = false;
        release();
        this.active--;
      },
    };
  }
}
