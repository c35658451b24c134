import { describe, expect, it } from 'vitest';
import { box, fragmentedM4aFile, m4aFile, unsafeLengths } from '../../../../../test/helpers/audio-files.ts';
import { audioLength } from './audio-duration.ts';
import { mp4Seconds } from './mp4-duration.ts';

const seconds = (b: Buffer) => audioLength(b)?.seconds ?? null;
const AAC_SECONDS = (s: number) => (Math.round((s * 44_100) / 1024) * 1024) / 44_100;

describe('MP4 / M4A', () => {
  it('reads the mvhd, with the moov before or after the mdat, 32- and 64-bit headers and box sizes, size 0', () => {
    expect(audioLength(m4aFile(5))).toEqual({ format: 'mp4', seconds: 5 });
    expect(seconds(m4aFile(5, { moovAtEnd: true }))).toBe(5);
    expect(seconds(m4aFile(7.25, { version1: true, moovAtEnd: true, mdatSize: 'large' }))).toBe(7.25);
    expect(seconds(m4aFile(3, { mdatSize: 'zero' }))).toBe(3);
    // A 64-bit size on the moov itself.
    const f = m4aFile(2);
    const moovAt = f.indexOf('moov') - 4;
    const moovEnd = moovAt + f.readUInt32BE(moovAt);
    const large = Buffer.concat([f.subarray(0, moovAt), box('moov', f.subarray(moovAt + 8, moovEnd), { large: true }), f.subarray(moovEnd)]);
    expect(seconds(large)).toBe(2);
  });

  it('takes the sound track\'s mdhd when the mvhd does not say (0 or all ones) or says less, past a video track', () => {
    expect(seconds(m4aFile(5, { mvhdDuration: 0 }))).toBeCloseTo(AAC_SECONDS(5), 12);
    expect(seconds(m4aFile(5, { mvhdDuration: 0xffffffff, video: true }))).toBeCloseTo(AAC_SECONDS(5), 12);
    expect(seconds(m4aFile(4, { mvhdDuration: 0, version1: true }))).toBeCloseTo(AAC_SECONDS(4), 12);
    // An mvhd that says less than the sound track does not shorten it.
    expect(seconds(m4aFile(5, { mvhdDuration: 1000 }))).toBeCloseTo(AAC_SECONDS(5), 12);
  });

  it('reads fragmented files (MediaRecorder in Safari): the mehd, else the sound track\'s last fragment', () => {
    expect(seconds(fragmentedM4aFile(6, { mehd: true }))).toBe(6);
    expect(seconds(fragmentedM4aFile(6))).toBeCloseTo(AAC_SECONDS(6), 12);
    expect(seconds(fragmentedM4aFile(6, { tfdt: false }))).toBeCloseTo(AAC_SECONDS(6), 12);
    // Cut after three of its six fragments: what arrived.
    const f = fragmentedM4aFile(6);
    let cut = 0;
    for (let i = 0; i < 4; i++) cut = f.indexOf('moof', cut + 1);
    expect(seconds(f.subarray(0, cut - 4))).toBeCloseTo((3 * 43 * 1024) / 44_100, 12);
  });

  it('lets no header make the sound shorter than its samples\' bytes at the uncompressed rate, nor longer than a day', () => {
    // 1 s claimed for 5 s of frames of 8000 bytes (1.4 MB/s would be uncompressed 44.1 kHz stereo).
    const lying = m4aFile(5, { mvhdDuration: 1000, frameBytes: 8000 });
    expect(seconds(lying)!).toBeGreaterThan(5);
    expect(seconds(m4aFile(5, { mvhdDuration: 0xfffffffe }))).toBeNull(); // 49 days
  });

  it('knows nothing of files without a readable moov, and stays safe on cut, corrupt and looping boxes', () => {
    const end = m4aFile(5, { moovAtEnd: true });
    // The moov cut short: its mvhd, when whole, still says; cut inside the mvhd, nothing does.
    expect(seconds(end.subarray(0, end.length - 100))).toBe(5);
    expect(audioLength(end.subarray(0, end.indexOf('mvhd') + 20))).toBeNull();
    expect(audioLength(end.subarray(0, end.indexOf('moov')))).toBeNull(); // cut before the moov
    expect(audioLength(box('ftyp', Buffer.from('M4A \0\0\0\0')))).toBeNull();
    // A box smaller than its header, and a 64-bit size far past the end.
    const small = m4aFile(1);
    small.writeUInt32BE(4, small.indexOf('moov') - 4);
    expect(audioLength(small)).toBeNull();
    const far = Buffer.concat([box('ftyp', Buffer.alloc(8)), Buffer.from('\0\0\0\x01mdat\xff\xff\xff\xff\xff\xff\xff\xff', 'latin1'), Buffer.alloc(100)]);
    expect(audioLength(far)).toBeNull();
    // Hundreds of thousands of empty boxes: given up on, not walked for ever.
    expect(mp4Seconds(Buffer.concat([box('ftyp', Buffer.alloc(8)), Buffer.alloc(8 * 250_000, 0).fill(Buffer.from('\0\0\0\x08free', 'latin1'))]))).toBeNull();
    // A trun that counts four billion samples of default duration: not a day's audio, unknown.
    const f = fragmentedM4aFile(2);
    const trun = f.indexOf('trun');
    f.writeUInt32BE(0x000000, trun + 4); // no per-sample fields
    f.writeUInt32BE(0xffffffff, trun + 8);
    expect(audioLength(f)).toBeNull();
    for (const f of [m4aFile(2), m4aFile(2, { moovAtEnd: true, version1: true }), fragmentedM4aFile(3)]) expect(unsafeLengths(f, audioLength)).toEqual([]);
  });
});
