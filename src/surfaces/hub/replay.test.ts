import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../core/errors/errors.ts';
import { NODE_OFFLINE } from '../../core/relay/node-relay.ts';
import { RelayError } from './agent-session.ts';
import { retryReason } from './proxy.ts';
import { KeptBody } from './replay.ts';

const all = async (r: Readable) => {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts).toString();
};

describe('a kept request body', () => {
  it('sends the same bytes to each try, those that arrived between two tries included', async () => {
    const source = new PassThrough();
    const kept = new KeptBody(source, 16);
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
    const kept = new KeptBody(source, 4);
    const first = kept.take();
    source.end('0123456789');
    expect(await all(first)).toBe('0123456789');
    expect(kept.replayable).toBe(false);
    expect(() => kept.take()).toThrow(/no longer kept/);
  });

  it("passes the caller's failure on to the try that reads, and to a later one", async () => {
    const source = new PassThrough();
    const kept = new KeptBody(source, 16);
    const first = kept.take();
    source.destroy(new Error('caller went away'));
    await expect(all(first)).rejects.toThrow('caller went away');
    await expect(all(kept.take())).rejects.toThrow('caller went away');
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
