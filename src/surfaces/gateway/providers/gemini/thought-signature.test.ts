// Thought signatures in tool call ids: the encoding, the way back onto Gemini's functionCall parts
// (with Google's stand-in where there is none), and the bare ids other providers get.
import { describe, expect, it } from 'vitest';
import type { Json } from '../types.ts';
import { geminiResponseToOpenAi, geminiStreamToOpenAi, openAiRequestToGemini } from './gemini-chat.ts';
import { SKIP_SIGNATURE, splitSignature, withoutSignatures, withSignature } from './thought-signature.ts';

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
    expect(calls[1]!.id).toBe('gem-2');
    const chunks = geminiStreamToOpenAi('m').push(JSON.stringify(answer(parts)), null);
    const streamed = ((chunks[0]!.choices as Json[])[0]!.delta as Json).tool_calls as Json[];
    expect(splitSignature(streamed[0]!.id as string).signature).toBe(SIG);
    expect(streamed[1]!.id).toBe('gem-2');
  });

  it('keeps a text part\'s signature out of the text', () => {
    const message = (geminiResponseToOpenAi(answer([{ text: 'Hi.', thoughtSignature: SIG }]), 'm').choices as Json[])[0]!.message as Json;
    expect(message.content).toBe('Hi.');
    expect(JSON.stringify(message)).not.toContain(SIG);
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
