// Gemini thought signatures (https://ai.google.dev/gemini-api/docs/thought-signatures) across the
// other wire formats. Gemini 2.5 and 3 put an opaque `thoughtSignature` (base64 bytes) on the parts of
// an answer; Gemini 3 refuses with 400 a conversation that replays a function call of the current turn
// without the signature it came with. OpenAI's and Anthropic's shapes have no field for it, but every
// SDK echoes a tool call's id back (in the assistant turn and in the tool result), so the signature
// rides in the id, after a separator, as LiteLLM does: `<id>__thought__<signature>`. The signature goes
// out as base64url without padding, so the id fits Anthropic's `^[a-zA-Z0-9_-]+$`; both base64
// alphabets are read back (LiteLLM's ids carry standard base64).
import { isObject, type Json } from '../types.ts';

export const SIGNATURE_SEPARATOR = '__thought__';

/**
 * Google's documented stand-in for a function call whose signature the gateway does not have (the
 * history came from another model, or the client rewrote the id): the Gemini API's FAQ names this and
 * `context_engineering_is_the_way_to_go`; Vertex AI documents only this one, so it serves both.
 */
export const SKIP_SIGNATURE = 'skip_thought_signature_validator';

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** A tool call id carrying `signature` (as Gemini sent it, standard base64); the id alone without one. */
export function withSignature(id: string, signature: unknown): string {
  if (typeof signature !== 'string' || !signature || !BASE64.test(signature)) return id;
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
  const carried = id.slice(at + SIGNATURE_SEPARATOR.length);
  const bytes = BASE64.test(carried) ? Buffer.from(carried, 'base64') : null;
  return { id: id.slice(0, at), signature: bytes?.length ? bytes.toString('base64') : null };
}

/** A tool call id without any signature, for providers that are not Gemini (OpenAI caps ids at 40 characters). */
export const unsigned = (id: string): string => {
  const at = id.indexOf(SIGNATURE_SEPARATOR);
  return at < 0 ? id : id.slice(0, at);
};

/**
 * The same pivot (OpenAI chat) request with the signatures taken out of its tool call ids, for a
 * provider other than Gemini; the same object when there are none.
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
    if (m.role !== 'assistant' || !Array.isArray(m.tool_calls)) return m;
    if (!m.tool_calls.some((tc) => isObject(tc) && typeof tc.id === 'string' && tc.id.includes(SIGNATURE_SEPARATOR))) return m;
    changed = true;
    return { ...m, tool_calls: m.tool_calls.map((tc) => (isObject(tc) && typeof tc.id === 'string' ? { ...tc, id: unsigned(tc.id) } : tc)) };
  });
  return changed ? { ...body, messages: next } : body;
}
