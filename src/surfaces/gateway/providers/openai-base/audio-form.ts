// OpenAI's audio uploads (https://platform.openai.com/docs/api-reference/audio/createTranscription)
// are multipart/form-data (RFC 7578) with the model as a field, which the SDKs put after the file. The
// gateway holds the whole body (within gateway.bodyLimitBytes), lets busboy check it and read its
// fields, and forwards it with only the model part's value changed: the file and every other part
// reach the provider byte for byte, under the client's own Content-Type and boundary.
import { Busboy } from '@fastify/busboy';
import { AppError } from '../../../../core/errors/errors.ts';
import { audioLength, type AudioLength } from './audio-duration.ts';

export interface AudioForm {
  /** The client's Content-Type (its boundary is kept upstream). */
  contentType: string;
  /** Text fields by name; a repeated field (`timestamp_granularities[]`) keeps every value in order. */
  fields: Map<string, string[]>;
  /** The `file` part's size in bytes, or null without one. */
  fileBytes: number | null;
  /** How long the file plays, read from its headers (audio-duration.ts) on first ask; null when unknown. */
  audioLength(): AudioLength | null;
  /** The body as sent to a deployment serving `model` upstream. */
  withModel(model: string): Buffer;
}

const malformed = (why: string) => new AppError('validation_failed', `malformed multipart/form-data body: ${why}`, { details: { code: 'invalid_multipart' } });

/** RFC 2046 §5.1.1: 1 to 70 characters, quoted when it holds characters a token cannot. */
function boundaryOf(contentType: string): string {
  const m = /;\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^\s;"]{1,70}))\s*(?:;|$)/i.exec(contentType);
  if (!m) throw malformed('the Content-Type names no boundary');
  return m[1] ?? m[2]!;
}

/** Where each part's value lies in the body, with its header block (between the delimiters). */
interface PartSpan {
  headers: string;
  start: number;
  end: number;
}

/**
 * The parts' spans, found by their delimiters (RFC 2046 §5.1.1: CRLF "--" boundary; the first one
 * may open the body). Busboy has already accepted the body, so this only locates what it read.
 */
function spans(body: Buffer, boundary: string): { parts: PartSpan[]; close: number } {
  const delim = Buffer.from(`\r\n--${boundary}`);
  let at = body.subarray(0, delim.length - 2).equals(delim.subarray(2)) ? -2 : body.indexOf(delim);
  const parts: PartSpan[] = [];
  while (at !== -1) {
    const after = at + delim.length;
    if (body[after] === 0x2d && body[after + 1] === 0x2d) return { parts, close: at }; // "--": the close delimiter
    const lineEnd = body.indexOf('\r\n', after);
    const next = body.indexOf(delim, lineEnd);
    const headEnd = body.indexOf('\r\n\r\n', lineEnd);
    if (lineEnd === -1 || next === -1 || headEnd === -1 || headEnd + 4 > next) break;
    parts.push({ headers: body.toString('latin1', lineEnd + 2, headEnd), start: headEnd + 4, end: next });
    at = next;
  }
  throw malformed('its parts could not be located');
}

const named = (name: string) => new RegExp(`^content-disposition:[ \\t]*form-data[ \\t]*;(?:[^\\r\\n]*;)?[ \\t]*name[ \\t]*=[ \\t]*(?:"${name}"|${name})[ \\t]*(?:;|$)`, 'im');
const MODEL_PART = named('model');
const FILE_PART = named('file');

/** Reads and checks a multipart/form-data body; refuses what busboy cannot read. */
export function parseAudioForm(body: Buffer, contentType: string): Promise<AudioForm> {
  return new Promise((resolve, reject) => {
    const boundary = boundaryOf(contentType);
    const fields = new Map<string, string[]>();
    let fileBytes: number | null = null;
    let failed = false;
    const fail = (err: AppError) => {
      failed = true;
      reject(err);
    };
    let bb: InstanceType<typeof Busboy>;
    try {
      bb = new Busboy({ headers: { 'content-type': contentType }, limits: { fieldSize: 1024 * 1024, headerPairs: 100 } });
    } catch (err) {
      return reject(malformed((err as Error).message));
    }
    bb.on('field', (name: string, value: string, _nameTruncated: boolean, valueTruncated: boolean) => {
      if (valueTruncated) return fail(malformed(`field "${name}" is longer than 1 MiB`));
      const list = fields.get(name);
      if (list) list.push(value);
      else fields.set(name, [value]);
    });
    bb.on('file', (name: string, stream: NodeJS.ReadableStream) => {
      let n = 0;
      stream.on('data', (c: Buffer) => (n += c.length));
      // A part cut short is reported on its stream too (and busboy reports the body): without a
      // listener the process would die of an unhandled 'error'.
      stream.on('error', (err: Error) => fail(malformed(err.message)));
      stream.on('end', () => {
        if (name === 'file') fileBytes = (fileBytes ?? 0) + n;
      });
    });
    bb.on('error', (err: Error) => fail(malformed(err.message)));
    bb.on('finish', () => {
      if (failed) return;
      let located: ReturnType<typeof spans>;
      try {
        located = spans(body, boundary);
      } catch (err) {
        return fail(err as AppError);
      }
      const models = located.parts.filter((p) => MODEL_PART.test(p.headers));
      const given = fields.get('model') ?? [];
      // What the splice replaces must be what busboy read as the model, or the body is not what it seems.
      if (models.length !== given.length || models.some((p, i) => body.toString('utf8', p.start, p.end) !== given[i])) {
        return fail(malformed('its model field could not be located'));
      }
      // The file's bytes where they lie in the body (no copy), when one part holds what busboy read.
      const files = located.parts.filter((p) => FILE_PART.test(p.headers));
      const file = files.length === 1 && files[0]!.end - files[0]!.start === fileBytes ? body.subarray(files[0]!.start, files[0]!.end) : null;
      let length: AudioLength | null | undefined;
      resolve({
        contentType,
        fields,
        fileBytes,
        audioLength: () => (length === undefined ? (length = file && audioLength(file)) : length),
        withModel(model) {
          if (!models.length) {
            // No model part (an Azure deployment path names the model): one is added before the close.
            const part = `\r\n--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n${model}`;
            return Buffer.concat([body.subarray(0, located.close), Buffer.from(part), body.subarray(located.close)]);
          }
          const value = Buffer.from(model);
          const pieces: Buffer[] = [];
          let from = 0;
          for (const p of models) {
            pieces.push(body.subarray(from, p.start), value);
            from = p.end;
          }
          pieces.push(body.subarray(from));
          return Buffer.concat(pieces);
        },
      });
    });
    bb.end(body);
  });
}
