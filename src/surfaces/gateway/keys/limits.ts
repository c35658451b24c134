// Per-key rate limits and budget, held in memory (one appliance process serves every request,
// DESIGN.md §1). Admission reserves the request's worst case before the upstream call and settling
// replaces the reservation with what was really used, so N concurrent requests can never together
// exceed a budget or a tokens-per-minute limit that admits fewer than N. A budget may renew every UTC
// day, ISO week or calendar month: the spend counts from the start of the current period. The same
// class holds the budgets shared by many keys (an owner's, a group's); a call reserves against each.
export type BudgetPeriod = 'day' | 'week' | 'month';

export interface LimitSpec {
  rpm: number | null;
  tpm: number | null;
  budgetUsd: number | null;
  budgetPeriod: BudgetPeriod | null;
}

export interface PeriodSpan {
  start: number;
  /** The next period's start: when the budget renews. */
  end: number;
}

/** The UTC calendar period holding time `t` (ms): a day from 00:00, a week from Monday, a month from the 1st. */
export function periodOf(period: BudgetPeriod, t: number): PeriodSpan {
  const d = new Date(t);
  const [y, m, day] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()];
  if (period === 'day') return { start: Date.UTC(y, m, day), end: Date.UTC(y, m, day + 1) };
  if (period === 'week') {
    const monday = day - ((d.getUTCDay() + 6) % 7);
    return { start: Date.UTC(y, m, monday), end: Date.UTC(y, m, monday + 7) };
  }
  return { start: Date.UTC(y, m, 1), end: Date.UTC(y, m + 1, 1) };
}

const PERIOD_WORD: Record<BudgetPeriod, string> = { day: 'today', week: 'this week', month: 'this month' };

export type Limit = 'rpm' | 'tpm' | 'budget';

export interface LimitHit {
  limit: Limit;
  /** Seconds until trying again can succeed. */
  retryAfter: number;
  /** Whether waiting a little can succeed: false for a spent budget (it renews, if ever, at the
   *  period's end) and for a request larger than the tokens-per-minute limit. */
  retryable: boolean;
  message: string;
}

export interface Reservation {
  tokens: TokenEntry | null;
  costUsd: number;
  /** When the request was counted in the requests-per-minute window (null: no rpm limit). */
  countedAt: number | null;
}

interface TokenEntry {
  at: number;
  tokens: number;
  /** False once the entry slid out of the window. */
  live: boolean;
}

const WINDOW_MS = 60_000;
// Floating-point sums of prices must not refuse the request that exactly fills a budget.
const EPSILON = 1e-9;

export class KeyLimits {
  spec: LimitSpec;
  /** Spent in the current budget period (since the key was made when it has none). */
  spentUsd: number;
  reservedUsd = 0;
  /** The current budget period, as an ISO string (null without a period) and its end in ms. */
  periodStart: string | null = null;
  private periodEnd = Infinity;
  private requests: number[] = [];
  private tokens: TokenEntry[] = [];
  private tokenSum = 0;

  /**
   * `spentUsd` is what the store holds for the period that began at `spentSince` (ISO); a stored
   * period older than the current one counts as nothing spent yet.
   */
  /** Whose budget, in refusals: "virtual key", "user" or "group". */
  private whose: string;

  constructor(spec: LimitSpec, spentUsd: number, spentSince: string | null, now: number, whose = 'virtual key') {
    this.spec = spec;
    this.whose = whose;
    this.spentUsd = spentUsd;
    this.startPeriod(now);
    if (this.periodStart !== spentSince && spec.budgetPeriod) this.spentUsd = 0;
  }

  private startPeriod(now: number): void {
    if (!this.spec.budgetPeriod) {
      this.periodStart = null;
      this.periodEnd = Infinity;
      return;
    }
    const p = periodOf(this.spec.budgetPeriod, now);
    this.periodStart = new Date(p.start).toISOString();
    this.periodEnd = p.end;
  }

  /** When the budget renews (ms), or null without a period. */
  renewsAt(now: number): number | null {
    this.roll(now);
    return this.spec.budgetPeriod ? this.periodEnd : null;
  }

  /** The current period's start (ISO) as of `now`, the tag its spend is stored with; null without a period. */
  periodAt(now: number): string | null {
    this.roll(now);
    return this.periodStart;
  }

  /** What was spent in the current period as of `now`. */
  spentAt(now: number): number {
    this.roll(now);
    return this.spentUsd;
  }

  /** Past the period's end the spend starts again from nothing (reservations in flight stay). */
  private roll(now: number): void {
    if (now < this.periodEnd) return;
    this.startPeriod(now);
    this.spentUsd = 0;
  }

  private prune(now: number): void {
    const cutoff = now - WINDOW_MS;
    let i = 0;
    while (i < this.requests.length && this.requests[i]! <= cutoff) i++;
    if (i) this.requests.splice(0, i);
    let j = 0;
    while (j < this.tokens.length && this.tokens[j]!.at <= cutoff) {
      const e = this.tokens[j++]!;
      e.live = false;
      this.tokenSum -= e.tokens;
    }
    if (j) this.tokens.splice(0, j);
  }

  /**
   * New limits from an edited key. Spend, reservations in flight and the windows' entries are kept,
   * so a lowered limit counts what was already used (a budget below the spend refuses at once).
   */
  retune(spec: LimitSpec, now: number, spentUsd?: number): void {
    const periodChanged = spec.budgetPeriod !== this.spec.budgetPeriod;
    this.spec = spec;
    if (periodChanged) this.startPeriod(now);
    if (spentUsd !== undefined) this.spentUsd = spentUsd;
  }

  /** Admits a request or says which limit it hits. Synchronous, so concurrent callers serialise. */
  admit(now: number, estTokens: number, estCostUsd: number): Reservation | LimitHit {
    const { rpm, tpm, budgetUsd, budgetPeriod } = this.spec;
    if (rpm === null && tpm === null && budgetUsd === null) return { tokens: null, costUsd: 0, countedAt: null };
    this.prune(now);
    if (budgetUsd !== null) {
      this.roll(now);
      // Spent for good: try again when the period renews (an hour when it never does: a raised
      // budget takes effect at once anyway).
      const untilRenewal = budgetPeriod ? secondsUntil(this.periodEnd, now) : 3600;
      const renews = budgetPeriod ? ` ${PERIOD_WORD[budgetPeriod]}; it renews at ${new Date(this.periodEnd).toISOString()}` : '';
      if (this.spentUsd >= budgetUsd - EPSILON) {
        return { limit: 'budget', retryAfter: untilRenewal, retryable: false, message: `${this.whose} budget of $${budgetUsd} is spent${renews}` };
      }
      if (this.spentUsd + this.reservedUsd + estCostUsd > budgetUsd + EPSILON) {
        // Requests in flight hold the rest of the budget; some of it may come back when they settle.
        return { limit: 'budget', retryAfter: this.reservedUsd > 0 ? 1 : untilRenewal, retryable: this.reservedUsd > 0, message: `request could exceed the ${this.whose} budget of $${budgetUsd}${renews}` };
      }
    }
    if (rpm !== null && this.requests.length >= rpm) {
      return { limit: 'rpm', retryAfter: secondsUntil(this.requests[this.requests.length - rpm]! + WINDOW_MS, now), retryable: true, message: `virtual key limit of ${rpm} requests per minute reached` };
    }
    if (tpm !== null && this.tokenSum + estTokens > tpm) {
      let freed = this.tokenSum + estTokens - tpm;
      let at = now;
      for (const e of this.tokens) {
        freed -= e.tokens;
        at = e.at + WINDOW_MS;
        if (freed <= 0) break;
      }
      if (estTokens > tpm) return { limit: 'tpm', retryAfter: 60, retryable: false, message: `request needs about ${estTokens} tokens, more than the virtual key limit of ${tpm} tokens per minute` };
      return { limit: 'tpm', retryAfter: secondsUntil(at, now), retryable: true, message: `virtual key limit of ${tpm} tokens per minute reached` };
    }
    if (rpm !== null) this.requests.push(now);
    let entry: TokenEntry | null = null;
    if (tpm !== null) {
      entry = { at: now, tokens: estTokens, live: true };
      this.tokens.push(entry);
      this.tokenSum += estTokens;
    }
    if (budgetUsd !== null) this.reservedUsd += estCostUsd;
    return { tokens: entry, costUsd: budgetUsd !== null ? estCostUsd : 0, countedAt: rpm !== null ? now : null };
  }

  /** Gives a reservation back unused (the request was refused by another limit). */
  release(r: Reservation): void {
    // The request never went out: it leaves the requests-per-minute window too (if still in it).
    if (r.countedAt !== null) {
      const i = this.requests.lastIndexOf(r.countedAt);
      if (i >= 0) this.requests.splice(i, 1);
    }
    this.settle(r, 0, 0);
  }

  /** Replaces a reservation with what the request really used. */
  settle(r: Reservation, tokens: number, costUsd: number): void {
    if (r.tokens) {
      // An entry already pruned from the window no longer counts; only adjust a live one.
      if (r.tokens.live) this.tokenSum += tokens - r.tokens.tokens;
      r.tokens.tokens = tokens;
      r.tokens = null;
    }
    this.reservedUsd = Math.max(0, this.reservedUsd - r.costUsd);
    r.costUsd = 0;
    this.spentUsd += costUsd;
  }
}

export function isLimitHit<T extends object>(r: T | LimitHit): r is LimitHit {
  return 'limit' in r;
}

/**
 * Reserves against each of a call's limits in turn (its key, its owner, its group). When one refuses,
 * the reservations already made are given back (rpm slot included), so a refused call costs nothing.
 */
export function admitAll(chain: readonly KeyLimits[], now: number, estTokens: number, estCostUsd: number): Reservation[] | LimitHit {
  const made: Reservation[] = [];
  for (const l of chain) {
    const r = l.admit(now, estTokens, estCostUsd);
    if (isLimitHit(r)) {
      for (let i = made.length - 1; i >= 0; i--) chain[i]!.release(made[i]!);
      return r;
    }
    made.push(r);
  }
  return made;
}

/** Settles what `admitAll` reserved, each against the limit it was made on. */
export function settleAll(chain: readonly KeyLimits[], made: readonly Reservation[], tokens: number, costUsd: number): void {
  for (let i = 0; i < made.length; i++) chain[i]!.settle(made[i]!, tokens, costUsd);
}

function secondsUntil(at: number, now: number): number {
  return Math.max(1, Math.ceil((at - now) / 1000));
}
