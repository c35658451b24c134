import { describe, expect, it } from 'vitest';
import type { AudioLength } from '../providers/openai-base/audio-duration.ts';
import { audioMeter, UNKNOWN_BYTES_PER_SECOND } from './audio-metering.ts';

const whisper = { audioInputPricePerMinute: 0.006, ttsPricePerMchar: null };
const tts = { audioInputPricePerMinute: null, ttsPricePerMchar: 15 };
const form = (fileBytes: number, length: AudioLength | null) => ({ fileBytes, audioLength: () => length });
const tokens = (input: number, output: number, audioSeconds?: number) => ({ input, output, cached: 0, reasoning: 0, ...(audioSeconds === undefined ? {} : { audioSeconds }) });

describe('audio metering', () => {
  it('reserves and charges speech by the characters of its input, once the provider answered', () => {
    const m = audioMeter(tts, 'speech', { input: 'Grüße, 世界! 🎧' }, undefined)!;
    // Code points, not UTF-16 units: the emoji is one character.
    expect(m.reserveUsd).toBeCloseTo((12 * 15) / 1e6, 15);
    expect(m.settle(null, true)).toEqual({ usd: m.reserveUsd, seconds: 0, characters: 12 });
    expect(m.settle(null, false)).toEqual({ usd: 0, seconds: 0, characters: 0 });
    // Unpriced: characters still counted, nothing charged; an input that is no string counts nothing.
    expect(audioMeter(whisper, 'speech', { input: 'abc' }, undefined)!.settle(null, true)).toEqual({ usd: 0, seconds: 0, characters: 3 });
    expect(audioMeter(tts, 'speech', { input: ['abc'] }, undefined)!.reserveUsd).toBe(0);
  });

  it('charges an upload by the provider\'s length first, then the file\'s, then (without tokens) the reservation\'s', () => {
    const read = audioMeter(whisper, 'transcriptions', {}, form(320_000, { format: 'wav', seconds: 9.5 }))!;
    expect(read.reserveUsd).toBeCloseTo((10 * 0.006) / 60, 15); // whole seconds
    expect(read.settle(tokens(0, 0, 12), true)).toEqual({ usd: (12 * 0.006) / 60, seconds: 12, characters: 0 });
    expect(read.settle(null, true)).toEqual({ usd: (9.5 * 0.006) / 60, seconds: 9.5, characters: 0 });
    expect(read.settle(null, false).usd).toBe(0);
    // Kept to the millisecond, as usage rows and metrics count it.
    expect(audioMeter(whisper, 'transcriptions', {}, form(1000, { format: 'ogg', seconds: 2.0004999 }))!.settle(null, true).seconds).toBe(2);
    expect(audioMeter(whisper, 'transcriptions', {}, form(1000, { format: 'webm', seconds: 2.0005 }))!.settle(tokens(0, 0, 3.14159), true).seconds).toBe(3.142);

    const unknown = audioMeter(whisper, 'translations', {}, form(1_000_000, null))!;
    const assumed = 1_000_000 / UNKNOWN_BYTES_PER_SECOND;
    expect(unknown.reserveUsd).toBeCloseTo((assumed * 0.006) / 60, 15);
    expect(unknown.settle(null, true)).toEqual({ usd: unknown.reserveUsd, seconds: assumed, characters: 0 });
    // The provider priced it in tokens (gpt-4o-transcribe): no length charge on top.
    expect(unknown.settle(tokens(120, 30), true)).toEqual({ usd: 0, seconds: 0, characters: 0 });
    // Without a per-minute price nothing is charged for length, and an unknown one is not made up.
    expect(audioMeter(tts, 'transcriptions', {}, form(1_000_000, null))!.settle(null, true)).toEqual({ usd: 0, seconds: 0, characters: 0 });
    expect(audioMeter(tts, 'transcriptions', {}, form(10, { format: 'mp3', seconds: 4 }))!.settle(null, true)).toEqual({ usd: 0, seconds: 4, characters: 0 });
  });

  it('meters nothing else', () => {
    expect(audioMeter(whisper, 'chat', { input: 'x' }, undefined)).toBeNull();
    expect(audioMeter(tts, 'embeddings', { input: 'x' }, undefined)).toBeNull();
  });
});
