import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MP3_FRAME_SECONDS, mp3File, mp3Frame, wavFile } from '../../../../../test/helpers/audio-files.ts';
import { audioLength } from './audio-duration.ts';

const seconds = (b: Buffer) => audioLength(b)?.seconds ?? null;

/** A WAV file with its fmt fields and data size rewritten. */
function wavWith(b: Buffer, edit: { tag?: number; rate?: number; byteRate?: number; block?: number; dataSize?: number }): Buffer {
  const out = Buffer.from(b);
  const fmt = out.indexOf('fmt ') + 8;
  if (edit.tag !== undefined) out.writeUInt16LE(edit.tag, fmt);
  if (edit.rate !== undefined) out.writeUInt32LE(edit.rate, fmt + 4);
  if (edit.byteRate !== undefined) out.writeUInt32LE(edit.byteRate, fmt + 8);
  if (edit.block !== undefined) out.writeUInt16LE(edit.block, fmt + 12);
  if (edit.dataSize !== undefined) out.writeUInt32LE(edit.dataSize, out.indexOf('data') + 4);
  return out;
}

describe('WAV', () => {
  it('reads the length from the data chunk and the format, past other chunks and trailing ones', () => {
    expect(audioLength(wavFile(2.5))).toEqual({ format: 'wav', seconds: 2.5 });
    expect(seconds(wavFile(1, { rate: 44_100, channels: 2 }))).toBe(1);
    expect(seconds(wavFile(0.75, { rate: 8000, bits: 8 }))).toBe(0.75);
    // A chunk after the data (LIST, id3) is not audio.
    const trailer = Buffer.concat([Buffer.from('id3 '), Buffer.from([4, 0, 0, 0]), Buffer.from('abcd')]);
    expect(seconds(wavFile(3, { trailer }))).toBe(3);
    expect(seconds(wavFile(0))).toBe(0);
  });

  it('counts the bytes present when the data size is unknown (0, 0xFFFFFFFF) or claims more than arrived', () => {
    const w = wavFile(2);
    expect(seconds(wavWith(w, { dataSize: 0xffffffff }))).toBe(2);
    expect(seconds(wavWith(w, { dataSize: 0 }))).toBe(2);
    expect(seconds(wavWith(w, { dataSize: 10 * 1024 * 1024 }))).toBe(2);
    // Truncated in the data: what arrived.
    expect(seconds(w.subarray(0, w.length - 16_000))).toBe(1.5);
  });

  it('refuses what does not add up: no fmt before data, compressed formats, a byte rate that disagrees, zero rates, truncation in the header', () => {
    const w = wavFile(1);
    expect(audioLength(wavWith(w, { tag: 2 }))).toBeNull(); // ADPCM: its length is not bytes / block
    expect(audioLength(wavWith(w, { byteRate: 1_000_000_000 }))).toBeNull(); // would make the file seem short
    expect(audioLength(wavWith(w, { rate: 0, byteRate: 0 }))).toBeNull();
    expect(audioLength(wavWith(w, { block: 0, byteRate: 0 }))).toBeNull();
    const fmtAt = w.indexOf('fmt ');
    expect(audioLength(w.subarray(0, fmtAt + 12))).toBeNull(); // cut inside fmt
    expect(audioLength(w.subarray(0, fmtAt + 24))).toBeNull(); // cut before the data chunk
    expect(audioLength(w.subarray(0, 12))).toBeNull();
    const noFmt = Buffer.from(w);
    noFmt.write('junk', fmtAt, 'latin1');
    expect(audioLength(noFmt)).toBeNull();
    // A chunk size that jumps past the end, or chunks that never end.
    const jump = Buffer.from(w);
    jump.writeUInt32LE(0xfffffff0, w.indexOf('LIST') + 4);
    expect(audioLength(jump)).toBeNull();
    const many = Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVE'), Buffer.alloc(8 * 5000)]);
    expect(audioLength(many)).toBeNull();
  });

  it('reads WAVE_FORMAT_EXTENSIBLE by its sub-format', () => {
    const w = wavFile(1.25);
    const fmtAt = w.indexOf('fmt ');
    const ext = Buffer.alloc(40);
    w.copy(ext, 0, fmtAt + 8, fmtAt + 24);
    ext.writeUInt16LE(0xfffe, 0);
    ext.writeUInt16LE(22, 16);
    ext.writeUInt16LE(1, 24); // KSDATAFORMAT_SUBTYPE_PCM
    const head = Buffer.from('fmt \x28\x00\x00\x00', 'latin1');
    const rebuilt = Buffer.concat([w.subarray(0, fmtAt), head, ext, w.subarray(fmtAt + 24)]);
    rebuilt.writeUInt32LE(rebuilt.length - 8, 4);
    expect(seconds(rebuilt)).toBe(1.25);
    ext.writeUInt16LE(0x55, 24); // MPEG in WAV: unknown
    expect(audioLength(Buffer.concat([w.subarray(0, fmtAt), head, ext, w.subarray(fmtAt + 24)]))).toBeNull();
  });
});

describe('MP3', () => {
  it('walks constant-bitrate frames, past ID3v2 and ID3v1 tags', () => {
    expect(audioLength(mp3File(250))).toEqual({ format: 'mp3', seconds: 250 * MP3_FRAME_SECONDS.mpeg1 });
    expect(seconds(mp3File(100, { id3v1: true, mono: true }))).toBeCloseTo(100 * MP3_FRAME_SECONDS.mpeg1, 9);
    const mpeg2 = Buffer.concat(Array.from({ length: 80 }, () => mp3Frame(64, { mpeg2: true })));
    expect(seconds(mpeg2)).toBeCloseTo(80 * MP3_FRAME_SECONDS.mpeg2, 9);
  });

  it('walks variable-bitrate frames without a header, and takes the count of a Xing or VBRI header', () => {
    expect(seconds(mp3File(90, { kbps: [64, 128, 320] }))).toBeCloseTo(90 * MP3_FRAME_SECONDS.mpeg1, 9);
    expect(seconds(mp3File(300, { kbps: [96, 160], header: 'xing' }))).toBeCloseTo(300 * MP3_FRAME_SECONDS.mpeg1, 9);
    expect(seconds(mp3File(300, { kbps: [96, 160], header: 'xing', mono: true }))).toBeCloseTo(300 * MP3_FRAME_SECONDS.mpeg1, 9);
    expect(seconds(mp3File(120, { kbps: [48], header: 'vbri' }))).toBeCloseTo(120 * MP3_FRAME_SECONDS.mpeg1, 9);
    // A header's count is taken as said when the bytes can hold it (here: frames the file has lost).
    expect(seconds(mp3File(200, { header: 'xing', declared: 210 }))).toBeCloseTo(210 * MP3_FRAME_SECONDS.mpeg1, 9);
  });

  it('does not let a header or garbage make a file shorter than its bytes, nor a header make it absurdly long', () => {
    // A Xing header that claims one frame in front of 500 frames of 320 kbit/s: the bytes count.
    const lying = mp3File(500, { kbps: [320], header: 'xing', declared: 1 });
    expect(seconds(lying)).toBeGreaterThanOrEqual(500 * MP3_FRAME_SECONDS.mpeg1 * 0.99);
    // One frame, then megabytes of something else: at most 320 kbit/s for every byte.
    const tail = Buffer.concat([mp3File(2), randomBytes(4 * 1024 * 1024)]);
    expect(seconds(tail)).toBeGreaterThanOrEqual((4 * 1024 * 1024 * 8) / 320_000);
    // A count no file of this size could hold: walked instead.
    expect(seconds(mp3File(50, { header: 'xing', declared: 0xffffffff }))).toBeCloseTo(51 * MP3_FRAME_SECONDS.mpeg1, 9);
  });

  it('refuses what is not a Layer III stream: garbage, truncated headers, a huge ID3 size, reserved values', () => {
    expect(audioLength(randomBytes(200_000))).toBeNull();
    expect(audioLength(Buffer.alloc(0))).toBeNull();
    expect(audioLength(Buffer.from([0xff]))).toBeNull();
    expect(audioLength(Buffer.from([0xff, 0xfb, 0x94]))).toBeNull();
    expect(audioLength(Buffer.from('ID3'))).toBeNull();
    const bigId3 = mp3File(10);
    bigId3[6] = 0x7f; // a tag larger than the file
    expect(audioLength(bigId3)).toBeNull();
    const notSyncsafe = mp3File(10);
    notSyncsafe[9] = 0x80;
    expect(audioLength(notSyncsafe)).toBeNull();
    const layer2 = Buffer.concat(Array.from({ length: 10 }, () => mp3Frame(128)));
    for (let i = 0; i < layer2.length; i += 384) layer2[i + 1] = 0xfd; // Layer II
    expect(audioLength(layer2)).toBeNull();
    const freeFormat = Buffer.concat(Array.from({ length: 10 }, () => mp3Frame(128)));
    for (let i = 0; i < freeFormat.length; i += 384) freeFormat[i + 2] = 0x04;
    expect(audioLength(freeFormat)).toBeNull();
    // A lone frame header whose frame runs past the end of the file is not a stream.
    expect(audioLength(mp3Frame(128).subarray(0, 100))).toBeNull();
    // Text, JSON, another container.
    expect(audioLength(Buffer.from('{"text":"hello"}'))).toBeNull();
    expect(audioLength(Buffer.concat([Buffer.from('OggS'), randomBytes(5000)]))).toBeNull();
  });
});

describe('FLAC', () => {
  function flac(totalSamples: number, rate: number, channels: number, bits: number, frameBytes: number): Buffer {
    const info = Buffer.alloc(34);
    info.writeUInt16BE(4096, 0);
    info.writeUInt16BE(4096, 2);
    info.writeUIntBE((rate << 4) | ((channels - 1) << 1) | ((bits - 1) >> 4), 10, 3);
    info[13] = (((bits - 1) & 0x0f) << 4) | Math.floor(totalSamples / 2 ** 32);
    info.writeUInt32BE(totalSamples % 2 ** 32, 14);
    return Buffer.concat([Buffer.from('fLaC'), Buffer.from([0x80, 0, 0, 34]), info, Buffer.alloc(frameBytes)]);
  }

  it('reads the total samples of STREAMINFO', () => {
    expect(audioLength(flac(44_100 * 7, 44_100, 2, 16, 300_000))).toEqual({ format: 'flac', seconds: 7 });
  });

  it('refuses an unknown or impossible total, a missing STREAMINFO, and lets no total undercut the bytes', () => {
    expect(audioLength(flac(0, 44_100, 2, 16, 1000))).toBeNull();
    expect(audioLength(flac(2 ** 36 - 1, 8000, 1, 16, 1000))).toBeNull();
    expect(audioLength(flac(44_100, 0, 2, 16, 1000))).toBeNull();
    expect(audioLength(flac(44_100, 44_100, 2, 16, 1000).subarray(0, 30))).toBeNull();
    const noInfo = flac(44_100, 44_100, 2, 16, 1000);
    noInfo[4] = 0x84; // first block is not STREAMINFO
    expect(audioLength(noInfo)).toBeNull();
    // One second claimed, ten seconds of uncompressed-size frames sent.
    expect(seconds(flac(44_100, 44_100, 2, 16, 44_100 * 4 * 10))!).toBeGreaterThan(9);
  });
});
