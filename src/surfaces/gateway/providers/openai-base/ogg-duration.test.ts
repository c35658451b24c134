import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { oggFlacFile, oggOpusFile, oggPage, oggVorbisFile, unsafeLengths } from '../../../../../test/helpers/audio-files.ts';
import { audioLength } from './audio-duration.ts';
import { oggSeconds } from './ogg-duration.ts';

const seconds = (b: Buffer) => audioLength(b)?.seconds ?? null;
const lastPage = (b: Buffer) => b.lastIndexOf('OggS');

describe('Ogg', () => {
  it('reads Opus by its last granule position less the pre-skip, at 48 kHz', () => {
    expect(audioLength(oggOpusFile(3))).toEqual({ format: 'ogg', seconds: 3 });
    expect(seconds(oggOpusFile(12.5, { preSkip: 3840 }))).toBe(12.5);
    expect(seconds(oggOpusFile(0.04, { preSkip: 0 }))).toBeCloseTo(0.04, 12);
  });

  it('reads Vorbis at the rate of its identification header, and FLAC in Ogg at its STREAMINFO\'s', () => {
    expect(audioLength(oggVorbisFile(2.5))).toEqual({ format: 'ogg', seconds: 2.5 });
    expect(seconds(oggVorbisFile(4, 22_050))).toBe(4);
    expect(audioLength(oggFlacFile(4))).toEqual({ format: 'ogg', seconds: 4 });
  });

  it('finds the audio stream among others, and pages past bytes that are none', () => {
    // A Theora stream's BOS page first: the audio is the second stream, their pages interleaved.
    const theora = oggPage(7, 0, 0n, [Buffer.concat([Buffer.from('\x80theora', 'latin1'), Buffer.alloc(35)])], 0x02);
    const video = oggPage(7, 1, 9000n, [Buffer.alloc(3000, 0x33)]);
    const opus = oggOpusFile(3);
    const firstAudio = opus.indexOf('OggS', 1);
    expect(seconds(Buffer.concat([theora, opus.subarray(0, firstAudio), video, opus.subarray(firstAudio)]))).toBe(3);
    // Garbage between two pages: the walk resumes at the next page.
    const at = opus.indexOf('OggS', opus.indexOf('OggS', firstAudio + 1) + 1);
    expect(seconds(Buffer.concat([opus.subarray(0, at), Buffer.alloc(5000, 0x4f), opus.subarray(at)]))).toBe(3);
  });

  it('counts what arrived of a file cut short', () => {
    const f = oggOpusFile(3); // a page a second
    expect(seconds(f.subarray(0, f.length - 10))).toBe(2);
    expect(seconds(f.subarray(0, f.indexOf('OggS', f.indexOf('OggS', 1) + 1)))).toBeLessThan(0.001); // its headers only
  });

  it('lets no granule make the audio shorter than its bytes at 510 kbit/s, nor longer than a day', () => {
    const loud = oggOpusFile(10, { packetBytes: 1275 }); // 510 kbit/s
    const claims = Buffer.from(loud);
    for (let at = 0; (at = claims.indexOf('OggS', at + 1)) !== -1; ) claims.writeBigInt64LE(BigInt(312 + 960), at + 6); // 20 ms
    expect(seconds(claims)!).toBeGreaterThan(9.5);
    const day = Buffer.from(oggOpusFile(1));
    day.writeBigInt64LE(BigInt(48_000 * 86_401 + 312), lastPage(day) + 6);
    expect(audioLength(day)).toBeNull();
    const huge = Buffer.from(oggOpusFile(1));
    huge.writeBigInt64LE(2n ** 62n, lastPage(huge) + 6);
    expect(audioLength(huge)).toBeNull();
  });

  it('knows nothing of streams that are not Opus, Vorbis or FLAC, nor of garbage, and stays safe on corruption', () => {
    const speex = oggPage(1, 0, 0n, [Buffer.concat([Buffer.from('Speex   ', 'latin1'), Buffer.alloc(72)])], 0x02);
    expect(audioLength(Buffer.concat([speex, oggPage(1, 1, 16_000n, [Buffer.alloc(100)], 0x04)]))).toBeNull();
    const future = oggOpusFile(2);
    future[future.indexOf('OpusHead') + 8] = 0x10; // OpusHead version 1.0: not ours to read
    expect(audioLength(future)).toBeNull();
    const noBos = oggOpusFile(2);
    noBos[5] = 0; // the first page is not a beginning of stream
    expect(audioLength(noBos)).toBeNull();
    expect(audioLength(Buffer.concat([Buffer.from('OggS'), randomBytes(100_000)]))).toBeNull();
    expect(audioLength(Buffer.from('OggS\0\x02'))).toBeNull();
    // Hundreds of thousands of empty pages: given up on.
    const empty = oggPage(9, 1, -1n, []);
    expect(oggSeconds(Buffer.concat([oggOpusFile(0.02), Buffer.alloc(empty.length * 600_000).fill(empty)]))).toBeNull();
    for (const f of [oggOpusFile(2), oggVorbisFile(1), oggFlacFile(1)]) expect(unsafeLengths(f, audioLength)).toEqual([]);
  });
});
