import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { BodyFieldError, endToEnd, formatMethod, inject, joinTarget, withBodyField } from './credentials.ts';
import type { Headers } from './frames.ts';

describe('credential injection', () => {
  const run = (method: Parameters<typeof inject>[0]['method'], keyName: string | null, headers: Headers = {}) => {
    const url = new URL('https://api.example.com/v1/x?a=1');
    const out = inject({ method, keyName, secret: 's3cret' }, url, headers);
    return { url: url.toString(), headers, out };
  };
  it('puts the secret where each method says', () => {
    expect(run('bearer', null, { Authorization: 'Bearer nx_pat_x' }).headers).toEqual({ authorization: 'Bearer s3cret' });
    expect(run('bot_bearer', null).headers).toEqual({ authorization: 'Bot s3cret' });
    expect(run('header', 'X-Api-Key').headers).toEqual({ 'x-api-key': 's3cret' });
    expect(run('basic', null).headers.authorization).toBe(`Basic ${Buffer.from('s3cret:').toString('base64')}`);
    expect(run('query', 'key').url).toBe('https://api.example.com/v1/x?a=1&key=s3cret');
    expect(run('path', 'bot').url).toBe('https://api.example.com/bots3cret/v1/x?a=1');
    expect(run('body', 'api_key').out.bodyField).toEqual({ name: 'api_key', value: 's3cret' });
    expect(run('none', null).headers).toEqual({});
  });
});

describe('headers and targets', () => {
  it('drops hop-by-hop headers, those named by Connection, and the ones asked for', () => {
    const h = endToEnd({ connection: 'keep-alive, x-hop', 'x-hop': '1', 'keep-alive': 't', host: 'a', 'transfer-encoding': 'chunked', 'x-api-key': 'nx_pat', accept: 'a', expect: '100-continue' }, ['X-API-Key']);
    expect(h).toEqual({ accept: 'a' });
    // Without Connection or names to drop: the fixed hop-by-hop set, names lowercased.
    expect(endToEnd({ Host: 'a', 'Keep-Alive': 't', TE: 'trailers', 'X-Trace': '1', accept: ['a', 'b'], skipped: undefined })).toEqual({ 'x-trace': '1', accept: ['a', 'b'] });
  });
  it('joins paths and keeps queries byte for byte, refusing climbs above the base', () => {
    expect(joinTarget('http://h:1/api', 'v1/x', '?q=a%20b+c')?.toString()).toBe('http://h:1/api/v1/x?q=a%20b+c');
    expect(joinTarget('http://h:1', '', '')?.toString()).toBe('http://h:1/');
    expect(joinTarget('http://h:1/api', '../admin', '')).toBeNull();
    expect(joinTarget('http://h:1/api', '%2e%2e/admin', '')).toBeNull();
  });
});

describe('agent secret formats', () => {
  it('knows its own formats and nothing an object inherits', () => {
    expect(['bearer', 'bot', 'raw', 'basic', 'query', 'path', 'body'].map(formatMethod)).toEqual(['bearer', 'bot_bearer', 'header', 'basic', 'query', 'path', 'body']);
    expect(['toString', '__proto__', 'none', 'hmac', ''].map(formatMethod)).toEqual([null, null, null, null, null]);
  });
});

describe('the body method', () => {
  const field = { name: 'app_secret', value: 's3cret' };
  const run = async (chunks: string[] | null, limit = 1024) => {
    const headers: Headers = { 'content-length': '999' };
    const out = await withBodyField(chunks ? Readable.from(chunks.map((c) => Buffer.from(c))) : null, field, limit, headers);
    return { body: JSON.parse(out.toString()) as unknown, headers, length: out.length };
  };
  const reason = (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => (e instanceof BodyFieldError ? e.reason : String(e)));

  it('sets the field in the JSON object, replacing one the caller sent, and fixes the length', async () => {
    const r = await run(['{"a":1,', '"app_secret":"caller"}']);
    expect(r.body).toEqual({ a: 1, app_secret: 's3cret' });
    expect(r.headers).toEqual({ 'content-type': 'application/json', 'content-length': String(r.length) });
    expect((await run(null)).body).toEqual({ app_secret: 's3cret' });
    expect((await run([])).body).toEqual({ app_secret: 's3cret' });
  });
  it('refuses a body that is not a JSON object or is over the limit', async () => {
    expect(await reason(run(['not json']))).toBe('body_not_json');
    expect(await reason(run(['[1,2]']))).toBe('body_not_object');
    expect(await reason(run(['null']))).toBe('body_not_object');
    expect(await reason(run(['{"a":"', 'x'.repeat(1020), '"}']))).toBe('body_too_large');
    expect(await reason(run(['{"a":"', 'x'.repeat(1016), '"}']))).toBe('resolved');
  });
  it('treats a field named __proto__ as a field', async () => {
    const headers: Headers = {};
    const out = await withBodyField(null, { name: '__proto__', value: 's' }, 64, headers);
    expect(out.toString()).toBe('{"__proto__":"s"}');
  });
});
