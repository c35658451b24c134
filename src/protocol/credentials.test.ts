import { describe, expect, it } from 'vitest';
import { endToEnd, inject, joinTarget } from './credentials.ts';
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
