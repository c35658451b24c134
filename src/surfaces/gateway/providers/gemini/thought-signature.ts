// Gemini thought signatures (https://ai.google.dev/gemini-api/docs/thought-signatures) across the
// other wire formats. Gemini 2.5 and 3 put an opaque `thoughtSignature` (base64 bytes) on the parts of
// an answer; Gemini 3 refuses with 400 a conversation that replays a function call of the current turn
// without the signature it came with. OpenAI's and Anthropic's shapes have no field for it, but every
// SDK echoes a tool call's id back (in the assistant turn and in the tool result), so the signature
// rides in the id, after a separator, as LiteLLM does: `<id>__thought__<signature>`. The signature goes
// out as base64url without padding, so the id fits Anthropic's `^[a-zA-Z0-9_-]+$`; both base64
// alphabets are read back (LiteLLM's ids carry standard base64).
//
// Signatures on other parts (Gemini 3 signs the last part of an answer without function calls, often
// a text part) are not required back, but Google asks for them to keep the model's reasoning
// context. They ride where each format has room: Google's own OpenAI-compatible endpoint puts them
// in `extra_content: {google: {thought_signature}}` on the message (and on tool calls), which the
// gateway writes and reads the same way; Anthropic clients that turned thinking on get them in a
// `redacted_thinking` block (Anthropic's opaque reasoning, which its clients send back), and
// Responses clients that asked for `reasoning.encrypted_content` in a reasoning item's
// `encrypted_content`, both marked `gemini:` so that they are never taken for the provider's own.
import { AppError } from '../../../../core/errors/errors.ts';
import { isObject, type Json } from '../types.ts';

export const SIGNATURE_SEPARATOR = '__thought__';

/**
 * Google's documented stand-in for a function call whose signature the gateway does not have (the
 * history came from another model, or the client rewrote the id): the Gemini API's FAQ names this and
 * `context_engineering_is_the_way_to_go`; Vertex AI documents only this one, so it serves both.
 */
export const SKIP_SIGNATURE = 'skip_thought_signature_validator';

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** Longest signature taken back (characters). Gemini's run to a few thousand; this is far past any. */
export const MAX_SIGNATURE_CHARS = 1 << 20;

/** Marks a Gemini signature in another format's opaque reasoning field (`:` is in no base64 alphabet). */
export const GEMINI_MARK = 'gemini:';

/** `extra_content` carrying a signature, as Google's OpenAI-compatible endpoint writes it. */
export const extraContent = (signature: string): Json => ({ google: { thought_signature: signature } });

const invalidSignature = (message: string, param: string) => new AppError('validation_failed', message, { details: { param } });

/** A signature as Gemini wants it back (standard base64), or null when it is not well-formed base64. */
function asSignature(s: string): string | null {
  const bytes = BASE64.test(s) ? Buffer.from(s, 'base64') : null;
  return bytes?.length ? bytes.toString('base64') : null;
}

/**
 * The signature in an OpenAI message's or tool call's `extra_content.google.thought_signature`, or
 * null. A carrier of the wrong JSON type, or longer than any signature, is the client's mistake (400);
 * a string that is not base64 counts as none, as in ids.
 */
export function signatureOfExtra(holder: Json, param: string): string | null {
  const extra = holder.extra_content;
  if (extra === undefined || extra === null) return null;
  if (!isObject(extra)) throw invalidSignature(`${param}.extra_content must be an object`, param);
  const google = extra.google;
  if (google === undefined || google === null) return null;
  if (!isObject(google)) throw invalidSignature(`${param}.extra_content.google must be an object`, param);
  const sig = google.thought_signature;
  if (sig === undefined || sig === null) return null;
  if (typeof sig !== 'string') throw invalidSignature(`${param}.extra_content.google.thought_signature must be a string`, param);
  if (sig.length > MAX_SIGNATURE_CHARS) throw invalidSignature(`${param}.extra_content.google.thought_signature is longer than ${MAX_SIGNATURE_CHARS} characters`, param);
  return asSignature(sig);
}

/** The Gemini signature an opaque field carries (`gemini:<base64>`), or null. */
export function signatureOfMarked(value: unknown): string | null {
  if (typeof value !== 'string' || !value.startsWith(GEMINI_MARK) || value.length > MAX_SIGNATURE_CHARS) return null;
  return asSignature(value.slice(GEMINI_MARK.length));
}

/** The text signature on a pivot answer's message or delta (extra_content, as the Gemini translation writes it), or null. */
export function answerSignature(m: Json): string | null {
  const sig = isObject(m.extra_content) && isObject(m.extra_content.google) ? m.extra_content.google.thought_signature : null;
  return isSignature(sig) ? sig : null;
}

/** Whether a part's `thoughtSignature` is one to carry: a non-empty base64 string. */
export const isSignature = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && BASE64.test(v);

/** A tool call id carrying `signature` (as Gemini sent it, standard base64); the id alone without one. */
export function withSignature(id: string, signature: unknown): string {
  if (!isSignature(signature)) return id;
  return `${id}${SIGNATURE_SEPARATOR}${Buffer.from(signature, 'base64').toString('base64url')}`;
}

/**
 * A tool call id as the client sent it back: the id the model gave, and the signature it carried in
 * standard base64 as Gemini wants it back, or null. A carrier that is not base64 is not one of ours
 * and counts as no signature (the part then gets the stand-in); a well-formed but forged one is sent
 * on, for Gemini to judge.
 */
export function splitSignature(id: string): { id: string; signature: string | null } {
  const at = id.indexOf(SIGNATURE_SEPARATOR);
  if (at < 0) return { id, signature: null };
  return { id: id.slice(0, at), signature: asSignature(id.slice(at + SIGNATURE_SEPARATOR.length)) };
}

/** A tool call id without any signature, for providers that are not Gemini (OpenAI caps ids at 40 characters). */
export const unsigned = (id: string): string => {
  const at = id.indexOf(SIGNATURE_SEPARATOR);
  return at < 0 ? id : id.slice(0, at);
};

const signedId = (tc: unknown) => isObject(tc) && ((typeof tc.id === 'string' && tc.id.includes(SIGNATURE_SEPARATOR)) || tc.extra_content !== undefined);

/** A tool call without its signatures (in the id and in `extra_content`). */
function unsignedCall(tc: unknown): unknown {
  if (!isObject(tc)) return tc;
  const { extra_content: _e, ...rest } = tc;
  return typeof rest.id === 'string' ? { ...rest, id: unsigned(rest.id) } : rest;
}

/**
 * The same pivot (OpenAI chat) request with the signatures taken out of its tool call ids and its
 * `extra_content` (Google's field, which OpenAI refuses) left out, for a provider other than Gemini;
 * the same object when there are none.
 */
export function withoutSignatures(body: Json): Json {
  const messages = body.messages;
  if (!Array.isArray(messages)) return body;
  let changed = false;
  const next = messages.map((m) => {
    if (!isObject(m)) return m;
    if (m.role === 'tool' && typeof m.tool_call_id === 'string' && m.tool_call_id.includes(SIGNATURE_SEPARATOR)) {
      changed = true;
      return { ...m, tool_call_id: unsigned(m.tool_call_id) };
    }
    if (m.role !== 'assistant') return m;
    const calls = Array.isArray(m.tool_calls) && m.tool_calls.some(signedId);
    if (!calls && m.extra_content === undefined) return m;
    changed = true;
    const { extra_content: _e, ...rest } = m;
    return calls ? { ...rest, tool_calls: (m.tool_calls as unknown[]).map(unsignedCall) } : rest;
  });
  return changed ? { ...body, messages: next } : body;
}
