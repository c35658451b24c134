import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger, redactUrl } from './log.ts';

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
});
