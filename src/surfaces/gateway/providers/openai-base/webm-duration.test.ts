import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ebml, unsafeLengths, webmFile } from '../../../../../test/helpers/audio-files.ts';
import { audioLength } from './audio-duration.ts';
import { webmSeconds } from './webm-duration.ts';

const seconds = (b: Buffer) => audioLength(b)?.seconds ?? null;

/** The file with its Duration (an 8-byte float) rewritten. */
function withDuration(b: Buffer, value: number): Buffer {
  const c = Buffer.from(b);
  c.writeDoubleBE(value, c.indexOf(Buffer.from([0x44, 0x89])) + 2 + 8);
  return c;
}

describe('WebM / Matroska', () => {
  it('reads Info\'s Duration in TimecodeScale units', () => {
    expect(audioLength(webmFile(4))).toEqual({ format: 'webm', seconds: 4 });
    expect(seconds(webmFile(61.5))).toBe(61.5);
  });

  it('without a Duration (MediaRecorder), ends at the last audio block: unknown-size Clusters, video blocks between', () => {
    expect(seconds(webmFile(4, { duration: false }))).toBe(4);
    expect(seconds(webmFile(4, { duration: false, live: true }))).toBe(4);
    expect(seconds(webmFile(7.3, { duration: false, live: true, video: true }))).toBeCloseTo(7.3, 9);
    // Cut short: what arrived, to the last whole block.
    const live = webmFile(4, { duration: false, live: true });
    expect(seconds(live.subarray(0, live.length - 30))).toBeCloseTo(3.98, 9);
    // Cut before the first block: nothing says.
    expect(audioLength(live.subarray(0, live.indexOf(Buffer.from([0x1f, 0x43, 0xb6, 0x75]))))).toBeNull();
  });

  it('lets neither Duration nor block times make the audio shorter than its blocks, or their bytes at 510 kbit/s', () => {
    expect(seconds(webmFile(4, { declaredMs: 1000 }))).toBe(4);
    expect(seconds(webmFile(4, { declaredMs: 9000 }))).toBe(9); // a longer Duration is taken as said
    // Every block at time 0 (its cluster's and its own): their bytes at 510 kbit/s still count.
    expect(webmSeconds(webmFile(4, { duration: false, timesZero: true }))).toBeCloseTo((200 * 40) / ((510_000 / 8) * 1.02), 9);
    expect(seconds(webmFile(4, { duration: false, timesZero: true, packetBytes: 1275 }))!).toBeGreaterThan(3.9);
    expect(seconds(webmFile(1, { declaredMs: 86_400_001 }))).toBeNull(); // more than a day
  });

  it('knows nothing of files whose header, scale or tracks do not add up, and stays safe on corruption', () => {
    const f = webmFile(2);
    const notWebm = Buffer.from(f);
    notWebm.write('xxxx', notWebm.indexOf('webm'), 'latin1');
    expect(audioLength(notWebm)).toBeNull();
    const zeroScale = Buffer.from(f);
    zeroScale.writeUInt32BE(0, zeroScale.indexOf(Buffer.from([0x2a, 0xd7, 0xb1])) + 3 + 8);
    expect(audioLength(zeroScale)).toBeNull();
    const noAudio = Buffer.from(f);
    noAudio[noAudio.indexOf(Buffer.from([0x83, 0x01, 0, 0, 0, 0, 0, 0, 1, 2])) + 9] = 1; // the track is video
    expect(audioLength(noAudio)).toBeNull();
    expect(seconds(withDuration(webmFile(2), Number.NaN))).toBe(2); // the blocks say
    expect(seconds(withDuration(webmFile(2), -5))).toBe(2);
    expect(audioLength(Buffer.concat([Buffer.from([0x1a, 0x45, 0xdf, 0xa3]), randomBytes(50_000)]))).toBeNull();
    expect(audioLength(Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0xff]))).toBeNull(); // a header of unknown size
    // Millions of empty Void elements: given up on, not walked to the end.
    const header = f.subarray(0, f.indexOf(Buffer.from([0x18, 0x53, 0x80, 0x67])));
    expect(webmSeconds(Buffer.concat([header, ebml(0x18538067, [], { unknownSize: true }), Buffer.alloc(2 * 2_100_000).fill(Buffer.from([0xec, 0x80]))]))).toBeNull();
    for (const w of [webmFile(2), webmFile(2, { duration: false, live: true, video: true })]) expect(unsafeLengths(w, audioLength)).toEqual([]);
  });
});
