// A local HTTP server that speaks OpenAI's audio endpoints (and Azure's paths for them), for the
// gateway's audio tests. Uploads are read as multipart/form-data with undici's own parser (not the
// gateway's), refused as OpenAI would when the file or model is missing, and recorded with their raw
// bytes. Behaviour by the upstream model name the gateway sends:
//   gpt-4o-*   token usage ({type:"tokens"} for transcripts, in speech.audio.done for speech SSE)
//   other      none for speech; {type:"duration"} for transcripts (whisper-1), its seconds the
//              file's bytes / 32000 rounded up (16 kHz 16-bit mono WAV, roughly)
//   nousage    transcripts without `usage` (verbose_json keeps its `duration`, 1.5)
//   out-<n>    report n output tokens            gate   hold the answer (speech: after its first
//                                                       half) until release() is called
//   cut        speech: break the connection after the first half
//   fail-<s>   answer status s with an OpenAI error
// A transcript says how many bytes of which file it heard, so tests see what arrived.
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AudioRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  /** Multipart uploads: text fields by name (every value, in order) and the file. */
  fields: Map<string, string[]>;
  file: { name: string; type: string; bytes: Buffer } | null;
  /** Speech: the JSON body. */
  json: Record<string, unknown> | null;
}

export interface AudioUpstream {
  url: string;
  requests: AudioRequest[];
  /** Answers held by `gate` models. */
  held(): number;
  release(): void;
  close(): Promise<void>;
}

export const SPEECH_TYPES: Record<string, string> = { mp3: 'audio/mpeg', opus: 'audio/opus', aac: 'audio/aac', flac: 'audio/flac', wav: 'audio/wav', pcm: 'audio/pcm' };

/** The audio the mock "speaks" for an input: 96 KiB derived from it, so tests can compare bytes. */
export function speechBytes(input: string, format = 'mp3'): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 32 < 96 * 1024; i++) out.push(createHash('sha256').update(`${format}:${input}:${i}`).digest());
  return Buffer.concat(out);
}

export function transcriptOf(file: { name: string; bytes: Buffer }, language = 'en'): string {
  return `heard ${file.bytes.length} bytes of ${file.name} in ${language}`;
}

const opt = (model: string, name: string) => {
  const m = new RegExp(`(?:^|[^a-z])${name}-(\\d+)`).exec(model);
  return m ? Number(m[1]) : null;
};

export async function startAudioUpstream(): Promise<AudioUpstream> {
  const requests: AudioRequest[] = [];
  let gate: Array<() => void> = [];
  const held = () => new Promise<void>((r) => gate.push(r));

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://x');
    const rec: AudioRequest = { method: req.method ?? '', path: url.pathname + url.search, headers: req.headers, raw, fields: new Map(), file: null, json: null };
    requests.push(rec);
    const error = (status: number, message: string, param: string | null = null) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message, type: 'invalid_request_error', param, code: null } }));
    const azure = /\/openai\/deployments\/([^/]+)\//.exec(url.pathname);

    if (/\/audio\/(transcriptions|translations)$/.test(url.pathname)) {
      let form: FormData;
      try {
        form = await new Request('http://x/', { method: 'POST', headers: { 'content-type': String(req.headers['content-type']) }, body: raw }).formData();
      } catch {
        return error(400, 'could not parse multipart form');
      }
      const entries: [string, FormDataEntryValue][] = [];
      form.forEach((value, name) => entries.push([name, value]));
      for (const [name, value] of entries) {
        if (typeof value === 'string') rec.fields.set(name, [...(rec.fields.get(name) ?? []), value]);
        else if (name === 'file') rec.file = { name: value.name, type: value.type, bytes: Buffer.from(await value.arrayBuffer()) };
      }
      const model = azure ? decodeURIComponent(azure[1]!) : rec.fields.get('model')?.[0];
      if (!rec.file) return error(400, "you must provide a 'file'", 'file');
      if (!model) return error(400, "you must provide a model parameter", 'model');
      const status = opt(model, 'fail');
      if (status) return error(status, `mock ${status}`);
      if (model.includes('gate')) await held();
      const one = (n: string) => rec.fields.get(n)?.at(-1);
      const translate = url.pathname.endsWith('/translations');
      const text = transcriptOf(rec.file, translate ? 'en' : one('language') ?? 'en');
      const tokens = model.includes('gpt-4o');
      const input = Math.ceil(rec.file.bytes.length / 1000) + Math.ceil((one('prompt') ?? '').length / 4);
      const output = opt(model, 'out') ?? text.split(' ').length;
      const usage = model.includes('nousage')
        ? undefined
        : tokens
          ? { type: 'tokens', input_tokens: input, input_token_details: { text_tokens: 0, audio_tokens: input }, output_tokens: output, total_tokens: input + output }
          : { type: 'duration', seconds: Math.ceil(rec.file.bytes.length / 32000) };
      if (one('stream') === 'true') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const w of text.split(' ')) res.write(`data: ${JSON.stringify({ type: 'transcript.text.delta', delta: `${w} `, logprobs: [] })}\n\n`);
        return res.end(`data: ${JSON.stringify({ type: 'transcript.text.done', text, usage })}\n\n`);
      }
      switch (one('response_format') ?? 'json') {
        case 'text':
          return res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(`${text}\n`);
        case 'srt':
          return res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(`1\n00:00:00,000 --> 00:00:01,000\n${text}\n\n`);
        case 'vtt':
          return res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(`WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n${text}\n\n`);
        case 'verbose_json': {
          const granularities = rec.fields.get('timestamp_granularities[]') ?? ['segment'];
          const words = granularities.includes('word') ? { words: text.split(' ').map((word, i) => ({ word, start: i, end: i + 1 })) } : {};
          return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ task: translate ? 'translate' : 'transcribe', language: 'english', duration: 1.5, text, segments: [{ id: 0, start: 0, end: 1.5, text }], ...words, usage }));
        }
        default:
          return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ text, usage }));
      }
    }

    if (url.pathname.endsWith('/audio/speech')) {
      try {
        rec.json = JSON.parse(raw.toString('utf8'));
      } catch {
        return error(400, 'bad json');
      }
      const b = rec.json!;
      const model = azure ? decodeURIComponent(azure[1]!) : String(b.model ?? '');
      if (!model || typeof b.input !== 'string' || !b.voice) return error(400, 'model, input and voice are required');
      const status = opt(model, 'fail');
      if (status) return error(status, `mock ${status}`);
      const format = String(b.response_format ?? 'mp3');
      const audio = speechBytes(b.input, format);
      if (b.stream_format === 'sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (let i = 0; i < audio.length; i += 32 * 1024) res.write(`data: ${JSON.stringify({ type: 'speech.audio.delta', audio: audio.subarray(i, i + 32 * 1024).toString('base64') })}\n\n`);
        const input = Math.ceil(b.input.length / 4);
        const output = opt(model, 'out') ?? 100;
        const usage = model.includes('gpt-4o') ? { usage: { input_tokens: input, output_tokens: output, total_tokens: input + output } } : {};
        return res.end(`data: ${JSON.stringify({ type: 'speech.audio.done', ...usage })}\n\n`);
      }
      res.writeHead(200, { 'content-type': SPEECH_TYPES[format] ?? 'application/octet-stream', 'transfer-encoding': 'chunked' });
      const half = audio.length >> 1;
      res.write(audio.subarray(0, half));
      if (model.includes('gate')) await held();
      if (model.includes('cut')) return void res.write('', () => setTimeout(() => res.destroy(), 20));
      return res.end(audio.subarray(half));
    }
    error(404, `no route ${url.pathname}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    held: () => gate.length,
    release() {
      const g = gate;
      gate = [];
      for (const r of g) r();
    },
    close: () => new Promise<void>((r) => {
      for (const g of gate) g();
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** A multipart body as fetch encodes a FormData (the openai SDK's transport): its bytes and Content-Type. */
export async function encodeForm(form: FormData): Promise<{ body: Buffer; type: string }> {
  const req = new Request('http://x/', { method: 'POST', body: form });
  return { body: Buffer.from(await req.arrayBuffer()), type: req.headers.get('content-type')! };
}
