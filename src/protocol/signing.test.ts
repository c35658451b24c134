import { describe, expect, it } from 'vitest';
import { authProof, ReplayGuard, signOpen, verifyAuthProof } from './signing.ts';

const base = { t: 'open' as const, sid: 'a'.repeat(32), method: 'GET', url: 'http://localhost:3000/x', headers: { accept: '*/*' }, service: 'grafana', body: false, upgrade: false };

describe('signing', () => {
  it('accepts a fresh signed frame once, then refuses its replay', () => {
    const g = new ReplayGuard();
    const m = signOpen('secret', base);
    expect(g.verifyOpen('secret', m)).toBe('ok');
    expect(g.verifyOpen('secret', m)).toBe('replayed');
  });

  it('refuses tampered fields, another secret and stale timestamps', () => {
    const g = new ReplayGuard(60_000);
    const m = signOpen('secret', base);
    expect(g.verifyOpen('secret', { ...m, url: 'http://evil.example/x' })).toBe('bad_signature');
    expect(g.verifyOpen('secret', { ...m, headers: { accept: '*/*', authorization: 'x' } })).toBe('bad_signature');
    expect(g.verifyOpen('other', m)).toBe('bad_signature');
    expect(g.verifyOpen('secret', { ...m, sig: 5 as unknown as string })).toBe('bad_signature');
    const old = signOpen('secret', base, Date.now() - 120_000);
    expect(g.verifyOpen('secret', old)).toBe('stale');
  });

  it('forgets nonces once they are outside the window', () => {
    let now = 1_000_000;
    const g = new ReplayGuard(1000, () => now);
    for (let i = 0; i < 100; i++) expect(g.verifyOpen('s', signOpen('s', base, now))).toBe('ok');
    now += 5000;
    g.verifyOpen('s', signOpen('s', base, now));
    expect(g.size).toBe(1);
  });

  it('binds auth proofs to the node and the nonce', () => {
    const p = authProof('secret', 'node-1', 'nonce-1');
    expect(verifyAuthProof('secret', 'node-1', 'nonce-1', p)).toBe(true);
    expect(verifyAuthProof('secret', 'node-2', 'nonce-1', p)).toBe(false);
    expect(verifyAuthProof('secret', 'node-1', 'nonce-2', p)).toBe(false);
    expect(verifyAuthProof('secret', 'node-1', 'nonce-1', null)).toBe(false);
  });
});
