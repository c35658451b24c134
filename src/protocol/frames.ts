// Wire frames between hub and agent (docs/protocol.md).
// Binary frames: [1-byte type][16-byte stream id][payload]; JSON text frames carry control messages.
import { randomFillSync } from 'node:crypto';
import type { BodyFieldFailure } from './credentials.ts';

export const FRAME = {
  /** Stream bytes. */
  data: 0x01,
  /** The sender will send no more bytes on this stream (half close). */
  end: 0x02,
  /** Grants the peer more bytes to send: payload is a uint32 big-endian increment. */
  credit: 0x03,
  /** Aborts the stream in both directions: payload is a UTF-8 reason. */
  reset: 0x04,
} as const;

export type FrameType = (typeof FRAME)[keyof typeof FRAME];

export const STREAM_ID_BYTES = 16;
export const FRAME_HEADER = 1 + STREAM_ID_BYTES;
const HEADER = FRAME_HEADER;

// Every relayed request takes a stream id and a nonce; one randomFillSync per 4 KiB instead of a
// randomBytes call each (the same pooling crypto.randomUUID does).
const POOL = Buffer.allocUnsafe(4096);
let poolAt = POOL.length;

/** `n` bytes from the CSPRNG, as a fresh Buffer. */
export function randomPooled(n: number): Buffer {
  if (poolAt + n > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const out = Buffer.from(POOL.subarray(poolAt, poolAt + n));
  poolAt += n;
  return out;
}

/** Fills `target[at, at + n)` from the same pool (WebSocket masking keys, RFC 6455 §5.3). */
export function fillRandom(target: Buffer, at: number, n: number): void {
  if (poolAt + n > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  POOL.copy(target, at, poolAt, poolAt + n);
  poolAt += n;
}

export function newStreamId(): string {
  return randomPooled(STREAM_ID_BYTES).toString('hex');
}

export function isStreamId(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9a-f]{32}$/.test(value);
}

export function encodeFrame(type: FrameType, streamId: string, payload?: Uint8Array): Buffer {
  const len = payload ? payload.byteLength : 0;
  const buf = Buffer.allocUnsafe(HEADER + len);
  buf[0] = type;
  buf.write(streamId, 1, STREAM_ID_BYTES, 'hex');
  if (payload && len) buf.set(payload, HEADER);
  return buf;
}

export function encodeCredit(streamId: string, bytes: number): Buffer {
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32BE(bytes, 0);
  return encodeFrame(FRAME.credit, streamId, p);
}

export interface DecodedFrame {
  type: number;
  streamId: string;
  payload: Buffer;
}

/** Returns null for a frame too short to carry a header. The payload is a view, not a copy. */
export function decodeFrame(buf: Buffer): DecodedFrame | null {
  if (buf.length < HEADER) return null;
  return { type: buf[0]!, streamId: buf.toString('hex', 1, HEADER), payload: buf.subarray(HEADER) };
}

// ---- JSON control messages -------------------------------------------------------------------

export type Headers = Record<string, string | string[]>;

/** hub → agent, first frame: prove possession of the signing secret for this nonce. */
export interface ChallengeMsg { t: 'challenge'; nonce: string }
/** agent → hub: answer to a challenge. */
export interface AuthMsg { t: 'auth'; node_id: string; auth_token: string; nonce: string; proof: string; agent_version?: string; features?: string[] }
/** hub → agent: authenticated; timings the agent follows. */
export interface AuthOkMsg { t: 'auth_ok'; node_id: string; heartbeat_seconds: number; offline_after_seconds: number; features?: string[] }
/** hub → agent: periodic re-authentication; streams keep flowing meanwhile. */
export interface ReauthMsg { t: 'reauth'; nonce: string }
/** agent → hub: answer to a re-authentication. */
export interface ReauthProofMsg { t: 'reauth_proof'; nonce: string; proof: string }
export interface PingMsg { t: 'ping'; ts: number }
export interface PongMsg { t: 'pong'; ts: number }
/** hub → agent: open a stream carrying an HTTP request. Signed (see signing.ts). */
export interface OpenMsg {
  t: 'open';
  sid: string;
  method: string;
  url: string;
  headers: Headers;
  /** Service slug whose local credential the agent injects, if it holds one. */
  service: string | null;
  /** The request has a body that follows as DATA frames (else the agent sends none). */
  body: boolean;
  /** A WebSocket upgrade: the agent dials a WebSocket and the stream carries its messages (ws-bridge.ts). */
  upgrade: boolean;
  ts: number;
  nonce: string;
  sig: string;
}
/** agent → hub: the upstream's response head; the body follows as DATA frames. */
export interface ResponseMsg { t: 'response'; sid: string; status: number; headers: Headers }
/**
 * agent → hub: the request could not be served; the stream is finished. `delivered: false`: no byte
 * of it reached the local service (the agent could not connect), so the hub may send it elsewhere.
 * Absent means it may have.
 */
export interface StreamErrorMsg { t: 'stream_error'; sid: string; code: StreamErrorCode; message: string; delivered?: false }

export type StreamErrorCode = 'bad_signature' | 'replayed' | 'forbidden' | 'bad_gateway' | 'upstream_timeout' | 'bad_request'
  /** The stored credential's format is not one this agent knows. */
  | 'unknown_format'
  /** The `body` method could not add its field. */
  | BodyFieldFailure;

export type HubToAgent = ChallengeMsg | AuthOkMsg | ReauthMsg | PingMsg | PongMsg | OpenMsg;
export type AgentToHub = AuthMsg | ReauthProofMsg | PingMsg | PongMsg | ResponseMsg | StreamErrorMsg;

/** Parses a control frame; null when it is not a JSON object with a string `t`. */
export function parseControl(text: string): { t: string; [k: string]: unknown } | null {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { t?: unknown }).t === 'string') {
      return v as { t: string };
    }
  } catch {
    /* not JSON */
  }
  return null;
}

/** Headers as the protocol carries them: lowercase names, string or string[] values, nothing else. */
export function isHeaders(value: unknown): value is Headers {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const v of Object.values(value)) {
    if (typeof v === 'string') continue;
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) continue;
    return false;
  }
  return true;
}
