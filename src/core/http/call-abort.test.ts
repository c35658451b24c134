import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CallAbort } from './call-abort.ts';
import { Http1Client, Http1Error } from './http1-client.ts';

describe('CallAbort', () => {
  it('calls each listener still added once, on the first abort only, with the reason kept', () => {
    const a = new CallAbort();
    const calls: string[] = [];
    const gone = () => calls.push('gone');
    a.addEventListener('abort', () => calls.push('one'));
    a.addEventListener('abort', gone);
    a.addEventListener('abort', () => calls.push('two'));
    a.removeEventListener('abort', gone);
    const reason = new Error('why');
    a.abort(reason);
    a.abort(new Error('again'));
    expect(calls).toEqual(['one', 'two']);
    expect(a.aborted).toBe(true);
    expect(a.reason).toBe(reason);
    a.addEventListener('abort', () => calls.push('late'));
    expect(calls).toEqual(['one', 'two']);
  });

  it('gives a real AbortSignal that follows it, whether made before or after the abort', () => {
    const before = new CallAbort();
    const signal = before.signal;
    let fired = 0;
    signal.addEventListener('abort', () => fired++);
    expect(signal.aborted).toBe(false);
    before.abort();
    expect(signal.aborted).toBe(true);
    expect(fired).toBe(1);
    expect(signal.reason).toBe(before.reason);
    expect((before.reason as DOMException).name).toBe('AbortError');
    const after = new CallAbort();
    const reason = new Error('limit');
    after.abort(reason);
    expect(after.signal.aborted).toBe(true);
    expect(after.signal.reason).toBe(reason);
    expect(after.signal).toBe(after.signal);
  });

  it('aborts an exchange of the HTTP/1.1 client that is waiting for its answer', async () => {
    const srv: Server = createServer(() => {}); // never answers
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const client = new Http1Client({ connectTimeoutMs: 5000, headersTimeoutMs: 5000, bodyTimeoutMs: 5000 });
    try {
      const a = new CallAbort();
      const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
      const pending = client.request({ method: 'POST', url, headers: {}, body: '{}' }, 1024, a);
      setTimeout(() => a.abort(), 50);
      const err = await pending.then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(Http1Error);
      expect((err as Http1Error).code).toBe('ABORTED');
    } finally {
      await client.close();
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  });
});
