// Budget periods: UTC calendar boundaries, renewal, and what a reservation in flight across a boundary
// counts toward; the stored spend of an earlier period counts as nothing spent in this one.
import { describe, expect, it } from 'vitest';
import { admitAll, isLimitHit, KeyLimits, periodOf, settleAll, type LimitSpec, type Reservation } from './limits.ts';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
const spec = (budgetUsd: number | null, budgetPeriod: LimitSpec['budgetPeriod']): LimitSpec => ({ rpm: null, tpm: null, budgetUsd, budgetPeriod });

describe('periodOf', () => {
  it('cuts UTC days, ISO weeks from Monday and calendar months', () => {
    const span = (p: Parameters<typeof periodOf>[0], t: string) => {
      const s = periodOf(p, at(t));
      return [iso(s.start), iso(s.end)];
    };
    expect(span('day', '2026-12-07T23:59:59.999Z')).toEqual(['2026-12-07T00:00:00.000Z', '2026-12-08T00:00:00.000Z']);
    expect(span('day', '2026-12-31T12:00:00Z')).toEqual(['2026-12-31T00:00:00.000Z', '2027-01-01T00:00:00.000Z']);
    // 2026-12-07 is a Monday; the Sunday before belongs to the week from 11-30.
    expect(span('week', '2026-12-07T00:00:00Z')).toEqual(['2026-12-07T00:00:00.000Z', '2026-12-14T00:00:00.000Z']);
    expect(span('week', '2026-12-06T23:59:59Z')).toEqual(['2026-11-30T00:00:00.000Z', '2026-12-07T00:00:00.000Z']);
    expect(span('week', '2027-01-01T08:00:00Z')).toEqual(['2026-12-28T00:00:00.000Z', '2027-01-04T00:00:00.000Z']);
    expect(span('month', '2026-12-15T00:00:00Z')).toEqual(['2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z']);
    expect(span('month', '2028-02-29T23:00:00Z')).toEqual(['2028-02-01T00:00:00.000Z', '2028-03-01T00:00:00.000Z']);
  });
});

describe('KeyLimits with a budget period', () => {
  it('refuses until the period renews, says when, and admits again after it', () => {
    const l = new KeyLimits(spec(1, 'day'), 0, null, at('2026-12-07T10:00:00Z'));
    const r = l.admit(at('2026-12-07T10:00:00Z'), 10, 1);
    expect(isLimitHit(r)).toBe(false);
    if (!isLimitHit(r)) l.settle(r, 10, 1);
    const hit = l.admit(at('2026-12-07T23:59:00Z'), 10, 0.01);
    expect(hit).toMatchObject({ limit: 'budget', retryAfter: 60, retryable: false });
    expect(isLimitHit(hit) && hit.message).toBe('virtual key budget of $1 is spent today; it renews at 2026-12-08T00:00:00.000Z');
    expect(l.spentAt(at('2026-12-07T23:59:59Z'))).toBe(1);
    const next = l.admit(at('2026-12-08T00:00:00Z'), 10, 0.5);
    expect(isLimitHit(next)).toBe(false);
    expect(l.periodStart).toBe('2026-12-08T00:00:00.000Z');
    expect(l.renewsAt(at('2026-12-08T00:00:01Z'))).toBe(at('2026-12-09T00:00:00Z'));
  });

  it('without a period, a spent budget stays spent and the retry hint is an hour', () => {
    const l = new KeyLimits(spec(1, null), 1, null, at('2026-12-07T10:00:00Z'));
    expect(l.admit(at('2027-06-01T00:00:00Z'), 1, 0.1)).toMatchObject({ limit: 'budget', retryAfter: 3600, retryable: false, message: 'virtual key budget of $1 is spent' });
    expect(l.periodStart).toBeNull();
    expect(l.renewsAt(at('2027-06-01T00:00:00Z'))).toBeNull();
  });

  it('counts a stored spend only when it is for the current period', () => {
    const now = at('2026-12-20T12:00:00Z');
    expect(new KeyLimits(spec(5, 'month'), 4, '2026-12-01T00:00:00.000Z', now).spentUsd).toBe(4);
    expect(new KeyLimits(spec(5, 'month'), 4, '2026-11-01T00:00:00.000Z', now).spentUsd).toBe(0);
    expect(new KeyLimits(spec(5, 'week'), 4, null, now).spentUsd).toBe(0);
    expect(new KeyLimits(spec(5, null), 4, '2026-11-01T00:00:00.000Z', now).spentUsd).toBe(4);
  });

  it('lets a request in flight across the boundary settle into the new period, not refund the old', () => {
    const l = new KeyLimits(spec(1, 'day'), 0.9, '2026-12-07T00:00:00.000Z', at('2026-12-07T23:00:00Z'));
    const r = l.admit(at('2026-12-07T23:59:59Z'), 10, 0.1);
    expect(isLimitHit(r)).toBe(false);
    // Another request after midnight renews the period while the first still holds its reservation.
    const after = l.admit(at('2026-12-08T00:00:01Z'), 10, 0.85);
    expect(isLimitHit(after)).toBe(false);
    expect(l.reservedUsd).toBeCloseTo(0.95, 9);
    if (!isLimitHit(r)) l.settle(r, 10, 0.1);
    expect(l.spentUsd).toBeCloseTo(0.1, 9);
    // 0.1 spent + 0.85 reserved: a third request of 0.1 would pass the renewed budget of 1.
    expect(l.admit(at('2026-12-08T00:00:02Z'), 10, 0.1)).toMatchObject({ limit: 'budget', retryAfter: 1, retryable: true });
  });

  it('starts the new period when an edit changes it, with the spend the caller counted', () => {
    const l = new KeyLimits(spec(10, null), 7, null, at('2026-12-07T10:00:00Z'));
    l.retune(spec(10, 'week'), at('2026-12-07T10:00:00Z'), 2);
    expect(l.spentUsd).toBe(2);
    expect(l.periodStart).toBe('2026-12-07T00:00:00.000Z');
    l.retune(spec(5, 'week'), at('2026-12-07T11:00:00Z'));
    expect(l.spentUsd).toBe(2);
    expect(l.periodAt(at('2026-12-14T00:00:00Z'))).toBe('2026-12-14T00:00:00.000Z');
    expect(l.spentUsd).toBe(0);
  });

  it('gives a released reservation back whole: budget, tokens and its place in the rpm window', () => {
    const l = new KeyLimits({ rpm: 2, tpm: 100, budgetUsd: 1, budgetPeriod: null }, 0, null, at('2026-12-07T10:00:00Z'));
    const t = at('2026-12-07T10:00:00Z');
    for (let i = 0; i < 5; i++) {
      const r = l.admit(t + i, 60, 0.9);
      expect(isLimitHit(r)).toBe(false);
      if (!isLimitHit(r)) l.release(r);
    }
    expect(l.reservedUsd).toBe(0);
    const a = l.admit(t + 10, 40, 0.5);
    const b = l.admit(t + 11, 40, 0.5);
    expect([isLimitHit(a), isLimitHit(b)]).toEqual([false, false]);
    expect(l.admit(t + 12, 1, 0)).toMatchObject({ limit: 'rpm' });
  });
});

describe('admitAll: a call reserved against its key, its owner and its group', () => {
  const t = at('2026-12-07T10:00:00Z');

  it('gives back what the earlier limits reserved (rpm slot included) when a later one refuses', () => {
    const key = new KeyLimits({ rpm: 2, tpm: 100, budgetUsd: 1, budgetPeriod: null }, 0, null, t);
    const owner = new KeyLimits(spec(1, null), 0, null, t, 'user');
    const group = new KeyLimits(spec(0.5, 'month'), 0.5, '2026-12-01T00:00:00.000Z', t, 'group');
    for (let i = 0; i < 5; i++) {
      expect(admitAll([key, owner, group], t + i, 60, 0.4)).toMatchObject({
        limit: 'budget',
        message: 'group budget of $0.5 is spent this month; it renews at 2027-01-01T00:00:00.000Z',
      });
    }
    expect([key.reservedUsd, owner.reservedUsd, group.reservedUsd]).toEqual([0, 0, 0]);
    // Without the group, the key still has both rpm slots and its whole tokens-per-minute window.
    const a = admitAll([key, owner], t + 10, 50, 0.4);
    const b = admitAll([key, owner], t + 11, 50, 0.4);
    expect([isLimitHit(a), isLimitHit(b)]).toEqual([false, false]);
    expect(owner.reservedUsd).toBeCloseTo(0.8, 9);
  });

  it('settles each reservation against the limit it was made on; a refusal by the owner leaves the group untouched', () => {
    const key = new KeyLimits(spec(null, null), 0, null, t);
    const owner = new KeyLimits(spec(0.3, null), 0, null, t, 'user');
    const group = new KeyLimits(spec(1, null), 0, null, t, 'group');
    const made = admitAll([key, owner, group], t, 10, 0.2) as Reservation[];
    expect(made).toHaveLength(3);
    expect(group.reservedUsd).toBeCloseTo(0.2, 9);
    settleAll([key, owner, group], made, 10, 0.1);
    expect([owner.spentUsd, group.spentUsd, owner.reservedUsd, group.reservedUsd]).toEqual([0.1, 0.1, 0, 0]);
    expect(admitAll([key, owner, group], t + 1, 10, 0.25)).toMatchObject({ limit: 'budget', message: 'request could exceed the user budget of $0.3' });
    expect(group.reservedUsd).toBe(0);
  });
});

describe('which refusals waiting can cure', () => {
  it('marks rpm and tpm windows retryable, and a request larger than the tpm limit not', () => {
    const l = new KeyLimits({ rpm: 1, tpm: 100, budgetUsd: null, budgetPeriod: null }, 0, null, at('2026-12-07T10:00:00Z'));
    expect(isLimitHit(l.admit(at('2026-12-07T10:00:00Z'), 10, 0))).toBe(false);
    expect(l.admit(at('2026-12-07T10:00:01Z'), 10, 0)).toMatchObject({ limit: 'rpm', retryable: true });
    const t = new KeyLimits({ rpm: null, tpm: 100, budgetUsd: null, budgetPeriod: null }, 0, null, at('2026-12-07T10:00:00Z'));
    expect(isLimitHit(t.admit(at('2026-12-07T10:00:00Z'), 90, 0))).toBe(false);
    expect(t.admit(at('2026-12-07T10:00:01Z'), 20, 0)).toMatchObject({ limit: 'tpm', retryable: true });
    expect(t.admit(at('2026-12-07T10:00:01Z'), 101, 0)).toMatchObject({ limit: 'tpm', retryable: false });
  });
});
