import { describe, expect, it } from 'vitest';
import { geminiEncoder, openAiEncoder } from './client-encoders.ts';
import { cacheable, CachedStream, cacheDirectives, cacheKey, keyBody, ResponseCache, StreamRecorder, waitFor } from './response-cache.ts';

describe('cacheDirectives', () => {
  it('reads no-cache, no-store and max-age, and ignores what it does not know', () => {
    expect(cacheDirectives(undefined)).toEqual({ read: true, write: true, maxAge: null });
    expect(cacheDirectives('no-cache')).toEqual({ read: false, write: true, maxAge: null });
    expect(cacheDirectives('No-Store')).toEqual({ read: false, write: false, maxAge: null });
    expect(cacheDirectives('max-age=30, max-age=10')).toEqual({ read: true, write: true, maxAge: 10 });
    expect(cacheDirectives('max-age="5"')).toEqual({ read: true, write: true, maxAge: 5 });
    for (const junk of ['max-age=-1', 'max-age=1.5', 'max-age=', 'max-age=99999999999', 'private, x=1', ',,,']) {
      expect(cacheDirectives(junk), junk).toEqual({ read: true, write: true, maxAge: null });
    }
  });
});

describe('cacheKey', () => {
  it('separates its parts, so shifting text between them changes the key', () => {
    expect(cacheKey(['a', 'bc'], '{}')).not.toBe(cacheKey(['ab', 'c'], '{}'));
    expect(cacheKey(['m'], '{"a":1}')).toBe(cacheKey(['m'], '{"a":1}'));
    expect(cacheKey(['m'], '{"a":1}')).not.toBe(cacheKey(['m'], '{"a":2}'));
  });
});

describe('ResponseCache', () => {
  it('answers within the age asked for and forgets what is older', () => {
    const c = new ResponseCache(1 << 20);
    c.set('k', 'answer', 1000);
    expect(c.get('k', 5000, 5999)?.body).toBe('answer');
    expect(c.get('k', 5000, 6000)).toBeUndefined();
    expect(c.get('k', 5000, 1001)).toBeUndefined(); // gone, not only stale
    expect(c.size).toEqual({ entries: 0, bytes: 0 });
  });

  it('lets the least recently used go first and keeps within its bytes', () => {
    const c = new ResponseCache(10_000);
    const body = Buffer.alloc(1000);
    for (let i = 0; i < 8; i++) c.set(`k${i}`, body, 0);
    c.get('k0', 1e9, 1); // k0 is now the most recently used
    for (let i = 8; i < 12; i++) c.set(`k${i}`, body, 0);
    expect(c.size.bytes).toBeLessThanOrEqual(10_000);
    expect(c.get('k0', 1e9, 2)).toBeDefined();
    expect(c.get('k1', 1e9, 2)).toBeUndefined();
    expect(c.get('k11', 1e9, 2)).toBeDefined();
  });

  it('replaces an entry in place, refuses one answer over an eighth of it, and does nothing when off', () => {
    const c = new ResponseCache(8000);
    c.set('k', 'a', 0);
    c.set('k', 'bb', 5);
    expect(c.size.entries).toBe(1);
    expect(c.get('k', 1e9, 6)?.storedAt).toBe(5);
    c.set('big', Buffer.alloc(1001), 0);
    expect(c.get('big', 1e9, 1)).toBeUndefined();
    expect(new ResponseCache(0).enabled).toBe(false);
  });
});

describe('keyBody and cacheable', () => {
  it('leaves a stream\'s include_usage out of the key, and nothing else', () => {
    const base = { model: 'm', stream: true, messages: [] };
    expect(keyBody({ ...base, stream_options: { include_usage: true } }, true)).toBe(keyBody(base, true));
    expect(keyBody({ ...base, stream_options: { include_usage: false } }, true)).toBe(keyBody(base, true));
    expect(keyBody({ ...base, stream_options: { include_usage: true, x: 1 } }, true)).toBe(keyBody({ ...base, stream_options: { x: 1 } }, true));
    expect(keyBody({ ...base, stream_options: { x: 1 } }, true)).not.toBe(keyBody(base, true));
    // Not streamed: the body as it is.
    expect(keyBody({ model: 'm', stream_options: { include_usage: true } }, false)).toBe('{"model":"m","stream_options":{"include_usage":true}}');
  });

  it('keeps Responses calls only when they keep and use no stored state', () => {
    expect(cacheable('chat', {})).toBe(true);
    expect(cacheable('images', {})).toBe(false);
    expect(cacheable('responses', {})).toBe(false);
    expect(cacheable('responses', { store: false })).toBe(true);
    expect(cacheable('responses', { store: false, previous_response_id: 'resp_1' })).toBe(false);
    expect(cacheable('responses', { store: false, background: true })).toBe(false);
  });
});

const ev = (s: string) => Buffer.from(s);
const usageChunk = 'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n';
const text = (outs: Iterable<string | Buffer>) => [...outs].map((o) => o.toString()).join('');

/** An OpenAI pass-through stream, as streamOut hands it to a recorder. */
function recordOpenAi(r: StreamRecorder, done = true): void {
  r.begin(true, null);
  r.event(ev('data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}\n\n'), false);
  r.event(ev('data: {"choices":[{"delta":{},"finish_reason":"stop"}],"usage":null}\n\n'), false);
  r.event(ev(usageChunk), true);
  if (done) r.event(ev('data: [DONE]\n\n'), false);
}

describe('StreamRecorder and CachedStream', () => {
  it('replays a pass-through stream byte for byte, leaving the usage chunk out for a client that did not ask', () => {
    const r = new StreamRecorder(1 << 20);
    recordOpenAi(r);
    const kept = r.finish()!;
    expect(kept).toBeInstanceOf(CachedStream);
    const withUsage = text(kept.replay(openAiEncoder('openai', true), true));
    expect(withUsage).toBe(`data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}\n\ndata: {"choices":[{"delta":{},"finish_reason":"stop"}],"usage":null}\n\n${usageChunk}data: [DONE]\n\n`);
    expect(text(kept.replay(openAiEncoder('openai', false), false))).toBe(withUsage.replace(usageChunk, ''));
    expect(kept.serves(true) && kept.serves(false)).toBe(true);
  });

  it('serves only the include_usage it was recorded for when the provider ignored stream_options, and then strips nothing', () => {
    const r = new StreamRecorder(1 << 20);
    recordOpenAi(r);
    r.begin(true, false);
    const kept = r.finish()!;
    expect(kept.serves(false)).toBe(true);
    expect(kept.serves(true)).toBe(false);
    expect(text(kept.replay(openAiEncoder('openai', false), false))).toContain(usageChunk);
  });

  it('replays translated chunks through each client\'s encoder: one recording, Gemini SSE and the JSON array', () => {
    const r = new StreamRecorder(1 << 20);
    r.begin(false, null);
    r.chunk({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { role: 'assistant', content: 'Hello' }, finish_reason: null }] });
    r.chunk({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    r.chunk({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [], usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } });
    const kept = r.finish()!;
    const sse = text(kept.replay(geminiEncoder('m', 'sse'), false));
    expect(sse).toMatch(/^data: \{.*"Hello".*\r\n\r\n/);
    expect(sse).toContain('"promptTokenCount":3');
    const array = JSON.parse(text(kept.replay(geminiEncoder('m', 'array'), false))) as unknown[];
    expect(array.length).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(array)).toContain('Hello');
    // OpenAI clients: the usage chunk only for the one that asked, then [DONE].
    expect(text(kept.replay(openAiEncoder('openai', true), true))).toContain('"usage"');
    const plain = text(kept.replay(openAiEncoder('openai', false), false));
    expect(plain).not.toContain('"usage"');
    expect(plain.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('keeps nothing of a stream that did not end, or one that grew past its limit', () => {
    const cut = new StreamRecorder(1 << 20);
    recordOpenAi(cut, false);
    expect(cut.finish()).toBeNull();
    const translated = new StreamRecorder(1 << 20);
    translated.chunk({ choices: [{ index: 0, delta: { content: 'no finish' }, finish_reason: null }] });
    expect(translated.finish()).toBeNull();
    const gemini = new StreamRecorder(1 << 20);
    gemini.raw('{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}');
    expect(gemini.finish()).toBeNull();
    const ended = new StreamRecorder(1 << 20);
    ended.raw('{"candidates":[{"finishReason":"STOP"}]}');
    expect(ended.finish()).not.toBeNull();

    const big = new StreamRecorder(10_000);
    big.begin(true, null);
    for (let i = 0; i < 100; i++) big.event(Buffer.alloc(1000, 0x61), false);
    big.event(ev('data: [DONE]\n\n'), false);
    expect(big.finish()).toBeNull();
  });

  it('counts a kept stream against the cache\'s bytes, and an eighth of them at most', () => {
    const c = new ResponseCache(80_000);
    expect(c.entryLimit).toBe(10_000);
    const r = new StreamRecorder(c.entryLimit);
    recordOpenAi(r);
    const kept = r.finish()!;
    c.set('s', kept, 0);
    expect(c.get('s', 1e9, 1)?.body).toBe(kept);
    expect(c.size.bytes).toBe(kept.bytes + 1 + 64);
    c.set('big', new CachedStream([], true, null, 10_000), 0);
    expect(c.get('big', 1e9, 1)).toBeUndefined();
  });
});

describe('coalesced misses', () => {
  it('lets one call lead, hands its answer to the waiting ones, and forgets the flight once landed', async () => {
    const c = new ResponseCache(1 << 20);
    const land = c.lead('k')!;
    expect(c.lead('k')).toBeNull();
    const waiting = [waitFor(c.inFlight('k')!, new AbortController().signal), waitFor(c.inFlight('k')!, new AbortController().signal)];
    land('answer');
    expect(await Promise.all(waiting)).toEqual(['answer', 'answer']);
    expect(c.inFlight('k')).toBeUndefined();
    land(null); // landing twice changes nothing
    expect(c.lead('k')).not.toBeNull();
  });

  it('sends the waiting ones off with null when the leader fails, and lets a waiter whose client left stop at once', async () => {
    const c = new ResponseCache(1 << 20);
    const land = c.lead('k')!;
    const left = new AbortController();
    const leaving = waitFor(c.inFlight('k')!, left.signal);
    const staying = waitFor(c.inFlight('k')!, new AbortController().signal);
    left.abort();
    expect(await leaving).toBeUndefined();
    land(null);
    expect(await staying).toBeNull();
    const gone = new AbortController();
    gone.abort();
    expect(await waitFor(new Promise<never>(() => {}), gone.signal)).toBeUndefined();
  });
});
