import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mp3File, wavFile } from '../../../../../test/helpers/audio-files.ts';
import { parseAudioForm } from './audio-form.ts';

/** A body as fetch (the openai SDK's transport) encodes a FormData: its bytes and Content-Type. */
async function encode(form: FormData): Promise<{ body: Buffer; type: string }> {
  const req = new Request('http://x/', { method: 'POST', body: form });
  return { body: Buffer.from(await req.arrayBuffer()), type: req.headers.get('content-type')! };
}

function audioForm(file: Buffer, fields: [string, string][]): FormData {
  const f = new FormData();
  f.append('file', new Blob([new Uint8Array(file)], { type: 'audio/wav' }), 'a.wav');
  for (const [k, v] of fields) f.append(k, v);
  return f;
}

const code = (p: Promise<unknown>) => p.then(() => 'parsed', (e: { details?: { code?: string } }) => e.details?.code);

describe('audio forms', () => {
  it('reads the fields and the file, and replaces only the model part\'s value', async () => {
    const file = randomBytes(300_000);
    const { body, type } = await encode(audioForm(file, [['model', 'whisper'], ['language', 'de'], ['timestamp_granularities[]', 'word'], ['timestamp_granularities[]', 'segment']]));
    const form = await parseAudioForm(body, type);
    expect(form.fileBytes).toBe(file.length);
    expect(Object.fromEntries(form.fields)).toEqual({ model: ['whisper'], language: ['de'], 'timestamp_granularities[]': ['word', 'segment'] });
    const out = form.withModel('whisper-1-upstream');
    // Every byte but the model's value is the client's.
    const at = body.indexOf('name="model"\r\n\r\nwhisper\r\n') + 'name="model"\r\n\r\n'.length;
    expect(out.subarray(0, at).equals(body.subarray(0, at))).toBe(true);
    expect(out.subarray(at, at + 18).toString()).toBe('whisper-1-upstream');
    expect(out.subarray(at + 18).equals(body.subarray(at + 7))).toBe(true);
    const again = await parseAudioForm(out, type);
    expect(again.fields.get('model')).toEqual(['whisper-1-upstream']);
    expect(again.fileBytes).toBe(file.length);
  });

  it('adds a model part when the form has none (Azure deployment paths)', async () => {
    const { body, type } = await encode(audioForm(Buffer.from('RIFF'), [['language', 'en']]));
    const form = await parseAudioForm(body, type);
    expect(form.fields.has('model')).toBe(false);
    const again = await parseAudioForm(form.withModel('whisper-deploy'), type);
    expect(Object.fromEntries(again.fields)).toEqual({ language: ['en'], model: ['whisper-deploy'] });
    expect(again.fileBytes).toBe(4);
  });

  it('keeps a preamble and reads a hand-written body with a quoted boundary', async () => {
    const body = Buffer.from('preamble\r\n--b 1\r\nContent-Disposition: form-data; name="file"; filename="x.mp3"\r\n\r\nID3\r\n--b 1\r\ncontent-disposition: form-data; name=model\r\n\r\ngpt-4o-transcribe\r\n--b 1--\r\nepilogue');
    const form = await parseAudioForm(body, 'multipart/form-data; boundary="b 1"');
    expect(form.fileBytes).toBe(3);
    expect(form.withModel('t').toString()).toBe(body.toString().replace('gpt-4o-transcribe', 't'));
  });

  it('reads the length of the file part where it lies in the body, and only of one file part', async () => {
    const wav = await encode(audioForm(wavFile(3.5), [['model', 'whisper-1']]));
    expect((await parseAudioForm(wav.body, wav.type)).audioLength()).toEqual({ format: 'wav', seconds: 3.5 });
    const f = new FormData();
    f.append('model', 'whisper-1');
    f.append('file', new Blob([new Uint8Array(mp3File(125))]), 'a.mp3');
    const mp3 = await encode(f);
    expect((await parseAudioForm(mp3.body, mp3.type)).audioLength()).toEqual({ format: 'mp3', seconds: 3 });
    // Two file parts, a file that is not audio, no file: unknown.
    f.append('file', new Blob([new Uint8Array(wavFile(1))]), 'b.wav');
    const two = await encode(f);
    expect((await parseAudioForm(two.body, two.type)).audioLength()).toBeNull();
    const text = await encode(audioForm(Buffer.from('not audio at all'), [['model', 'whisper-1']]));
    expect((await parseAudioForm(text.body, text.type)).audioLength()).toBeNull();
    const none = new FormData();
    none.append('model', 'whisper-1');
    const empty = await encode(none);
    expect((await parseAudioForm(empty.body, empty.type)).audioLength()).toBeNull();
  });

  it('refuses bodies busboy cannot read', async () => {
    const { body, type } = await encode(audioForm(randomBytes(5000), [['model', 'whisper']]));
    expect(await code(parseAudioForm(body.subarray(0, 3000), type))).toBe('invalid_multipart'); // truncated
    expect(await code(parseAudioForm(body.subarray(0, body.length - 10), type))).toBe('invalid_multipart'); // no close delimiter
    expect(await code(parseAudioForm(body, 'multipart/form-data'))).toBe('invalid_multipart'); // no boundary
    expect(await code(parseAudioForm(body, 'multipart/form-data; boundary=somethingelse'))).toBe('invalid_multipart'); // not the body's
    expect(await code(parseAudioForm(Buffer.from('hello'), 'multipart/form-data; boundary=x'))).toBe('invalid_multipart');
    expect(await code(parseAudioForm(Buffer.alloc(0), 'multipart/form-data; boundary=x'))).toBe('invalid_multipart');
  });
});
