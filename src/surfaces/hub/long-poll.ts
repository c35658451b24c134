// HTTP long-poll transport for agents behind proxies that refuse WebSocket upgrades. A
// LongPollSocket looks to AgentSession exactly like a ws WebSocket (send/close/events), so the
// handshake, signing, heartbeats and flow control are the same code as over /ws.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { AppError } from '../../core/errors/errors.ts';
import { decodeBatch, encodeBatch, LP_KIND, LP_MAX_BATCH, LP_POLL_WAIT_MS, type LpFrame } from '../../protocol/long-poll.ts';
import { SUBPROTOCOL } from '../../protocol/version.ts';
import type { Hub } from './hub.ts';

const IDLE_MS = LP_POLL_WAIT_MS * 2 + 10_000;

export class LongPollSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  readonly protocol: string;
  private outbox: Array<{ frame: LpFrame; done?: (err?: Error) => void }> = [];
  private waiter: (() => void) | null = null;
  private idle: NodeJS.Timeout;
  private closedWith: { code: number; reason: string } | null = null;

  constructor(protocol: string) {
    super();
    this.protocol = protocol;
    this.idle = setTimeout(() => this.terminate(), IDLE_MS);
  }

  send(data: Buffer | string, opts?: { binary?: boolean } | ((err?: Error) => void), cb?: (err?: Error) => void): void {
    const done = typeof opts === 'function' ? opts : cb;
    if (this.readyState !== 1) return done?.(new Error('closed'));
    const binary = typeof data !== 'string' && (typeof opts !== 'object' || opts.binary !== false);
    this.outbox.push({ frame: { kind: binary ? LP_KIND.binary : LP_KIND.text, data: Buffer.from(data) }, ...(done ? { done } : {}) });
    this.wake();
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState !== 1) return;
    this.readyState = 2;
    this.closedWith = { code, reason };
    this.outbox.push({ frame: { kind: LP_KIND.close, data: Buffer.from(JSON.stringify({ code, reason })) } });
    this.wake();
    // The close frame goes out with the next poll; without one, the session ends anyway.
    setTimeout(() => this.finish(code, reason), LP_POLL_WAIT_MS).unref();
  }

  terminate(): void {
    this.finish(1006, '');
  }

  pause(): void {}
  resume(): void {}

  /** Frames from the agent. */
  deliver(frames: LpFrame[]): void {
    this.touch();
    for (const f of frames) {
      if (f.kind === LP_KIND.close) {
        const { code, reason } = JSON.parse(f.data.toString('utf8') || '{}') as { code?: number; reason?: string };
        this.finish(code ?? 1000, reason ?? '');
        return;
      }
      this.emit('message', f.data, f.kind === LP_KIND.binary);
    }
  }

  /** Waits up to LP_POLL_WAIT_MS for frames for the agent; null once the session is over. */
  async poll(): Promise<Buffer | null> {
    this.touch();
    if (!this.outbox.length && this.readyState === 1) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, LP_POLL_WAIT_MS);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    if (!this.outbox.length && this.readyState !== 1) return null;
    const batch: Array<(typeof this.outbox)[number]> = [];
    let size = 0;
    while (this.outbox.length && size < LP_MAX_BATCH) {
      const item = this.outbox.shift()!;
      batch.push(item);
      size += item.frame.data.length + 5;
    }
    for (const item of batch) item.done?.();
    if (batch.some((b) => b.frame.kind === LP_KIND.close) && this.closedWith) {
      const { code, reason } = this.closedWith;
      setImmediate(() => this.finish(code, reason));
    }
    return encodeBatch(batch.map((b) => b.frame));
  }

  private touch(): void {
    this.idle.refresh();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private finish(code: number, reason: string): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    clearTimeout(this.idle);
    for (const item of this.outbox) item.done?.(new Error('closed'));
    this.outbox = [];
    this.wake();
    this.emit('close', code, Buffer.from(reason));
  }
}

export function longPollRoutes(app: FastifyInstance, hub: Hub): void {
  const sessions = hub.longPolls;
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: LP_MAX_BATCH + 1024 }, (_req, body, done) => done(null, body));

  const find = (id: unknown) => {
    const s = typeof id === 'string' ? sessions.get(id) : undefined;
    if (!s) throw new AppError('not_found', 'no such long-poll session; connect again');
    return s;
  };

  app.post<{ Body: { protocol?: string } }>('/api/internal/things/connect', {
    schema: { body: { type: 'object', additionalProperties: false, properties: { protocol: { type: 'string', maxLength: 64 } } } },
  }, async (req) => {
    const id = randomBytes(24).toString('base64url');
    const socket = new LongPollSocket(req.body?.protocol ?? SUBPROTOCOL);
    sessions.set(id, socket);
    socket.on('close', () => sessions.delete(id));
    hub.accept(socket as unknown as WebSocket, req.ip);
    return { session: id };
  });

  app.post<{ Params: { id: string } }>('/api/internal/things/poll/:id', async (req, reply) => {
    const batch = await find(req.params.id).poll();
    if (batch === null) throw new AppError('not_found', 'session closed; connect again');
    return reply.type('application/octet-stream').send(batch);
  });

  app.post<{ Params: { id: string }; Body: Buffer }>('/api/internal/things/send/:id', async (req, reply) => {
    const socket = find(req.params.id);
    let frames: LpFrame[];
    try {
      frames = decodeBatch(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
    } catch {
      throw new AppError('validation_failed', 'malformed frame batch');
    }
    socket.deliver(frames);
    return reply.code(204).send();
  });
}
