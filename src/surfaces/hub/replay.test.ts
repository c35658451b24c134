import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../core/errors/errors.ts';
import { NODE_OFFLINE } from '../../core/relay/node-relay.ts';
import { RelayError } from './agent-session.ts';
import { retryReason } from './proxy.ts';
import { KeptBytes } from './replay.ts';

const all = async (r: Readable) => {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts).toString();
};

describe('a kept request body', () => {
  it('sends the same bytes to each try, those that arrived between two tries included', async () => {
    const source = new PassThrough();
    const kept = new KeptBytes(16, 1024).keep(source, undefined)!;
    const first = kept.take();
    source.write('abc');
    expect(String(await new Promise((r) => first.once('data', r)))).toBe('abc');
    first.destroy(); // the try failed
    source.write('def'); // arrives while no try reads
    source.end('gh');
    expect(kept.replayable).toBe(true);
    expect(await all(kept.take())).toBe('abcdefgh');
    expect(await all(kept.take())).toBe('abcdefgh');
  });

  it('drops its copy for good once the body outgrows the limit, and streams on', async () => {
    const source = new PassThrough();
    const kept = new KeptBytes(4, 1024).keep(source, undefined)!;
    const first = kept.take();
    source.end('0123456789');
    expect(await all(first)).toBe('0123456789');
    expect(kept.replayable).toBe(false);
    expect(() => kept.take()).toThrow(/no longer kept/);
  });

  it("passes the caller's failure on to the try that reads, and to a later one", async () => {
    const source = new PassThrough();
    const kept = new KeptBytes(16, 1024).keep(source, undefined)!;
    const first = kept.take();
    source.destroy(new Error('caller went away'));
    await expect(all(first)).rejects.toThrow('caller went away');
    await expect(all(kept.take())).rejects.toThrow('caller went away');
  });
});

describe('the hub-wide allowance of kept bytes', () => {
  it('a declared length is reserved before the first byte, or the body is not kept at all', async () => {
    const pool = new KeptBytes(10, 25);
    const a = pool.keep(new PassThrough(), 10)!;
    const b = pool.keep(new PassThrough(), 10)!;
    expect(pool.held).toBe(20);
    // 5 bytes are left: a body declaring 6 is not kept, one declaring more than 10 is not either.
    expect(pool.keep(new PassThrough(), 6)).toBeNull();
    expect(pool.keep(new PassThrough(), 11)).toBeNull();
    expect([...pool.notKept]).toEqual([['total', 1], ['size', 1]]);
    a.release();
    a.release(); // idempotent
    expect(pool.held).toBe(10);
    expect(pool.keep(new PassThrough(), 6)).not.toBeNull();
    expect(pool.held).toBe(16);
    b.release();
  });

  it('a body of unknown length reserves what comes; past what is left it drops its copy, gives its bytes back and streams on', async () => {
    const pool = new KeptBytes(8, 10);
    const firstSource = new PassThrough();
    const first = pool.keep(firstSource, undefined)!;
    const firstTry = first.take();
    firstSource.write('abcdef');
    expect(String(await new Promise((r) => firstTry.once('data', r)))).toBe('abcdef');
    expect(pool.held).toBe(6);

    const source = new PassThrough();
    const kept = pool.keep(source, undefined)!;
    const body = kept.take();
    source.write('0123');
    expect(String(await new Promise((r) => body.once('data', r)))).toBe('0123');
    expect(pool.held).toBe(10);
    source.end('45'); // 2 more: over the total, though within the body's own 8
    expect(await all(body)).toBe('45');
    expect(kept.replayable).toBe(false);
    expect(pool.held).toBe(6);
    expect([...pool.notKept]).toEqual([['total', 1]]);

    first.release();
    expect(pool.held).toBe(0);
    // The released body streams on without a copy.
    firstSource.end('ghijklmnop');
    expect(await all(firstTry)).toBe('ghijklmnop');
    expect(pool.held).toBe(0);
  });

  it('many bodies at once never hold more than the total, and every byte comes back', async () => {
    const pool = new KeptBytes(64, 300);
    let peak = 0;
    const runs = Array.from({ length: 40 }, async (_, i) => {
      const source = new PassThrough();
      const kept = pool.keep(source, i % 2 ? 48 : undefined);
      const body = kept ? kept.take() : source;
      const out = all(body);
      for (let n = 0; n < 6; n++) {
        source.write(Buffer.alloc(8, 65 + (n % 26)));
        peak = Math.max(peak, pool.held);
        await new Promise((r) => setImmediate(r));
      }
      source.end();
      const text = await out;
      kept?.release();
      return text.length;
    });
    expect(await Promise.all(runs)).toEqual(Array(40).fill(48));
    expect(peak).toBeLessThanOrEqual(300);
    expect(peak).toBeGreaterThan(200);
    expect(pool.held).toBe(0);
  });
});

describe('which failures go to the next node', () => {
  const unsent = new RelayError('bad_gateway', 'x', 'unsent', 'connect_failed');
  const lost = new RelayError('bad_gateway', 'x', 'lost', 'node_disconnected');
  const offline = new AppError('unavailable', 'x', { numericCode: NODE_OFFLINE });

  it('any method when nothing reached the service and the body can be sent again', () => {
    expect(retryReason(unsent, 'POST', true)).toBe('connect_failed');
    expect(retryReason(unsent, 'POST', false)).toBeNull();
    // A node offline before the request left: the body was never touched.
    expect(retryReason(offline, 'POST', false)).toBe('node_offline');
  });

  it('only idempotent methods when the service may have had it', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']) expect(retryReason(lost, m, true), m).toBe('node_disconnected');
    for (const m of ['POST', 'PATCH']) expect(retryReason(lost, m, true), m).toBeNull();
    expect(retryReason(lost, 'GET', false)).toBeNull();
  });

  it('never for errors that say nothing about the node (a timeout, the caller’s own body)', () => {
    expect(retryReason(new AppError('upstream_timeout', 'x'), 'GET', true)).toBeNull();
    expect(retryReason(new AppError('payload_too_large', 'x'), 'GET', true)).toBeNull();
    expect(retryReason(new Error('x'), 'GET', true)).toBeNull();
  });
});
