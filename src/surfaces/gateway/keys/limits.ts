// Per-key rate limits and budget, held in memory (one appliance process serves every request,
// DESIGN.md §1). Admission reserves the request's worst case before the upstream call and settling
// replaces the reservation with what was really used, so N concurrent requests can never together
// exceed a budget or a tokens-per-minute limit that admits fewer than N.
export interface LimitSpec {
  rpm: number | null;
  tpm: number | null;
  budgetUsd: number | null;
}

export type Limit = 'rpm' | 'tpm' | 'budget';

export interface LimitHit {
  limit: Limit;
  /** Seconds until trying again can succeed. */
  retryAfter: number;
  message: string;
}

export interface Reservation {
  tokens: TokenEntry | null;
  costUsd: number;
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
  spentUsd: number;
  reservedUsd = 0;
  private requests: number[] = [];
  private tokens: TokenEntry[] = [];
  private tokenSum = 0;

  constructor(spec: LimitSpec, spentUsd: number) {
    this.spec = spec;
    this.spentUsd = spentUsd;
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
  retune(spec: LimitSpec): void {
    this.spec = spec;
  }

  /** Admits a request or says which limit it hits. Synchronous, so concurrent callers serialise. */
  admit(now: number, estTokens: number, estCostUsd: number): Reservation | LimitHit {
    const { rpm, tpm, budgetUsd } = this.spec;
    if (rpm === null && tpm === null && budgetUsd === null) return { tokens: null, costUsd: 0 };
    this.prune(now);
    if (budgetUsd !== null) {
      if (this.spentUsd >= budgetUsd - EPSILON) {
        return { limit: 'budget', retryAfter: 3600, message: `virtual key budget of $${budgetUsd} is spent` };
      }
      if (this.spentUsd + this.reservedUsd + estCostUsd > budgetUsd + EPSILON) {
        // Requests in flight hold the rest of the budget; some of it may come back when they settle.
        return { limit: 'budget', retryAfter: this.reservedUsd > 0 ? 1 : 3600, message: `request could exceed the virtual key budget of $${budgetUsd}` };
      }
    }
    if (rpm !== null && this.requests.length >= rpm) {
      return { limit: 'rpm', retryAfter: secondsUntil(this.requests[this.requests.length - rpm]! + WINDOW_MS, now), message: `virtual key limit of ${rpm} requests per minute reached` };
    }
    if (tpm !== null && this.tokenSum + estTokens > tpm) {
      let freed = this.tokenSum + estTokens - tpm;
      let at = now;
      for (const e of this.tokens) {
        freed -= e.tokens;
        at = e.at + WINDOW_MS;
        if (freed <= 0) break;
      }
      if (estTokens > tpm) return { limit: 'tpm', retryAfter: 60, message: `request needs about ${estTokens} tokens, more than the virtual key limit of ${tpm} tokens per minute` };
      return { limit: 'tpm', retryAfter: secondsUntil(at, now), message: `virtual key limit of ${tpm} tokens per minute reached` };
    }
    if (rpm !== null) this.requests.push(now);
    let entry: TokenEntry | null = null;
    if (tpm !== null) {
      entry = { at: now, tokens: estTokens, live: true };
      this.tokens.push(entry);
      this.tokenSum += estTokens;
    }
    if (budgetUsd !== null) this.reservedUsd += estCostUsd;
    return { tokens: entry, costUsd: budgetUsd !== null ? estCostUsd : 0 };
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

export function isLimitHit(r: Reservation | LimitHit): r is LimitHit {
  return 'limit' in r;
}

function secondsUntil(at: number, now: number): number {
  return Math.max(1, Math.ceil((at - now) / 1000));
}
