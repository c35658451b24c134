// OpenAI's audio endpoints (https://platform.openai.com/docs/api-reference/audio), for /v1 and Azure's
// paths: transcriptions and translations take multipart/form-data (file, model, response_format,
// language, prompt, temperature, timestamp_granularities[], stream) and answer JSON, text or SSE;
// speech takes JSON and answers audio bytes, or SSE with `stream_format: "sse"`. The model is a form
// field after the file, so the body is read whole (gateway.bodyLimitBytes) before routing.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../../../core/errors/errors.ts';
import { parseAudioForm, type AudioForm } from '../../providers/openai-base/audio-form.ts';
import type { Json } from '../../providers/types.ts';
import { bodyOf, modelOf, runCall, type IngressDeps } from '../call.ts';
import type { IngressFormat } from '../wire-format.ts';

type Upload = 'transcriptions' | 'translations';
type AudioRequest = FastifyRequest<{ Params: { deployment?: string } }>;

const MULTIPART = /^multipart\/form-data\s*(;|$)/i;

/** Lets the ingress read multipart bodies: checked by busboy, held whole, handed over as an AudioForm. */
export function acceptAudioForms(app: FastifyInstance): void {
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (req, body, done) => {
    parseAudioForm(body as Buffer, String(req.headers['content-type'])).then((form) => done(null, form), (err: Error) => done(err, undefined));
  });
}

/** Refuses another Content-Type before its body is read (fastify's own answer would ask for JSON). */
async function requireMultipart(req: FastifyRequest) {
  if (!MULTIPART.test(req.headers['content-type'] ?? '')) {
    throw new AppError('unsupported_media_type', 'send the audio as multipart/form-data, with a file field and a model field', { details: { code: 'invalid_content_type' } });
  }
}

function isAudioForm(v: unknown): v is AudioForm {
  return typeof v === 'object' && v !== null && (v as AudioForm).fields instanceof Map && typeof (v as AudioForm).withModel === 'function';
}

/** The form's text fields as the call's JSON body (for estimates and the stream flag); one value, or a list when repeated. */
function fieldsBody(form: AudioForm): Json {
  const body: Json = {};
  for (const [name, values] of form.fields) body[name] = values.length === 1 ? values[0] : values;
  const stream = body.stream;
  if (stream !== undefined) {
    if (stream !== 'true' && stream !== 'false') throw new AppError('validation_failed', 'stream must be true or false', { details: { param: 'stream' } });
    body.stream = stream === 'true';
  }
  return body;
}

/** Transcriptions and translations; on an Azure deployment path the deployment names the model. */
export function audioUpload(deps: IngressDeps, ingress: IngressFormat, op: Upload) {
  return (req: AudioRequest, reply: FastifyReply) => {
    return runCall(deps, req, reply, () => {
      const form = req.body;
      if (!isAudioForm(form)) throw new AppError('validation_failed', 'the multipart/form-data body is empty', { details: { code: 'invalid_multipart' } });
      const body = fieldsBody(form);
      const model = req.params.deployment ?? modelOf(body);
      if (form.fileBytes === null) throw new AppError('validation_failed', 'file is required (the audio, as a file part named "file")', { details: { param: 'file' } });
      return { ingress, op, model, body, stream: body.stream === true, form, passHeaders: { 'content-type': form.contentType } };
    });
  };
}

/** Speech: JSON in, audio bytes out, or SSE events (`speech.audio.delta`/`speech.audio.done`). */
export function audioSpeech(deps: IngressDeps, ingress: IngressFormat) {
  return (req: AudioRequest, reply: FastifyReply) => {
    return runCall(deps, req, reply, () => {
      const body = bodyOf(req);
      const model = req.params.deployment ?? modelOf(body);
      const format = body.stream_format;
      if (format !== undefined && format !== 'sse' && format !== 'audio') {
        throw new AppError('validation_failed', 'stream_format must be "sse" or "audio"', { details: { param: 'stream_format' } });
      }
      return { ingress, op: 'speech', model, body, stream: format === 'sse' };
    });
  };
}

/** The three endpoints under `prefix` (/v1, /openai/v1, or /openai/deployments/:deployment). */
export function audioRoutes(app: FastifyInstance, deps: IngressDeps, ingress: IngressFormat, prefix: string) {
  app.post<{ Params: { deployment?: string } }>(`${prefix}/audio/transcriptions`, { onRequest: requireMultipart }, audioUpload(deps, ingress, 'transcriptions'));
  app.post<{ Params: { deployment?: string } }>(`${prefix}/audio/translations`, { onRequest: requireMultipart }, audioUpload(deps, ingress, 'translations'));
  app.post<{ Params: { deployment?: string } }>(`${prefix}/audio/speech`, audioSpeech(deps, ingress));
}
