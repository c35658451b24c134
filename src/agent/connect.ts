// `nexus agent start`: keep one authenticated WebSocket to the hub, forever. Transient failures
// (network, hub restart, heartbeat loss) reconnect with exponential backoff and full jitter, 100 ms
// doubling to a 60 s cap; permanent ones (unknown or revoked node, wrong secret, unsupported protocol)
// stop the agent with a message saying what to do.
import WebSocket from 'ws';
import type { Logger } from '../core/log/log.ts';
import type { Tracing } from '../core/telemetry/tracing.ts';
import { parseControl } from '../protocol/frames.ts';
import { corkPerTick } from '../protocol/cork.ts';
import { tuneHeapForRelay } from '../protocol/heap.ts';
import { authProof } from '../protocol/signing.ts';
import { StreamMux } from '../protocol/streams.ts';
import { rawFrameWriter } from '../protocol/ws-frames.ts';
import { splitDataFrames } from '../protocol/ws-receive.ts';
import { announcedFeatures, CLOSE, FEATURES, LIMITS, PERMANENT_CLOSES, SUBPROTOCOL } from '../protocol/version.ts';
import type { CredentialsStore } from './credentials-store.ts';
import { LongPollClient } from './long-poll-client.ts';
import { createLocalRelay } from './local-relay.ts';
import type { NodeIdentity } from './state.ts';
import { hubSocketAgent, ProxyError } from './hub-egress.ts';
import { untrustedHint } from './tls.ts';

export const BACKOFF = { initialMs: 100, maxMs: 60_000 };

/** Delay before reconnect attempt `n` (0-based): uniform in [d/2, d], d = min(cap, 100 ms · 2^n). */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const d = Math.min(BACKOFF.maxMs, BACKOFF.initialMs * 2 ** Math.min(attempt, 20));
  return Math.round(d / 2 + random() * (d / 2));
}

export class PermanentAgentError extends Error {
  override name = 'PermanentAgentError';
}

const PERMANENT_HINT: Record<number, string> = {
  [CLOSE.authFailed]: 'the hub does not accept this node\'s credentials (rotated, or the node enrolled again elsewhere); to enroll again, get a new token for this node (console: Nodes, New token; or POST /api/v1/nodes/NODE_ID/registration-token) and run nexus agent enroll --force --url … --token …',
  [CLOSE.revoked]: 'this node was deleted on the appliance; register and enroll it again',
  [CLOSE.unsupportedVersion]: `the hub does not speak ${SUBPROTOCOL}; upgrade the agent or the appliance so they match`,
};

interface SessionOutcome {
  authenticated: boolean;
  code: number;
  reason: string;
  /** The HTTP status the hub (or something on the way) answered instead of upgrading. */
  httpStatus: number | null;
}

/** `ws`: WebSocket only; `http`: long-poll only; `auto`: WebSocket, falling back when upgrades are blocked. */
export type Transport = 'ws' | 'http' | 'auto';
export const TRANSPORTS: readonly string[] = ['auto', 'ws', 'http'] satisfies Transport[];

export interface AgentRunOptions {
  identity: NodeIdentity;
  credentials: CredentialsStore;
  log: Logger;
  signal: AbortSignal;
  transport?: Transport;
  /** Spans of the agent's own requests to local services (none while no collector is configured). */
  tracing?: Tracing;
}

function runSession(opts: AgentRunOptions, transport: 'ws' | 'http'): Promise<SessionOutcome> {
  const { identity, log } = opts;
  return new Promise((resolve) => {
    // The long-poll client speaks the same events and calls as a ws WebSocket (long-poll-client.ts).
    const ws: WebSocket = transport === 'http'
      ? (new LongPollClient(identity.hubUrl, identity.ca) as unknown as WebSocket)
      : new WebSocket(identity.hubUrl, SUBPROTOCOL, { handshakeTimeout: 10_000, perMessageDeflate: false, maxPayload: 4 * LIMITS.maxFramePayload, ...(identity.ca ? { ca: identity.ca } : {}), agent: hubSocketAgent(identity.hubUrl) });
    // Writes in one tick share a writev (cork.ts); the long-poll client has no socket of its own.
    let cork = corkPerTick(null);
    const mux = new StreamMux((buf, done) => {
      cork();
      ws.send(buf, { binary: true }, done);
    });
    // DATA frames are masked straight from the bytes handed over (ws-frames.ts).
    ws.once('upgrade', (res) => {
      cork = corkPerTick(res.socket);
      const write = rawFrameWriter(ws, res.socket, true);
      mux.partsWriter = (parts, n, done) => {
        cork();
        write(parts, n, done);
      };
    });
    // DATA frames reach the streams piece by piece as the socket reads them (ws-receive.ts).
    ws.once('open', () => splitDataFrames(ws, {
      begin: (sid, n) => {
        lastHeard = Date.now();
        mux.beginData(sid, n);
      },
      piece: (bytes) => mux.dataPiece(bytes),
    }));
    const send = (msg: object) => {
      if (ws.readyState !== ws.OPEN) return;
      cork();
      ws.send(JSON.stringify(msg));
    };
    let hubFeatures: ReadonlySet<string> = new Set();
    const relay = createLocalRelay({
      mux,
      secret: identity.signingSecret,
      credentials: opts.credentials,
      log,
      sendJson: send,
      hubFeatures: () => hubFeatures,
      ...(opts.tracing ? { tracing: opts.tracing } : {}),
      nodeId: identity.nodeId,
    });
    let authenticated = false;
    let lastHeard = Date.now();
    let heartbeat: NodeJS.Timeout | null = null;
    let settled = false;
    let httpStatus: number | null = null;

    const finish = (code: number, reason: string) => {
      if (settled) return;
      settled = true;
      if (heartbeat) clearInterval(heartbeat);
      opts.signal.removeEventListener('abort', onAbort);
      mux.closeAll('hub connection lost');
      void relay.close();
      resolve({ authenticated, code, reason, httpStatus });
    };
    const onAbort = () => {
      ws.close(CLOSE.normal, 'agent stopping');
      setTimeout(() => ws.terminate(), 1000).unref();
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });


    ws.on('unexpected-response', (_req, res) => {
      httpStatus = res.statusCode ?? null;
      res.resume();
      ws.terminate();
    });
    let failure = ''; // a reason worth more than "connection lost" (an untrusted certificate)
    ws.on('error', (err) => {
      failure = untrustedHint(err) ?? (err instanceof ProxyError ? err.message : failure);
      log.debug({ err: err.message }, 'hub socket error');
    });
    ws.on('close', (code, reason) => finish(httpStatus ? 0 : code, httpStatus ? `hub answered HTTP ${httpStatus} instead of upgrading` : reason.toString() || failure || (code === 1006 ? 'connection lost' : '')));

    ws.on('message', (data: Buffer, isBinary) => {
      lastHeard = Date.now();
      if (isBinary) {
        if (authenticated && !mux.handleBinary(data)) ws.close(CLOSE.protocolError, 'malformed frame');
        return;
      }
      const msg = parseControl(data.toString('utf8'));
      if (!msg) return ws.close(CLOSE.protocolError, 'control frames are JSON objects');
      switch (msg.t) {
        case 'challenge':
          if (typeof msg.nonce !== 'string') return ws.close(CLOSE.protocolError, 'bad challenge');
          return void send({
            t: 'auth',
            node_id: identity.nodeId,
            auth_token: identity.authToken,
            nonce: msg.nonce,
            proof: authProof(identity.signingSecret, identity.nodeId, msg.nonce),
            features: FEATURES,
          });
        case 'auth_ok': {
          authenticated = true;
          hubFeatures = announcedFeatures(msg.features);
          const every = Math.max(0.05, Number(msg.heartbeat_seconds) || 30) * 1000;
          const deadAfter = Math.max(every * 2, (Number(msg.offline_after_seconds) || 90) * 1000);
          log.info({ node: identity.nodeId, hub: identity.hubUrl, transport: transport === 'http' ? 'http long-poll' : 'websocket' }, 'Connected to hub');
          heartbeat = setInterval(() => {
            if (Date.now() - lastHeard > deadAfter) {
              log.warn({ silentMs: Date.now() - lastHeard }, 'hub went silent; reconnecting');
              ws.terminate();
              return;
            }
            send({ t: 'ping', ts: Date.now() });
          }, every);
          return;
        }
        case 'pong':
          if (typeof msg.ts === 'number') log.info({ rttMs: Date.now() - msg.ts, streams: mux.size }, 'heartbeat');
          return;
        case 'ping':
          return void send({ t: 'pong', ts: msg.ts });
        case 'reauth':
          if (typeof msg.nonce !== 'string') return;
          log.debug('re-authenticating');
          return void send({ t: 'reauth_proof', nonce: msg.nonce, proof: authProof(identity.signingSecret, identity.nodeId, msg.nonce) });
        case 'open':
          if (authenticated) relay.open(msg);
          return;
        default:
          log.debug({ t: msg.t.slice(0, 32) }, 'ignoring unknown control frame');
      }
    });
  });
}

/** Runs until stopped (resolves) or a permanent failure (throws PermanentAgentError). */
export async function runAgent(opts: AgentRunOptions): Promise<void> {
  tuneHeapForRelay();
  const { log } = opts;
  let attempt = 0;
  let transport: 'ws' | 'http' = opts.transport === 'http' ? 'http' : 'ws';
  while (!opts.signal.aborted) {
    log.info({ hub: opts.identity.hubUrl, node: opts.identity.nodeId, transport }, 'connecting');
    const out = await runSession(opts, transport);
    if (opts.signal.aborted) return;
    // The hub answers a GET /ws that lost its Upgrade header on the way with 426: a proxy in between
    // does not pass WebSockets, so the same frames go over HTTP instead.
    if ((opts.transport ?? 'auto') === 'auto' && transport === 'ws' && out.httpStatus === 426) {
      log.warn('WebSocket upgrades are blocked on the way to the hub; falling back to HTTP long-poll');
      transport = 'http';
      continue;
    }
    if (PERMANENT_CLOSES.has(out.code)) {
      throw new PermanentAgentError(`${out.reason || 'refused by the hub'} (close ${out.code}): ${PERMANENT_HINT[out.code]}`);
    }
    if (out.authenticated) attempt = 0;
    const delay = backoffDelay(attempt++);
    log.warn({ code: out.code, reason: out.reason, retryInMs: delay }, 'disconnected from hub; reconnecting');
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, delay);
      opts.signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
  }
}
