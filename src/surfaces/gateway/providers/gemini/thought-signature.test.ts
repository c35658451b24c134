// Thought signatures in tool call ids: the encoding, the way back onto Gemini's functionCall parts
// (with Google's stand-in where there is none), and the bare ids other providers get.
import { describe, expect, it } from 'vitest';
import type { Json } from '../types.ts';
import { geminiResponseToOpenAi, geminiStreamToOpenAi, openAiRequestToGemini } from './gemini-chat.ts';
import { AppError } from '../../../../core/errors/errors.ts';
import { MAX_SIGNATURE_CHARS, SKIP_SIGNATURE, splitSignature, withoutSignatures, withSignature } from './thought-signature.ts';

// Standard base64 with + / and padding, as Gemini's JSON writes bytes.
const SIG = Buffer.concat([Buffer.from([0xfb, 0xef, 0xff]), Buffer.from('opaque thought state, 31 bytes!')]).toString('base64');

describe('the carrier', () => {
  it('puts the signature in the id as base64url, which Anthropic\'s id pattern takes, and reads it back exactly', () => {
    expect(SIG).toMatch(/^\+\+\/\/.*=$/);
    const id = withSignature('call_abc', SIG);
    expect(id).toMatch(/^call_abc__thought__[A-Za-z0-9_-]+$/);
    expect(splitSignature(id)).toEqual({ id: 'call_abc', signature: SIG });
  });

  it('reads LiteLLM\'s carrier (standard base64 after the same separator)', () => {
    expect(splitSignature(`call_1__thought__${SIG}`)).toEqual({ id: 'call_1', signature: SIG });
  });

  it('leaves ids without a signature as they are', () => {
    expect(withSignature('call_abc', undefined)).toBe('call_abc');
    expect(withSignature('call_abc', '')).toBe('call_abc');
    expect(withSignature('call_abc', 42)).toBe('call_abc');
    expect(withSignature('call_abc', 'not base64!')).toBe('call_abc');
    expect(splitSignature('call_abc')).toEqual({ id: 'call_abc', signature: null });
  });

  it.each(['call_x__thought__', 'call_x__thought__!!%%', 'call_x__thought__ü€', 'call_x__thought__a=b', 'call_x__thought__===='])('counts a garbled carrier (%s) as no signature', (id) => {
    expect(splitSignature(id)).toEqual({ id: 'call_x', signature: null });
  });

  it('takes the signatures out of a pivot request for other providers, the same object when there are none', () => {
    const signed = withSignature('call_1', SIG);
    const body = { messages: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: null, tool_calls: [{ id: signed, type: 'function', function: { name: 'f', arguments: '{}' } }, { id: 'call_2', type: 'function', function: { name: 'f', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: signed, content: 'r1' },
      { role: 'tool', tool_call_id: 'call_2', content: 'r2' },
    ] };
    const out = withoutSignatures(body);
    expect(JSON.stringify(out)).not.toContain('__thought__');
    expect((out.messages as Json[])[1]!.tool_calls).toEqual([expect.objectContaining({ id: 'call_1' }), expect.objectContaining({ id: 'call_2' })]);
    expect((out.messages as Json[])[2]!.tool_call_id).toBe('call_1');
    expect(JSON.stringify(body)).toContain('__thought__'); // the client's body is not changed
    // Google's extra_content (OpenAI refuses unknown message fields) goes too, on messages and calls.
    const extra = { google: { thought_signature: SIG } };
    const google = withoutSignatures({ messages: [{ role: 'assistant', content: 'a', extra_content: extra, tool_calls: [{ id: 'call_3', type: 'function', function: { name: 'f', arguments: '{}' }, extra_content: extra }] }] });
    expect(google).toEqual({ messages: [{ role: 'assistant', content: 'a', tool_calls: [{ id: 'call_3', type: 'function', function: { name: 'f', arguments: '{}' } }] }] });
    const plain = { messages: [{ role: 'user', content: 'hi' }, { role: 'tool', tool_call_id: 'call_2', content: 'r' }] };
    expect(withoutSignatures(plain)).toBe(plain);
    expect(withoutSignatures({ prompt: 'x' })).toEqual({ prompt: 'x' });
  });
});

describe('Gemini answers to OpenAI chat', () => {
  const answer = (parts: Json[]): Json => ({ candidates: [{ content: { role: 'model', parts }, finishReason: 'STOP', index: 0 }] });

  it('carries each functionCall part\'s signature in its call id, whole and streamed', () => {
    const parts = [
      { functionCall: { name: 'a', args: {} }, thoughtSignature: SIG },
      { functionCall: { id: 'gem-2', name: 'b', args: {} } }, // a parallel call: unsigned
    ];
    const calls = ((geminiResponseToOpenAi(answer(parts), 'm').choices as Json[])[0]!.message as Json).tool_calls as Json[];
    expect(splitSignature(calls[0]!.id as string)).toEqual({ id: expect.stringMatching(/^call_/), signature: SIG });
    expect(calls[0]!.extra_content).toEqual({ google: { thought_signature: SIG } }); // as Google's OpenAI-compatible endpoint gives it
    expect(calls[1]!.id).toBe('gem-2');
    expect(calls[1]).not.toHaveProperty('extra_content');
    const chunks = geminiStreamToOpenAi('m').push(JSON.stringify(answer(parts)), null);
    const streamed = ((chunks[0]!.choices as Json[])[0]!.delta as Json).tool_calls as Json[];
    expect(splitSignature(streamed[0]!.id as string).signature).toBe(SIG);
    expect(streamed[1]!.id).toBe('gem-2');
  });

  it('carries a text part\'s signature in extra_content, whole and streamed (on the delta that has it)', () => {
    const message = (geminiResponseToOpenAi(answer([{ text: 'Hi.', thoughtSignature: SIG }]), 'm').choices as Json[])[0]!.message as Json;
    expect(message.content).toBe('Hi.');
    expect(message.extra_content).toEqual({ google: { thought_signature: SIG } });
    const d = geminiStreamToOpenAi('m');
    const first = d.push(JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: 'Hi' }] }, index: 0 }] }), null);
    const last = d.push(JSON.stringify(answer([{ text: '', thoughtSignature: SIG }])), null); // Gemini's last frame: only the signature
    expect(((first[0]!.choices as Json[])[0]!.delta as Json)).not.toHaveProperty('extra_content');
    expect(((last[0]!.choices as Json[])[0]!.delta as Json).extra_content).toEqual({ google: { thought_signature: SIG } });
    // A signature that is not base64 is not carried.
    const odd = (geminiResponseToOpenAi(answer([{ text: 'Hi.', thoughtSignature: 'not base64!' }]), 'm').choices as Json[])[0]!.message as Json;
    expect(odd).not.toHaveProperty('extra_content');
  });
});

describe('OpenAI chat requests to Gemini', () => {
  const call = (id: string, name = 'get') => ({ id, type: 'function', function: { name, arguments: '{"q":1}' } });

  it('puts each signature back on its functionCall part, and the stand-in on the first unsigned call of each model step', () => {
    const s1 = withSignature('call_1', SIG);
    const other = Buffer.from('second step').toString('base64');
    const s2 = withSignature('call_2', other);
    const out = openAiRequestToGemini({ messages: [
      { role: 'user', content: 'go' },
      { role: 'assistant', content: 'calling', tool_calls: [call(s1, 'first'), call('call_1b', 'parallel')] },
      { role: 'tool', tool_call_id: s1, content: 'r1' },
      { role: 'tool', tool_call_id: 'call_1b', content: 'r1b' },
      { role: 'assistant', content: null, tool_calls: [call(s2, 'second')] },
      { role: 'tool', tool_call_id: s2, content: 'r2' },
      { role: 'assistant', content: null, tool_calls: [call('toolu_from_claude', 'third'), call('call_3b', 'third-b')] },
      { role: 'tool', tool_call_id: 'toolu_from_claude', content: 'r3' },
    ] });
    const contents = out.contents as Json[];
    expect(contents.map((c) => c.role)).toEqual(['user', 'model', 'user', 'model', 'user', 'model', 'user']);
    expect(contents[1]!.parts).toEqual([
      { text: 'calling' },
      { functionCall: { name: 'first', args: { q: 1 } }, thoughtSignature: SIG },
      { functionCall: { name: 'parallel', args: { q: 1 } } },
    ]);
    expect((contents[2]!.parts as Json[]).map((p) => (p.functionResponse as Json).name)).toEqual(['first', 'parallel']);
    expect(contents[3]!.parts).toEqual([{ functionCall: { name: 'second', args: { q: 1 } }, thoughtSignature: other }]);
    expect(contents[5]!.parts).toEqual([
      { functionCall: { name: 'third', args: { q: 1 } }, thoughtSignature: SKIP_SIGNATURE },
      { functionCall: { name: 'third-b', args: { q: 1 } } },
    ]);
    expect(JSON.stringify(out)).not.toContain('__thought__');
  });

  it('puts a text signature from extra_content back on the text part, and a tool call\'s over its id', () => {
    const other = Buffer.from('from extra_content').toString('base64');
    const out = openAiRequestToGemini({ messages: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Hello.', extra_content: { google: { thought_signature: SIG } } },
      { role: 'user', content: 'go' },
      // A client written for Google's endpoint keeps extra_content, and may send its own ids.
      { role: 'assistant', content: null, tool_calls: [{ ...call(withSignature('call_1', SIG), 'f'), extra_content: { google: { thought_signature: other } } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'r' },
      { role: 'assistant', content: '', extra_content: { google: { thought_signature: other } } },
    ] });
    const contents = out.contents as Json[];
    expect(contents[1]!.parts).toEqual([{ text: 'Hello.', thoughtSignature: SIG }]);
    expect(contents[3]!.parts).toEqual([{ functionCall: { name: 'f', args: { q: 1 } }, thoughtSignature: other }]);
    expect(contents[5]!.parts).toEqual([{ text: '', thoughtSignature: other }]);
    // A carrier that is not base64 counts as none; other keys of extra_content are not Gemini's.
    const odd = openAiRequestToGemini({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'a', extra_content: { google: { thought_signature: 'no!' }, other: 1 } }] });
    expect((odd.contents as Json[])[1]!.parts).toEqual([{ text: 'a' }]);
  });

  it.each([
    [{ extra_content: 'sig' }, 'messages.1.extra_content must be an object'],
    [{ extra_content: { google: [] } }, 'messages.1.extra_content.google must be an object'],
    [{ extra_content: { google: { thought_signature: 42 } } }, 'thought_signature must be a string'],
    [{ extra_content: { google: { thought_signature: { a: 1 } } } }, 'thought_signature must be a string'],
    [{ extra_content: { google: { thought_signature: 'A'.repeat(MAX_SIGNATURE_CHARS + 4) } } }, 'is longer than'],
  ])('refuses a malformed carrier %#', (extra, message) => {
    try {
      openAiRequestToGemini({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'a', ...extra }] });
      throw new Error('not refused');
    } catch (e) {
      expect(e).toBeInstanceOf(AppError);
      expect((e as AppError).status).toBe(400);
      expect((e as AppError).message).toContain(message);
    }
  });

  it('finds a tool result\'s call by its bare id too (a client that kept only that)', () => {
    const s1 = withSignature('call_1', SIG);
    const out = openAiRequestToGemini({ messages: [
      { role: 'user', content: 'go' },
      { role: 'assistant', content: null, tool_calls: [call(s1, 'lookup')] },
      { role: 'tool', tool_call_id: 'call_1', content: 'r1' },
    ] });
    expect(((out.contents as Json[])[2]!.parts as Json[])[0]).toEqual({ functionResponse: { name: 'lookup', response: { content: 'r1' } } });
  });
});
