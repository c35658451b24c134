import { describe, expect, it } from 'vitest';
import { parseSseEvent, SseFramer } from './sse.ts';

function frame(chunks: string[]): string[] {
  const f = new SseFramer();
  const out: string[] = [];
  for (const c of chunks) f.push(Buffer.from(c), (raw) => out.push(raw.toString()));
  return out;
}

describe('SseFramer', () => {
  it('splits LF and CRLF events and keeps their exact bytes', () => {
    expect(frame(['data: a\n\ndata: b\n\n'])).toEqual(['data: a\n\n', 'data: b\n\n']);
    expect(frame(['data: a\r\n\r\ndata: b\r\n\r\n'])).toEqual(['data: a\r\n\r\n', 'data: b\r\n\r\n']);
    expect(frame(['event: x\ndata: {"a":1}\n\n'])).toEqual(['event: x\ndata: {"a":1}\n\n']);
  });

  it('joins events split at every possible byte', () => {
    const text = 'data: {"x":"é"}\r\n\r\nevent: e\ndata: 1\ndata: 2\n\ndata: [DONE]\n\n';
    const bytes = Buffer.from(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const f = new SseFramer();
      const out: Buffer[] = [];
      f.push(bytes.subarray(0, cut), (r) => out.push(Buffer.from(r)));
      f.push(bytes.subarray(cut), (r) => out.push(Buffer.from(r)));
      expect(Buffer.concat(out).toString()).toBe(text);
      expect(out).toHaveLength(3);
      expect(f.pending()).toBe(0);
    }
  });

  it('holds an unterminated event', () => {
    const f = new SseFramer();
    const out: string[] = [];
    f.push(Buffer.from('data: a\n\ndata: partial'), (r) => out.push(r.toString()));
    expect(out).toEqual(['data: a\n\n']);
    expect(f.pending()).toBe('data: partial'.length);
  });

  it('parses fields', () => {
    expect(parseSseEvent(Buffer.from('event: message_start\ndata: {"a":1}\n\n'))).toEqual({ event: 'message_start', data: '{"a":1}' });
    expect(parseSseEvent(Buffer.from(': comment\ndata:x\ndata: y\r\n\r\n'))).toEqual({ event: null, data: 'x\ny' });
    expect(parseSseEvent(Buffer.from('retry: 10\n\n'))).toEqual({ event: null, data: null });
  });
});
