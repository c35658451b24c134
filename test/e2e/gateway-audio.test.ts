// OpenAI's audio endpoints through the gateway, with the official openai SDK (and AzureOpenAI) against
// a local upstream that parses the multipart it receives: transcriptions and translations forwarded
// with only the model changed (a multi-MB file byte for byte), streamed transcripts, speech audio
// streamed through as it arrives and its SSE form, token usage recorded and priced where the provider
// reports it (zero tokens otherwise), whisper-1 priced by the minute and tts-1 by the character (the
// length of generated WAV, MP3, M4A, Ogg Opus and WebM files read by the gateway), budgets refusing
// before anything goes upstream, audio seconds and speech characters in the Prometheus metrics, and
// every refusal in OpenAI's error format.
import { randomBytes } from 'node:crypto';
import OpenAI, { AzureOpenAI, toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { m4aFile, mp3File, oggOpusFile, wavFile, webmFile } from '../helpers/audio-files.ts';
import { startAppliance, type Appliance, scrapeMetrics } from '../helpers/appliance.ts';
import { encodeForm, speechBytes, startAudioUpstream, transcriptOf, type AudioUpstream } from '../helpers/audio-upstream.ts';
import { createKey, createProvider, simpleModel } from '../helpers/gateway.ts';
import { until } from '../helpers/until.ts';

const BODY_LIMIT = 8 * 1024 * 1024;

let app: Appliance;
let admin: Admin;
let up: AudioUpstream;
let key: string;
let keyId: string;

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance({ env: { NEXUS_GATEWAY_BODY_LIMIT_BYTES: String(BODY_LIMIT) } }), startAudioUpstream()]);
  admin = await setupAdmin(app);
  const oa = await createProvider(app, admin, { name: 'oa', type: 'openai', base_url: `${up.url}/v1`, api_key: 'sk-up' });
  const az = await createProvider(app, admin, { name: 'az', type: 'azure', base_url: up.url, api_key: 'az-up', api_version: '2025-03-01-preview' });
  const gm = await createProvider(app, admin, { name: 'gm', type: 'gemini', base_url: `${up.url}/v1beta`, api_key: 'g-up' });
  const an = await createProvider(app, admin, { name: 'an', type: 'anthropic', base_url: up.url, api_key: 'a-up' });
  await simpleModel(app, admin, oa.id, 'whisper-1', 'whisper-up');
  await simpleModel(app, admin, oa.id, 'gpt-4o-transcribe', 'gpt-4o-transcribe-up', { input_price_per_mtok: 2.5, output_price_per_mtok: 10 });
  await simpleModel(app, admin, oa.id, 'tts-1', 'tts-up');
  await simpleModel(app, admin, oa.id, 'gpt-4o-mini-tts', 'gpt-4o-mini-tts-up', { input_price_per_mtok: 0.6, output_price_per_mtok: 12 });
  await simpleModel(app, admin, oa.id, 'tts-gated', 'tts-gate');
  await simpleModel(app, admin, oa.id, 'tts-cut', 'tts-cut');
  // Budget tests: a reservation costs 1024 reserved output tokens × $1000/Mtok = $1.024.
  await simpleModel(app, admin, oa.id, 'transcribe-dear', 'gpt-4o-transcribe-out-1600', { input_price_per_mtok: 0, output_price_per_mtok: 1000 });
  await simpleModel(app, admin, oa.id, 'transcribe-gated', 'gpt-4o-transcribe-gate-out-5', { input_price_per_mtok: 0, output_price_per_mtok: 1000 });
  await simpleModel(app, admin, az.id, 'whisper-az', 'whisper-deployment');
  await simpleModel(app, admin, az.id, 'tts-az', 'tts-deployment');
  await simpleModel(app, admin, gm.id, 'gemini-flash', 'gemini-2.0-flash');
  await simpleModel(app, admin, an.id, 'claude', 'claude-sonnet-4');
  // OpenAI's list prices: whisper-1 $0.006 per minute, tts-1 $15 and tts-1-hd $30 per million characters.
  await simpleModel(app, admin, oa.id, 'whisper-priced', 'whisper-up', { audio_input_price_per_minute: 0.006 });
  await simpleModel(app, admin, oa.id, 'whisper-quiet', 'whisper-nousage', { audio_input_price_per_minute: 0.006 });
  await simpleModel(app, admin, oa.id, 'whisper-gated', 'whisper-gate', { audio_input_price_per_minute: 0.006 });
  await simpleModel(app, admin, oa.id, 'tts-1-priced', 'tts-up', { tts_price_per_mchar: 15 });
  await simpleModel(app, admin, az.id, 'tts-hd-az', 'tts-hd-deployment', { tts_price_per_mchar: 30 });
  ({ key, id: keyId } = await createKey(app, admin.token));
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

const client = () => new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
const wav = (n: number) => Buffer.concat([Buffer.from('RIFF'), randomBytes(n - 4)]);

async function usageOf(model: string, id = keyId) {
  const items = (await json(await fetch(`${app.url}/api/v1/usage?group_by=model&key_id=${id}&model=${model}`, authed(admin.token)))).items;
  return items[0];
}

const scrape = () => scrapeMetrics(app);

describe('transcriptions and translations', () => {
  it('transcribes with the openai SDK: the file and every field reach the provider, the model renamed', async () => {
    const audio = wav(48_000);
    const res = await client().audio.transcriptions.create({ file: await toFile(audio, 'a.wav', { type: 'audio/wav' }), model: 'whisper-1', language: 'de', prompt: 'Namen: Anna', temperature: 0.2 });
    expect(res.text).toBe(transcriptOf({ name: 'a.wav', bytes: audio }, 'de'));
    const seen = up.requests.at(-1)!;
    expect(seen.path).toBe('/v1/audio/transcriptions');
    expect(seen.headers.authorization).toBe('Bearer sk-up');
    expect(seen.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(Object.fromEntries(seen.fields)).toEqual({ model: ['whisper-up'], language: ['de'], prompt: ['Namen: Anna'], temperature: ['0.2'] });
    expect(seen.file).toMatchObject({ name: 'a.wav', type: 'audio/wav' });
    expect(seen.file!.bytes.equals(audio)).toBe(true);
    // whisper-1 reports no tokens: the call is recorded with zero tokens and no cost.
    expect(await usageOf('whisper-1')).toMatchObject({ requests: 1, errors: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 });
  });

  it('answers text, srt, vtt and verbose_json as the provider does, and passes repeated fields', async () => {
    const file = await toFile(wav(1000), 'b.mp3');
    const text = await client().audio.transcriptions.create({ file, model: 'whisper-1', response_format: 'text' });
    expect(text).toBe(`${transcriptOf({ name: 'b.mp3', bytes: Buffer.alloc(1000) })}\n`);
    const srt = await client().audio.transcriptions.create({ file: await toFile(wav(1000), 'b.mp3'), model: 'whisper-1', response_format: 'srt' });
    expect(srt).toMatch(/^1\n00:00:00,000 --> /);
    const vtt = await fetch(`${app.url}/v1/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: formOf(wav(10), { model: 'whisper-1', response_format: 'vtt' }) });
    expect(vtt.status).toBe(200);
    expect(vtt.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await vtt.text()).toMatch(/^WEBVTT\n/);
    const verbose = await client().audio.transcriptions.create({ file: await toFile(wav(1000), 'c.wav'), model: 'whisper-1', response_format: 'verbose_json', timestamp_granularities: ['word', 'segment'] });
    expect(verbose.words!.length).toBeGreaterThan(0);
    expect(verbose.segments).toHaveLength(1);
    expect(up.requests.at(-1)!.fields.get('timestamp_granularities[]')).toEqual(['word', 'segment']);
  });

  it('records and prices gpt-4o-transcribe token usage, also when the transcript is streamed', async () => {
    const audio = wav(20_000);
    const res = await client().audio.transcriptions.create({ file: await toFile(audio, 'd.wav'), model: 'gpt-4o-transcribe' });
    expect(res.usage).toMatchObject({ type: 'tokens', input_tokens: 20, output_tokens: 7 });
    expect(up.requests.at(-1)!.fields.get('model')).toEqual(['gpt-4o-transcribe-up']);
    const stream = await client().audio.transcriptions.create({ file: await toFile(audio, 'd.wav'), model: 'gpt-4o-transcribe', stream: true });
    const types: string[] = [];
    let text = '';
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'transcript.text.delta') text += ev.delta;
      if (ev.type === 'transcript.text.done') expect(ev.usage).toMatchObject({ input_tokens: 20, output_tokens: 7 });
    }
    expect(types.at(-1)).toBe('transcript.text.done');
    expect(types.filter((t) => t === 'transcript.text.delta')).toHaveLength(7);
    expect(text.trim()).toBe(transcriptOf({ name: 'd.wav', bytes: audio }));
    expect(up.requests.at(-1)!.fields.get('stream')).toEqual(['true']);
    const usage = await usageOf('gpt-4o-transcribe');
    expect(usage).toMatchObject({ requests: 2, errors: 0, input_tokens: 40, output_tokens: 14 });
    expect(usage.cost_usd).toBeCloseTo((40 * 2.5 + 14 * 10) / 1e6, 12);
    const audit = await json(await fetch(`${app.url}/api/v1/audit?action=gateway.transcriptions&limit=50`, authed(admin.token)));
    expect(audit.items.length).toBeGreaterThanOrEqual(2);
    expect(audit.items[0]).toMatchObject({ target_id: 'gpt-4o-transcribe', outcome: 'success' });
  });

  it('translates', async () => {
    const audio = wav(3000);
    const res = await client().audio.translations.create({ file: await toFile(audio, 'fr.ogg'), model: 'whisper-1', prompt: 'bonjour' });
    expect(res.text).toBe(transcriptOf({ name: 'fr.ogg', bytes: audio }));
    const seen = up.requests.at(-1)!;
    expect(seen.path).toBe('/v1/audio/translations');
    expect(Object.fromEntries(seen.fields)).toEqual({ model: ['whisper-up'], prompt: ['bonjour'] });
  });

  it('forwards a multi-MB upload byte for byte but for the model\'s value', async () => {
    const audio = randomBytes(6 * 1024 * 1024);
    const form = new FormData();
    form.append('file', new Blob([audio], { type: 'audio/flac' }), 'long.flac');
    form.append('model', 'whisper-1');
    form.append('response_format', 'json');
    const { body, type } = await encodeForm(form);
    const res = await fetch(`${app.url}/v1/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': type }, body: new Uint8Array(body) });
    expect(res.status).toBe(200);
    expect((await json(res)).text).toBe(transcriptOf({ name: 'long.flac', bytes: audio }));
    const seen = up.requests.at(-1)!;
    expect(seen.headers['content-type']).toBe(type);
    const expected = Buffer.from(body.toString('latin1').replace('name="model"\r\n\r\nwhisper-1\r\n', 'name="model"\r\n\r\nwhisper-up\r\n'), 'latin1');
    expect(expected.length).toBe(body.length + 1);
    expect(seen.raw.equals(expected)).toBe(true);
    expect(seen.file!.bytes.equals(audio)).toBe(true);
  });
});

function formOf(file: Buffer | null, fields: Record<string, string>): FormData {
  const f = new FormData();
  if (file) f.append('file', new Blob([new Uint8Array(file)]), 'x.wav');
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

describe('speech', () => {
  it('streams the audio bytes back as the provider sends them, in the format asked for', async () => {
    const res = await client().audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Hello from the appliance.' });
    expect(res.headers.get('content-type')).toBe('audio/mpeg');
    expect(Buffer.from(await res.arrayBuffer()).equals(speechBytes('Hello from the appliance.'))).toBe(true);
    expect(up.requests.at(-1)!).toMatchObject({ path: '/v1/audio/speech', json: { model: 'tts-up', voice: 'alloy', input: 'Hello from the appliance.' } });
    const wavRes = await client().audio.speech.create({ model: 'tts-1', voice: 'nova', input: 'x', response_format: 'wav' });
    expect(wavRes.headers.get('content-type')).toBe('audio/wav');
    expect(Buffer.from(await wavRes.arrayBuffer()).equals(speechBytes('x', 'wav'))).toBe(true);
    expect(await usageOf('tts-1')).toMatchObject({ requests: 2, errors: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 });
  });

  it('does not hold the audio back: the first half arrives while the provider still holds the rest', async () => {
    const res = await client().audio.speech.create({ model: 'tts-gated', voice: 'alloy', input: 'streamed' });
    const reader = res.body!.getReader();
    const want = speechBytes('streamed');
    const got: Buffer[] = [];
    let n = 0;
    while (n < want.length >> 1) {
      const { value, done } = await reader.read();
      if (done) throw new Error('ended early');
      got.push(Buffer.from(value));
      n += value.length;
    }
    expect(up.held()).toBe(1); // the provider has not sent the second half yet
    up.release();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      got.push(Buffer.from(value));
    }
    expect(Buffer.concat(got).equals(want)).toBe(true);
  });

  it('breaks the client\'s connection when the provider\'s audio breaks off, so it never looks complete', async () => {
    const res = await client().audio.speech.create({ model: 'tts-cut', voice: 'alloy', input: 'cut short' });
    await expect(res.arrayBuffer()).rejects.toThrow();
    const usage = await until('the failed call\'s usage row', async () => {
      const u = await usageOf('tts-cut');
      return u?.errors === 1 && u;
    }, 10_000);
    expect(usage).toMatchObject({ requests: 1, errors: 1 });
  });

  it('passes speech SSE events through and prices gpt-4o-mini-tts from the final event', async () => {
    const res = await client().audio.speech.create({ model: 'gpt-4o-mini-tts', voice: 'coral', input: 'twelve chars', stream_format: 'sse' });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await res.text()).split('\n\n').filter(Boolean).map((e) => JSON.parse(e.replace(/^data: /, '')));
    expect(events.at(-1)).toMatchObject({ type: 'speech.audio.done', usage: { input_tokens: 3, output_tokens: 100 } });
    const audio = Buffer.concat(events.filter((e) => e.type === 'speech.audio.delta').map((e) => Buffer.from(e.audio, 'base64')));
    expect(audio.equals(speechBytes('twelve chars'))).toBe(true);
    const usage = await usageOf('gpt-4o-mini-tts');
    expect(usage).toMatchObject({ requests: 1, input_tokens: 3, output_tokens: 100 });
    expect(usage.cost_usd).toBeCloseTo((3 * 0.6 + 100 * 12) / 1e6, 12);
  });
});

describe('Azure paths', () => {
  it('transcribes and speaks through deployments with AzureOpenAI, and through /openai/v1', async () => {
    const audio = wav(5000);
    const azure = new AzureOpenAI({ apiKey: key, endpoint: app.url, apiVersion: '2025-03-01-preview', deployment: 'whisper-az', maxRetries: 0 });
    const res = await azure.audio.transcriptions.create({ file: await toFile(audio, 'az.wav'), model: 'whisper-az' });
    expect(res.text).toBe(transcriptOf({ name: 'az.wav', bytes: audio }));
    const seen = up.requests.at(-1)!;
    expect(seen.path).toBe('/openai/deployments/whisper-deployment/audio/transcriptions?api-version=2025-03-01-preview');
    expect(seen.headers['api-key']).toBe('az-up');
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.fields.get('model')).toEqual(['whisper-deployment']);
    expect(seen.file!.bytes.equals(audio)).toBe(true);

    const tr = await azure.audio.translations.create({ file: await toFile(audio, 'az.wav'), model: 'whisper-az' });
    expect(tr.text).toContain('az.wav');
    expect(up.requests.at(-1)!.path).toBe('/openai/deployments/whisper-deployment/audio/translations?api-version=2025-03-01-preview');

    const tts = new AzureOpenAI({ apiKey: key, endpoint: app.url, apiVersion: '2025-03-01-preview', deployment: 'tts-az', maxRetries: 0 });
    const speech = await tts.audio.speech.create({ model: 'tts-az', voice: 'alloy', input: 'azure speaks' });
    expect(Buffer.from(await speech.arrayBuffer()).equals(speechBytes('azure speaks'))).toBe(true);
    expect(up.requests.at(-1)!.path).toBe('/openai/deployments/tts-deployment/audio/speech?api-version=2025-03-01-preview');

    // The deployment path needs no model field: the deployment names it, and it is added upstream.
    const bare = await fetch(`${app.url}/openai/deployments/whisper-az/audio/transcriptions?api-version=2025-03-01-preview`, { method: 'POST', headers: { 'api-key': key }, body: formOf(audio, {}) });
    expect(bare.status).toBe(200);
    expect(up.requests.at(-1)!.fields.get('model')).toEqual(['whisper-deployment']);

    const v1 = await fetch(`${app.url}/openai/v1/audio/transcriptions`, { method: 'POST', headers: { 'api-key': key }, body: formOf(audio, { model: 'whisper-az' }) });
    expect(v1.status).toBe(200);
    expect((await json(v1)).text).toContain('bytes of x.wav');
    expect(up.requests.at(-1)!.path).toBe('/openai/deployments/whisper-deployment/audio/transcriptions?api-version=2025-03-01-preview');
  });
});

describe('refusals', () => {
  it('refuses bad uploads, unknown and unsuitable models and wrong keys in OpenAI\'s format, sending nothing upstream', async () => {
    const before = up.requests.length;
    const auth = { authorization: `Bearer ${key}` };
    const url = `${app.url}/v1/audio/transcriptions`;
    const expectError = async (res: Response, status: number, fields: Record<string, unknown>) => {
      expect(res.status).toBe(status);
      const body = await json(res);
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expect(body.error).toMatchObject(fields);
    };
    await expectError(await fetch(url, { method: 'POST', headers: auth, body: formOf(null, { model: 'whisper-1' }) }), 400, { param: 'file', type: 'invalid_request_error' });
    await expectError(await fetch(url, { method: 'POST', headers: auth, body: formOf(wav(10), {}) }), 400, { param: 'model' });
    await expectError(await fetch(url, { method: 'POST', headers: auth, body: formOf(wav(10), { model: 'whisper-1', stream: 'yes' }) }), 400, { param: 'stream' });
    await expectError(await post(url, { model: 'whisper-1', file: 'aGVsbG8=' }, auth), 415, { code: 'invalid_content_type' });
    await expectError(await fetch(url, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'hello' }), 415, { code: 'invalid_content_type' });

    const { body, type } = await encodeForm(formOf(wav(4000), { model: 'whisper-1' }));
    const raw = (b: Buffer | string, t: string) => fetch(url, { method: 'POST', headers: { ...auth, 'content-type': t }, body: typeof b === 'string' ? b : new Uint8Array(b) });
    await expectError(await raw(body.subarray(0, 2000), type), 400, { code: 'invalid_multipart' }); // truncated
    await expectError(await raw(body, 'multipart/form-data; boundary=not-the-one'), 400, { code: 'invalid_multipart' });
    await expectError(await raw(body, 'multipart/form-data'), 400, { code: 'invalid_multipart' });
    await expectError(await raw('', type), 400, { code: 'invalid_multipart' });

    const big = await fetch(url, { method: 'POST', headers: auth, body: formOf(randomBytes(BODY_LIMIT + 1024), { model: 'whisper-1' }) });
    await expectError(big, 413, { type: 'invalid_request_error' });

    const sdk = client();
    const file = () => toFile(wav(100), 'x.wav');
    await expect(sdk.audio.transcriptions.create({ file: await file(), model: 'no-such-model' })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    await expect(sdk.audio.transcriptions.create({ file: await file(), model: 'gemini-flash' })).rejects.toMatchObject({ status: 400, code: 'unsupported_operation' });
    await expect(sdk.audio.translations.create({ file: await file(), model: 'claude' })).rejects.toMatchObject({ status: 400, code: 'unsupported_operation' });
    await expect(sdk.audio.speech.create({ model: 'gemini-flash', voice: 'alloy', input: 'x' })).rejects.toMatchObject({ status: 400, code: 'unsupported_operation' });
    await expect(sdk.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'x', stream_format: 'mp3' as 'sse' })).rejects.toMatchObject({ status: 400, param: 'stream_format' });
    const wrong = new OpenAI({ apiKey: 'nx_vk_wrong', baseURL: `${app.url}/v1`, maxRetries: 0 });
    await expect(wrong.audio.transcriptions.create({ file: await file(), model: 'whisper-1' })).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
    await expect(wrong.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'x' })).rejects.toMatchObject({ status: 401 });
    const keyless = await fetch(url, { method: 'POST', body: formOf(wav(10), { model: 'whisper-1' }) });
    await expectError(keyless, 401, { code: 'invalid_api_key' });
    expect(up.requests.length).toBe(before);
  });
});

describe('prices by length and by character', () => {
  const PER_SECOND = 0.006 / 60;
  const keyed = async (budget?: number) => {
    const k = await createKey(app, admin.token, budget === undefined ? {} : { max_budget_usd: budget });
    return { ...k, sdk: new OpenAI({ apiKey: k.key, baseURL: `${app.url}/v1`, maxRetries: 0 }) };
  };

  it('takes, shows and edits the prices, and refuses hostile ones', async () => {
    const h = { authorization: `Bearer ${admin.token}` };
    const model = async (name: string) => json(await fetch(`${app.url}/api/v1/models/${name}`, authed(admin.token)));
    expect(await model('whisper-priced')).toMatchObject({ audio_input_price_per_minute: 0.006, tts_price_per_mchar: null, input_price_per_mtok: 0 });
    const listed = (await json(await fetch(`${app.url}/api/v1/models`, authed(admin.token)))).items.find((m: { name: string }) => m.name === 'tts-1-priced');
    expect(listed).toMatchObject({ tts_price_per_mchar: 15, audio_input_price_per_minute: null });
    const patchModel = (name: string, body: unknown) => fetch(`${app.url}/api/v1/models/${name}`, { method: 'PATCH', headers: { ...h, 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    const p = await simpleModel(app, admin, (await model('whisper-1')).deployments[0].provider_id, 'price-edits', 'whisper-up');
    expect(await model('price-edits')).toMatchObject({ audio_input_price_per_minute: null, tts_price_per_mchar: null });
    expect((await patchModel(p.id, { audio_input_price_per_minute: 0.01, tts_price_per_mchar: 0 })).status).toBe(200);
    expect(await model('price-edits')).toMatchObject({ audio_input_price_per_minute: 0.01, tts_price_per_mchar: 0 });
    expect((await patchModel('price-edits', { audio_input_price_per_minute: null })).status).toBe(200);
    expect((await model('price-edits')).audio_input_price_per_minute).toBeNull();
    const hostile: unknown[] = [
      { audio_input_price_per_minute: '0.006' }, { audio_input_price_per_minute: -0.001 }, { audio_input_price_per_minute: 1e7 },
      { audio_input_price_per_minute: true }, { audio_input_price_per_minute: [1] }, { tts_price_per_mchar: { usd: 15 } },
      { tts_price_per_mchar: 'NaN' }, { tts_price_per_mchar: -15 }, '{"tts_price_per_mchar": 1e999}', '{"tts_price_per_mchar": Infinity}',
      { audio_price_per_minute: 1 },
    ];
    for (const body of hostile) {
      const res = await patchModel('price-edits', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await json(res)).error.code).toBeTruthy();
    }
    const created = await post(`${app.url}/api/v1/models`, { name: 'price-bad', deployments: [{ provider_id: (await model('whisper-1')).deployments[0].provider_id, upstream_model: 'x' }], tts_price_per_mchar: -1 }, h);
    expect(created.status).toBe(400);
    expect(await model('price-edits')).toMatchObject({ audio_input_price_per_minute: null, tts_price_per_mchar: 0 });
  });

  it('prices a transcription by the audio\'s length: the provider\'s when it says, the file\'s WAV or MP3 headers otherwise', async () => {
    const { id, sdk } = await keyed();
    // text answers carry no usage: the gateway reads 7.5 s from the WAV it forwarded.
    const wav = wavFile(7.5);
    const text = await sdk.audio.transcriptions.create({ file: await toFile(wav, 'speech.wav', { type: 'audio/wav' }), model: 'whisper-priced', response_format: 'text' });
    expect(text).toContain(`heard ${wav.length} bytes`);
    let usage = await usageOf('whisper-priced', id);
    expect(usage).toMatchObject({ requests: 1, audio_seconds: 7.5, input_characters: 0, input_tokens: 0 });
    expect(usage.cost_usd).toBeCloseTo(7.5 * PER_SECOND, 12);
    // 250 MPEG-1 Layer III frames at 48 kHz: 6 s, answered as srt.
    await sdk.audio.translations.create({ file: await toFile(mp3File(250), 'speech.mp3', { type: 'audio/mpeg' }), model: 'whisper-priced', response_format: 'srt' });
    usage = await usageOf('whisper-priced', id);
    expect(usage.audio_seconds).toBeCloseTo(13.5, 9);
    expect(usage.cost_usd).toBeCloseTo(13.5 * PER_SECOND, 12);
    // A JSON answer's usage ({type: "duration", seconds}) is the provider's own count, and wins.
    const json1 = await sdk.audio.transcriptions.create({ file: await toFile(wav, 'speech.wav'), model: 'whisper-priced' });
    const reported = Math.ceil(wav.length / 32000);
    expect(json1.usage).toEqual({ type: 'duration', seconds: reported });
    usage = await usageOf('whisper-priced', id);
    expect(usage).toMatchObject({ requests: 3, errors: 0 });
    expect(usage.audio_seconds).toBeCloseTo(13.5 + reported, 9);
    expect(usage.cost_usd).toBeCloseTo((13.5 + reported) * PER_SECOND, 12);
    // verbose_json without usage: its duration (1.5 s) — not the 7.5 s of the file.
    const verbose = await sdk.audio.transcriptions.create({ file: await toFile(wav, 'speech.wav'), model: 'whisper-quiet', response_format: 'verbose_json' });
    expect(verbose.duration).toBe(1.5);
    const quiet = await usageOf('whisper-quiet', id);
    expect(quiet.audio_seconds).toBe(1.5);
    expect(quiet.cost_usd).toBeCloseTo(1.5 * PER_SECOND, 12);
    // A format the gateway cannot read, answered without usage: charged the length assumed from its
    // size at 16 kbit/s (2000 bytes a second), what was reserved.
    const ogg = Buffer.concat([Buffer.from('OggS'), randomBytes(39_996)]);
    await sdk.audio.transcriptions.create({ file: await toFile(ogg, 'speech.ogg'), model: 'whisper-quiet', response_format: 'text' });
    usage = await usageOf('whisper-quiet', id);
    expect(usage.audio_seconds).toBeCloseTo(1.5 + 20, 9);
    expect(usage.cost_usd).toBeCloseTo(21.5 * PER_SECOND, 12);
    // The usage API's totals over every model include the audio's cost.
    const total = (await json(await fetch(`${app.url}/api/v1/usage?group_by=key&key_id=${id}`, authed(admin.token)))).items[0];
    expect(total).toMatchObject({ requests: 5, errors: 0 });
    expect(total.audio_seconds).toBeCloseTo(13.5 + reported + 21.5, 9);
    expect(total.cost_usd).toBeCloseTo((13.5 + reported + 21.5) * PER_SECOND, 12);
    const audit = await json(await fetch(`${app.url}/api/v1/audit?action=gateway.transcriptions&limit=1`, authed(admin.token)));
    expect(audit.items[0].details).toMatchObject({ audio_seconds: 20 });
  });

  it('prices speech by the characters of its input, on OpenAI and Azure paths', async () => {
    const { id, key: k, sdk } = await keyed();
    const input = 'Grüße aus dem Gerät — 🎧 fin.'; // 28 characters: code points, not UTF-16 units (the emoji is two)
    expect(input.length).toBe(29);
    const res = await sdk.audio.speech.create({ model: 'tts-1-priced', voice: 'alloy', input });
    expect(Buffer.from(await res.arrayBuffer()).equals(speechBytes(input))).toBe(true);
    const usage = await usageOf('tts-1-priced', id);
    expect(usage).toMatchObject({ requests: 1, input_characters: 28, audio_seconds: 0, input_tokens: 0, output_tokens: 0 });
    expect(usage.cost_usd).toBeCloseTo((28 * 15) / 1e6, 15);
    const azure = new AzureOpenAI({ apiKey: k, endpoint: app.url, apiVersion: '2025-03-01-preview', deployment: 'tts-hd-az', maxRetries: 0 });
    await (await azure.audio.speech.create({ model: 'tts-hd-az', voice: 'alloy', input: 'x'.repeat(1000) })).arrayBuffer();
    const hd = await usageOf('tts-hd-az', id);
    expect(hd).toMatchObject({ input_characters: 1000 });
    expect(hd.cost_usd).toBeCloseTo((1000 * 30) / 1e6, 15);
  });

  it('refuses the call that would pass a tiny budget, in OpenAI\'s error shape, before it goes upstream', async () => {
    // $0.001 buys exactly 10 s of whisper-1: the first call spends it, the second is refused.
    const { sdk, id } = await keyed(0.001);
    const ten = await toFile(wavFile(10), 'ten.wav');
    await sdk.audio.transcriptions.create({ file: ten, model: 'whisper-priced', response_format: 'text' });
    const before = up.requests.length;
    const err = await sdk.audio.transcriptions.create({ file: await toFile(wavFile(1), 'one.wav'), model: 'whisper-priced', response_format: 'text' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).toMatchObject({ status: 429, code: 'budget_exceeded', type: 'insufficient_quota' });
    expect(Number((err as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after'))).toBeGreaterThan(0);
    expect(up.requests.length).toBe(before);
    expect(await usageOf('whisper-priced', id)).toMatchObject({ requests: 2, errors: 1, audio_seconds: 10 });

    // Speech reserves its exact price: 20 characters ($0.0003) fit a $0.0004 budget, a second such call does not.
    const tts = await keyed(0.0004);
    await (await tts.sdk.audio.speech.create({ model: 'tts-1-priced', voice: 'alloy', input: 'twenty characters..!' })).arrayBuffer();
    const refused = await fetch(`${app.url}/v1/audio/speech`, { method: 'POST', headers: { authorization: `Bearer ${tts.key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tts-1-priced', voice: 'alloy', input: 'twenty characters..!' }) });
    expect(refused.status).toBe(429);
    const body = await json(refused);
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(body.error).toMatchObject({ code: 'budget_exceeded', type: 'insufficient_quota' });
    // 6 characters still fit.
    await (await tts.sdk.audio.speech.create({ model: 'tts-1-priced', voice: 'alloy', input: 'sechs!' })).arrayBuffer();
    expect((await usageOf('tts-1-priced', tts.id)).cost_usd).toBeCloseTo((26 * 15) / 1e6, 15);

    // An upload of unknown format reserves its size at 16 kbit/s: 100 kB (50 s, $0.005) does not fit
    // $0.002, while a 20 s WAV of more bytes (640 kB, read exactly: $0.002) does.
    const small = await keyed(0.002);
    const n = up.requests.length;
    const unknown = await small.sdk.audio.transcriptions.create({ file: await toFile(randomBytes(100_000), 'x.webm'), model: 'whisper-priced' }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ status: 429, code: 'budget_exceeded' });
    expect(up.requests.length).toBe(n);
    await small.sdk.audio.transcriptions.create({ file: await toFile(wavFile(20), 'twenty.wav'), model: 'whisper-priced', response_format: 'text' });
    expect(up.requests.length).toBe(n + 1);
  });

  it('reserves and prices m4a, Ogg Opus and WebM uploads by the length read from the file', async () => {
    // As phones and browsers write them: an M4A with its moov after the mdat (12 s: its sound track
    // holds 517 AAC frames of 1024 samples at 44.1 kHz, 12.0047 s, charged to the millisecond), Ogg
    // Opus at 40 kbit/s (9 s), MediaRecorder's WebM without a Duration and with Clusters of unknown
    // size (15 s). By their sizes at 16 kbit/s they would be taken for 51, 23 and 20 s; the budget
    // holds 36.1 s.
    const files = [
      { file: m4aFile(12, { moovAtEnd: true }), name: 'memo.m4a', type: 'audio/mp4', seconds: 12.005 },
      { file: oggOpusFile(9, { packetBytes: 100 }), name: 'voice.ogg', type: 'audio/ogg', seconds: 9 },
      { file: webmFile(15, { duration: false, live: true }), name: 'recording.webm', type: 'audio/webm', seconds: 15 },
    ];
    const { sdk, id } = await keyed(36.1 * PER_SECOND);
    let total = 0;
    for (const f of files) {
      expect(f.file.length / 2000).toBeGreaterThan(f.seconds + 4);
      const text = await sdk.audio.transcriptions.create({ file: await toFile(f.file, f.name, { type: f.type }), model: 'whisper-priced', response_format: 'text' });
      expect(text).toContain(`heard ${f.file.length} bytes of ${f.name}`);
      total += f.seconds;
      const usage = await usageOf('whisper-priced', id);
      expect(usage.audio_seconds).toBeCloseTo(total, 9);
      expect(usage.cost_usd).toBeCloseTo(total * PER_SECOND, 12);
    }
    // 36.005 s spent of 36.1: one more second does not fit, and is refused before the provider sees it.
    const before = up.requests.length;
    const err = await sdk.audio.transcriptions.create({ file: await toFile(oggOpusFile(1), 'one.ogg'), model: 'whisper-priced', response_format: 'text' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 429, code: 'budget_exceeded' });
    expect(up.requests.length).toBe(before);
    expect(await usageOf('whisper-priced', id)).toMatchObject({ requests: 4, errors: 1, audio_seconds: 36.005 });
    // The audit row of a call charged by its file's length says how long it was.
    const audit = await json(await fetch(`${app.url}/api/v1/audit?action=gateway.transcriptions&actor=${id}&limit=2`, authed(admin.token)));
    expect(audit.items.map((i: { details: { audio_seconds?: number } }) => i.details.audio_seconds)).toContain(15);
  });

  it('holds concurrent uploads to the budget by their length', async () => {
    const { key: k, id } = await keyed(0.0025); // two 10 s reservations ($0.001 each) fit, a third does not
    const before = up.requests.length;
    const { body, type } = await encodeForm(formOf(wavFile(10), { model: 'whisper-gated', response_format: 'text' }));
    const settled = new Set<number>();
    const calls = Array.from({ length: 5 }, (_, i) =>
      fetch(`${app.url}/v1/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${k}`, 'content-type': type }, body: new Uint8Array(body) })
        .then((r) => (settled.add(i), r)));
    await until('two uploads held upstream and three refused', async () => up.held() === 2 && settled.size === 3, 10_000, 20);
    up.release();
    const statuses = (await Promise.all(calls)).map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 429, 429, 429]);
    expect(up.requests.length - before).toBe(2);
    const usage = await usageOf('whisper-gated', id);
    expect(usage).toMatchObject({ requests: 5, errors: 3, audio_seconds: 20 });
    expect(usage.cost_usd).toBeCloseTo(20 * PER_SECOND, 12);
  });
});

describe('budgets and metrics', () => {
  it('refuses a key whose budget is spent before anything goes upstream', async () => {
    const { key: k } = await createKey(app, admin.token, { max_budget_usd: 1.5 });
    const sdk = new OpenAI({ apiKey: k, baseURL: `${app.url}/v1`, maxRetries: 0 });
    await sdk.audio.transcriptions.create({ file: await toFile(wav(100), 'x.wav'), model: 'transcribe-dear' }); // $1.60: spent
    const before = up.requests.length;
    const refused = await fetch(`${app.url}/v1/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${k}` }, body: formOf(wav(100), { model: 'transcribe-dear' }) });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await json(refused)).error).toMatchObject({ code: 'budget_exceeded', type: 'insufficient_quota' });
    const speech = await fetch(`${app.url}/v1/audio/speech`, { method: 'POST', headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'transcribe-dear', voice: 'alloy', input: 'x' }) });
    expect(speech.status).toBe(429);
    expect(up.requests.length).toBe(before);
  });

  it('holds concurrent calls to the budget: those past it are refused while the others are in flight', async () => {
    const { key: k, id } = await createKey(app, admin.token, { max_budget_usd: 2.5 }); // room for two $1.024 reservations
    const before = up.requests.length;
    const settled = new Set<number>();
    const calls = Array.from({ length: 5 }, (_, i) =>
      fetch(`${app.url}/v1/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${k}` }, body: formOf(wav(2000), { model: 'transcribe-gated' }) })
        .then((r) => (settled.add(i), r)));
    await until('two calls held upstream and three refused', async () => up.held() === 2 && settled.size === 3, 10_000, 20);
    up.release();
    const statuses = (await Promise.all(calls)).map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 429, 429, 429]);
    expect(up.requests.length - before).toBe(2);
    const usage = await usageOf('transcribe-gated', id);
    expect(usage).toMatchObject({ requests: 5, errors: 3, output_tokens: 10 });
    expect(usage.cost_usd).toBeCloseTo(0.01, 9);
  });

  it('counts audio calls in the Prometheus metrics as the usage API does', async () => {
    const m = await scrape();
    const whisper = await usageOf('whisper-1');
    expect(m.get('nexus_gateway_requests_total{model="whisper-1",provider="oa",ingress="openai",status="200"}')).toBe(whisper.requests);
    const t = await usageOf('gpt-4o-transcribe');
    expect(m.get('nexus_gateway_tokens_total{model="gpt-4o-transcribe",provider="oa",type="input"}')).toBe(t.input_tokens);
    expect(m.get('nexus_gateway_tokens_total{model="gpt-4o-transcribe",provider="oa",type="output"}')).toBe(t.output_tokens);
    expect(m.get('nexus_gateway_cost_usd_total{model="gpt-4o-transcribe",provider="oa"}')).toBeCloseTo(t.cost_usd, 12);
    expect(m.get('nexus_gateway_requests_total{model="tts-az",provider="az",ingress="azure",status="200"}')).toBe(1);
    const refused = [...m].filter(([k]) => k.startsWith('nexus_gateway_requests_total{model="transcribe-gated",') && k.includes('status="429"'));
    expect(refused.reduce((n, [, v]) => n + v, 0)).toBe(3);
    // Seconds of audio and characters of speech, as charged: what the usage API sums over every key.
    const everyKey = async (model: string) => (await json(await fetch(`${app.url}/api/v1/usage?group_by=model&model=${model}`, authed(admin.token)))).items[0];
    const priced = await everyKey('whisper-priced');
    expect(priced.audio_seconds).toBeGreaterThan(36);
    expect(m.get('nexus_gateway_audio_seconds_total{model="whisper-priced",provider="oa"}')).toBeCloseTo(priced.audio_seconds, 9);
    expect(m.get('nexus_gateway_audio_seconds_total{model="whisper-gated",provider="oa"}')).toBeCloseTo((await everyKey('whisper-gated')).audio_seconds, 9);
    const tts = await everyKey('tts-1-priced');
    expect(tts.input_characters).toBeGreaterThan(0);
    expect(m.get('nexus_gateway_tts_characters_total{model="tts-1-priced",provider="oa"}')).toBe(tts.input_characters);
    expect(m.get('nexus_gateway_tts_characters_total{model="tts-hd-az",provider="az"}')).toBe((await everyKey('tts-hd-az')).input_characters);
    // Models never charged for audio have no such series.
    expect([...m.keys()].filter((k) => k.startsWith('nexus_gateway_audio_seconds_total{model="gpt-4o-transcribe"'))).toEqual([]);
  });
});
