import { describe, expect, it } from 'vitest';
import { timeFlag } from './usage.ts';

describe('nexus usage --since/--until', () => {
  const now = Date.parse('2026-12-07T15:30:00.000Z');

  it('turns today, yesterday and a time ago into the times the API takes', () => {
    expect(timeFlag('today', '--since', now)).toBe('2026-12-07T00:00:00.000Z');
    expect(timeFlag('Yesterday', '--since', now)).toBe('2026-12-06T00:00:00.000Z');
    expect(timeFlag('24h', '--since', now)).toBe('2026-12-06T15:30:00.000Z');
    expect(timeFlag('7d', '--since', now)).toBe('2026-11-30T15:30:00.000Z');
    expect(timeFlag('2w', '--since', now)).toBe('2026-11-23T15:30:00.000Z');
    expect(timeFlag('30m', '--until', now)).toBe('2026-12-07T15:00:00.000Z');
  });

  it('passes dates and RFC 3339 times on as given, and says what it takes otherwise', () => {
    expect(timeFlag('2026-12-01', '--since', now)).toBe('2026-12-01');
    expect(timeFlag('2026-12-01T09:00:00+01:00', '--since', now)).toBe('2026-12-01T09:00:00+01:00');
    for (const bad of ['last week', '7', '-7d', '2026-13-45', 'd7', '']) {
      expect(() => timeFlag(bad, '--since', now), bad).toThrow(/^--since takes a date \(2026-12-01\), an RFC 3339 time .*, today, yesterday, or a time ago such as 30m, 24h, 7d or 2w; not "/);
    }
  });
});
