// HMAC-SHA256 with the per-node signing secret (DESIGN.md §5). Two uses:
// - proofs in the challenge–response handshake and re-authentication (the secret never crosses the wire);
// - request-carrying `open` frames, with a timestamp and a nonce the agent remembers for the skew
//   window, so a recorded frame cannot be replayed and a forged one cannot make the agent dial with its
//   credentials. Why only these frames are signed: docs/protocol.md.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { randomPooled, type OpenMsg } from './frames.ts';
import { LIMITS } from './version.ts';

function hmac(secret: string, data: string): string {
  return createHmac('sha256', secret).update(data, 'utf8').digest('base64url');
}

function equal(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

export function newNonce(): string {
  return randomPooled(18).toString('base64url');
}

/** Proof for a handshake or re-auth nonce; bound to the node id so one proof cannot serve another node. */
export function authProof(secret: string, nodeId: string, nonce: string): string {
  return hmac(secret, `nexus.v1 auth\n${nodeId}\n${nonce}`);
}

export function verifyAuthProof(secret: string, nodeId: string, nonce: string, proof: unknown): boolean {
  return typeof proof === 'string' && equal(authProof(secret, nodeId, nonce), proof);
}

type Unsigned = Omit<OpenMsg, 'sig'>;

/** Canonical bytes of an open frame: every field in a fixed order (headers keep their order). */
function canonicalOpen(m: Unsigned): string {
  return JSON.stringify(['nexus.v1 open', m.sid, m.method, m.url, m.headers, m.service, m.body, m.upgrade, m.ts, m.nonce]);
}

export function signOpen(secret: string, m: Omit<Unsigned, 'ts' | 'nonce'>, now = Date.now()): OpenMsg {
  const signed: OpenMsg = { ...m, ts: now, nonce: newNonce(), sig: '' };
  signed.sig = hmac(secret, canonicalOpen(signed));
  return signed;
}

export type VerifyResult = 'ok' | 'bad_signature' | 'stale' | 'replayed';

/**
 * Verifies signed frames and remembers their nonces for the skew window. Memory is bounded by the
 * frames accepted within one window; expired nonces are dropped as time moves on.
 */
export class ReplayGuard {
  private seen = new Map<string, number>();
  private skewMs: number;
  private now: () => number;

  constructor(skewMs = LIMITS.signatureSkewMs, now: () => number = Date.now) {
    this.skewMs = skewMs;
    this.now = now;
  }

  verifyOpen(secret: string, m: OpenMsg): VerifyResult {
    if (typeof m.sig !== 'string' || typeof m.nonce !== 'string' || typeof m.ts !== 'number' || m.nonce.length > 128) {
      return 'bad_signature';
    }
    // canonicalOpen reads the signed fields by name, so the frame goes in as it is (no copy without `sig`).
    if (!equal(hmac(secret, canonicalOpen(m)), m.sig)) return 'bad_signature';
    const now = this.now();
    if (Math.abs(now - m.ts) > this.skewMs) return 'stale';
    this.prune(now);
    if (this.seen.has(m.nonce)) return 'replayed';
    this.seen.set(m.nonce, m.ts + this.skewMs);
    return 'ok';
  }

  get size(): number {
    return this.seen.size;
  }

  private prune(now: number): void {
    // Map iteration is insertion order, which is close to expiry order; stop at the first live entry.
    for (const [nonce, expires] of this.seen) {
      if (expires > now) break;
      this.seen.delete(nonce);
    }
  }
}
