// The retry budgets, one per service (docs/hub.md, "Retries on another node"). A service's retries in
// flight stay within max(minConcurrent, percent × its proxied requests in flight through nodes), the
// rule of Envoy's circuit-breaker `retry_budget` (`budget_percent`, `min_retry_concurrency`; 20 % and
// 3 there too), which Envoy keeps per upstream cluster: a service is the hub's cluster. Without a
// budget, a partial outage lets every request that meets the failing node try another one as well,
// doubling the load on the healthy nodes just when they carry the failed one's share; with one budget
// for the whole hub, a burst of failures on one service would spend the retries of every other.
//
// Counted per request from its first try until its answer's head arrives or its last try fails (the
// window in which a retry can happen); a retry holds its slot until that try ends the same way. A
// service's counts exist only while it has a request in that window: the last one done removes them,
// so the state is bounded by the requests in flight, not by the services ever proxied.

/** One proxied request through nodes, from `RetryBudgets.admit` to `done` (idempotent). */
export interface RetryTicket {
  /** Whether a retry may start now. Granted, it holds a slot until the next `retry` or `done`. */
  retry(): boolean;
  /** The request's answer has begun, or it failed for good: its counts are given back. */
  done(): void;
}

/** One service's counts: requests admitted and not done, and retries holding a slot among them. */
interface Counts {
  active: number;
  retrying: number;
}

export class RetryBudgets {
  private readonly percent: number;
  private readonly minConcurrent: number;
  /** By service id; present only while the service has an admitted request. */
  private readonly services = new Map<string, Counts>();
  /** The sums over every service, for /metrics. */
  private active = 0;
  private retrying = 0;

  constructor(percent: number, minConcurrent: number) {
    this.percent = percent;
    this.minConcurrent = minConcurrent;
  }

  /** Requests and retries in flight now, every service together (for /metrics). */
  get inFlight(): { requests: number; retries: number } {
    return { requests: this.active, retries: this.retrying };
  }

  /** Services with a request in flight now: the budgets held. */
  get held(): number {
    return this.services.size;
  }

  /** A service's counts now (zero for one with nothing in flight). */
  of(serviceId: string): { requests: number; retries: number } {
    const c = this.services.get(serviceId);
    return { requests: c?.active ?? 0, retries: c?.retrying ?? 0 };
  }

  /** The most retries a service may have in flight with `active` requests. */
  limit(active: number): number {
    return Math.max(this.minConcurrent, (this.percent / 100) * active);
  }

  admit(serviceId: string): RetryTicket {
    let counts = this.services.get(serviceId);
    if (!counts) this.services.set(serviceId, (counts = { active: 0, retrying: 0 }));
    const c = counts;
    c.active++;
    this.active++;
    let open = true;
    let holding = false;
    const release = () => {
      if (!holding) return;
      holding = false;
      c.retrying--;
      this.retrying--;
    };
    return {
      retry: () => {
        if (!open) return false;
        // The try this slot was held for has ended; the next one asks again.
        release();
        if (c.retrying + 1 > this.limit(c.active)) return false;
        holding = true;
        c.retrying++;
        this.retrying++;
        return true;
      },
      done: () => {
        if (!open) return;
        open = false;
        release();
        c.active--;
        this.active--;
        // Its slots were given back first, so nothing of the service is left to keep.
        if (c.active === 0) this.services.delete(serviceId);
      },
    };
  }
}
