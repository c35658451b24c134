// Hub ⇄ agent protocol version and WebSocket close codes (docs/protocol.md). The version travels as the
// WebSocket subprotocol (RFC 6455 §1.9), so a mismatch is refused before any frame is exchanged.
export const SUBPROTOCOL = 'nexus.v1';

/**
 * Extensions within nexus.v1 this build speaks, announced in `auth` (agent) and `auth_ok` (hub). A
 * peer uses one only when the other announced it, so peers of different builds keep working together
 * (docs/protocol.md, "Features"). `ws_close`: a relayed WebSocket's close code and reason travel in a
 * close record (ws-bridge.ts).
 */
export const FEATURES: readonly string[] = ['ws_close'];

/** The features a peer announced: strings only, bounded, unknown ones kept (and ignored). */
export function announcedFeatures(value: unknown): ReadonlySet<string> {
  if (!Array.isArray(value)) return new Set();
  return new Set(value.slice(0, 32).filter((f): f is string => typeof f === 'string' && f.length <= 64));
}

/** Close codes in the 4000–4999 private-use range (RFC 6455 §7.4.2), plus the standard ones we send. */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  policy: 1008,
  internal: 1011,
  authTimeout: 4001,
  authFailed: 4003,
  revoked: 4004,
  unsupportedVersion: 4005,
  replaced: 4006,
  heartbeatTimeout: 4008,
  disconnected: 4009,
  credentialsRotated: 4010,
} as const;

/**
 * Closes after which reconnecting cannot help: the agent stops with a clear message instead of
 * retrying forever. `credentialsRotated` is not here: the agent retries once and then hits authFailed.
 */
export const PERMANENT_CLOSES: ReadonlySet<number> = new Set([CLOSE.authFailed, CLOSE.revoked, CLOSE.unsupportedVersion]);

/** Limits both sides enforce. */
export const LIMITS = {
  /** Largest payload of one DATA frame. */
  maxFramePayload: 256 * 1024,
  /** Bytes a stream may send before the receiver grants more (per stream, per direction). */
  initialWindow: 1024 * 1024,
  /** Largest JSON control frame. */
  maxControlFrame: 256 * 1024,
  /** Accepted clock difference for signed frames. */
  signatureSkewMs: 60_000,
};
