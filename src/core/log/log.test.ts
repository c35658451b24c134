import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { accessLogFor, createLogger, redactUrl } from './log.ts';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  return { lines, log: createLogger({ level: 'info', destination: destination as never }) };
}

describe('log redaction', () => {
  it('redacts secret-named fields at any depth and secret query parameters', async () => {
    const { lines, log } = capture();
    log.child({ reqId: 'r1' }).info({
      headers: { authorization: 'Bearer nx_pat_SECRET1', 'x-goog-api-key': 'SECRET2', accept: 'json' },
      body: { password: 'SECRET3', nested: { api_key: 'SECRET4' } },
      url: '/v1beta/models?key=SECRET5&alt=sse',
      token: 'SECRET6',
    }, 'hello');
    await new Promise((r) => setImmediate(r));
    const out = lines.join('');
    for (let i = 1; i <= 6; i++) expect(out).not.toContain(`SECRET${i}`);
    expect(out).toContain('"accept":"json"');
    expect(out).toContain('alt=sse');
    expect(out).toContain('"reqId":"r1"');
  });
  it('masks key-like query parameters', () => {
    expect(redactUrl('/x?key=abc&api-key=d&token=e&ok=1')).toBe('/x?key=[redacted]&api-key=[redacted]&token=[redacted]&ok=1');
  });
  it('writes access lines in pino\'s shape, escaped where needed, with secret query parameters masked', async () => {
    const { lines, log } = capture();
    const access = accessLogFor(log);
    expect(access.enabled()).toBe(true);
    access.write('r-1', 'GET', '/v1beta/models?key=SECRET7&q="x"\\é', '127.0.0.1', 200, 1.5);
    access.write('r-2', 'POST', '/v1/chat/completions', undefined, 502, 0);
    log.info({ reqId: 'r-3' }, 'request');
    for (let i = 0; i < 100 && lines.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    // Access lines written close together go out in one write, after the other lines of the moment.
    expect(lines).toHaveLength(2);
    expect(lines[1]!.trim().split('\n')).toHaveLength(2);
    const byId = new Map(lines.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).map((r) => [r.reqId, r]));
    const [a, b, c] = [byId.get('r-1'), byId.get('r-2'), byId.get('r-3')];
    expect(a).toEqual({ level: 30, time: expect.any(String), pid: process.pid, reqId: 'r-1', req: { method: 'GET', url: '/v1beta/models?key=[redacted]&q="x"\\é', remote: '127.0.0.1' }, res: { status: 200 }, ms: 1.5, msg: 'request' });
    expect(b).toMatchObject({ reqId: 'r-2', req: { method: 'POST', url: '/v1/chat/completions' }, res: { status: 502 }, ms: 0 });
    expect(Object.keys(a!)).toEqual(['level', 'time', 'pid', 'reqId', 'req', 'res', 'ms', 'msg']);
    expect(Object.keys(c!).slice(0, 3)).toEqual(['level', 'time', 'pid']);
    expect(Date.parse(a!.time as string)).toBeGreaterThan(0);
  });
  it('writes the same line from a method and URL made beforehand', async () => {
    const { lines, log } = capture();
    const access = accessLogFor(log);
    const url = '/v1beta/models?key=SECRET7&q="x"\\é';
    access.write('r-1', 'POST', url, '10.0.0.1', 200, 2.5);
    access.writeRequest('r-1', access.request('POST', url), '10.0.0.1', 200, 2.5);
    access.writeRequest('r-2', access.request('POST', '/v1/chat/completions'), undefined, 499, 0.1);
    for (let i = 0; i < 100 && lines.length < 1; i++) await new Promise((r) => setTimeout(r, 5));
    const [first, second, third] = lines.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect({ ...second, time: first!.time }).toEqual(first);
    expect(first).toMatchObject({ req: { method: 'POST', url: '/v1beta/models?key=[redacted]&q="x"\\é', remote: '10.0.0.1' } });
    expect(third).toMatchObject({ reqId: 'r-2', req: { method: 'POST', url: '/v1/chat/completions' }, res: { status: 499 }, ms: 0.1 });
    expect(Object.keys(third!)).toEqual(['level', 'time', 'pid', 'reqId', 'req', 'res', 'ms', 'msg']);
  });
  it('writes no access line when the level leaves info out', async () => {
    const lines: string[] = [];
    const destination = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const log = createLogger({ level: 'warn', destination: destination as never });
    expect(accessLogFor(log).enabled()).toBe(false);
  });
});
