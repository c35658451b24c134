// How long an uploaded audio file plays, read from its own headers, for pricing transcriptions by the
// minute when the provider does not say (whisper-1's `text`, `srt` and `vtt` answers). Formats:
//   WAV  (RIFF/WAVE, PCM, float, A-law, µ-law): the data chunk's bytes / (sample rate × block align).
//   MP3  (MPEG-1/2/2.5 Layer III): the frame count of a Xing/Info or VBRI header, or else every
//        frame's samples, walked frame by frame (ISO/IEC 11172-3 §2.4.2.3, 13818-3).
//   FLAC the total samples of STREAMINFO (RFC 9639 §8.2) / its sample rate.
//   MP4, M4A, MOV: the movie or sound track header, or the sound track's fragments (mp4-duration.ts).
//   Ogg  (Opus, Vorbis, FLAC): the last granule position of the audio stream (ogg-duration.ts).
//   WebM, Matroska: the Segment's Duration, or its last audio block (webm-duration.ts).
// Nothing is decoded and nothing copied: each reader walks the file's own structure once, so the work
// grows with the file's size and no further, and every reader stops at a bounded count of steps.
// The file is a client's: every length it declares is checked against the bytes really there, and a
// header cannot make a file play shorter than its bytes can hold (MP3: at 320 kbit/s, the format's
// highest rate; Opus: at 510 kbit/s a stream; the others: at the uncompressed rate the header itself
// names). Anything else — another format, a header that does not add up, a length of more than a
// day — is unknown (null), never a guess.
import { mp4Seconds } from './mp4-duration.ts';
import { oggSeconds } from './ogg-duration.ts';
import { webmSeconds } from './webm-duration.ts';

export type AudioFormat = 'wav' | 'mp3' | 'flac' | 'mp4' | 'ogg' | 'webm';

export interface AudioLength {
  format: AudioFormat;
  seconds: number;
}

/** No upload within the gateway's body limit plays this long; a header that says so is not believed. */
const MAX_SECONDS = 24 * 60 * 60;

/** Box types an ISO BMFF (or QuickTime) file opens with. */
const MP4_FIRST_BOXES = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot']);

/** The file's format and playing time, or null when it is not a file of a known format that can be read. */
export function audioLength(b: Buffer): AudioLength | null {
  const magic = b.length >= 12 ? b.toString('latin1', 0, 4) : '';
  if (magic === 'RIFF' && b.toString('latin1', 8, 12) === 'WAVE') return known('wav', wavSeconds(b));
  if (magic === 'fLaC') return known('flac', flacSeconds(b));
  if (magic === 'OggS') return known('ogg', oggSeconds(b));
  if (b.length >= 4 && b.readUInt32BE(0) === 0x1a45dfa3) return known('webm', webmSeconds(b));
  if (b.length >= 8 && MP4_FIRST_BOXES.has(b.toString('latin1', 4, 8))) return known('mp4', mp4Seconds(b));
  return known('mp3', mp3Seconds(b));
}

const known = (format: AudioFormat, seconds: number | null): AudioLength | null =>
  seconds === null || !Number.isFinite(seconds) || seconds < 0 || seconds > MAX_SECONDS ? null : { format, seconds };

// ---- WAV ----

// WAVE_FORMAT_PCM, _IEEE_FLOAT, _ALAW, _MULAW: one block per sample frame, so the length is exact.
const UNCOMPRESSED = new Set([1, 3, 6, 7]);
const EXTENSIBLE = 0xfffe;
const MAX_CHUNKS = 1000;

function wavSeconds(b: Buffer): number | null {
  let at = 12;
  let fmt: { tag: number; rate: number; block: number; byteRate: number } | null = null;
  for (let n = 0; n < MAX_CHUNKS && at + 8 <= b.length; n++) {
    const id = b.toString('latin1', at, at + 4);
    const size = b.readUInt32LE(at + 4);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > b.length) return null;
      let tag = b.readUInt16LE(body);
      // WAVE_FORMAT_EXTENSIBLE names the real format in the first two bytes of its sub-format GUID.
      if (tag === EXTENSIBLE) {
        if (size < 40 || body + 26 > b.length) return null;
        tag = b.readUInt16LE(body + 24);
      }
      fmt = { tag, rate: b.readUInt32LE(body + 4), byteRate: b.readUInt32LE(body + 8), block: b.readUInt16LE(body + 12) };
    } else if (id === 'data') {
      if (!fmt || !UNCOMPRESSED.has(fmt.tag) || fmt.rate === 0 || fmt.block === 0 || fmt.byteRate !== fmt.rate * fmt.block) return null;
      const present = b.length - body;
      // 0 and 0xFFFFFFFF are what streaming writers leave when they cannot seek back; then, or when
      // the size claims more than arrived, the bytes present count.
      const bytes = size === 0 || size > present ? present : size;
      return Math.floor(bytes / fmt.block) / fmt.rate;
    }
    at = body + size + (size & 1); // chunks are padded to an even length
  }
  return null;
}

// ---- MP3 ----

interface Frame {
  /** 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5. */
  version: number;
  rate: number;
  samples: number;
  length: number;
  mono: boolean;
}

const L3_KBPS = {
  v1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  v2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};
const RATES = [44100, 48000, 32000];
const MAX_BITS_PER_SECOND = 320_000;
/** How far past the ID3v2 tag the first frame may start (some encoders leave padding). */
const SYNC_WINDOW = 64 * 1024;

/** A Layer III frame header at `at`; free-format and reserved values are not frames. */
function frameAt(b: Buffer, at: number): Frame | null {
  if (at + 4 > b.length || b[at] !== 0xff || (b[at + 1]! & 0xe0) !== 0xe0) return null;
  const b1 = b[at + 1]!;
  const b2 = b[at + 2]!;
  const b3 = b[at + 3]!;
  const version = (b1 >> 3) & 3;
  if (version === 1 || ((b1 >> 1) & 3) !== 1) return null; // reserved version; not Layer III
  const kbps = (version === 3 ? L3_KBPS.v1 : L3_KBPS.v2)[b2 >> 4];
  const rateIndex = (b2 >> 2) & 3;
  if (!kbps || rateIndex === 3 || (b3 & 3) === 2) return null; // free format, bad bitrate, reserved rate or emphasis
  const rate = RATES[rateIndex]! / (version === 3 ? 1 : version === 2 ? 2 : 4);
  const samples = version === 3 ? 1152 : 576;
  const length = Math.floor(((samples / 8) * kbps * 1000) / rate) + ((b2 >> 1) & 1);
  return { version, rate, samples, length, mono: b3 >> 6 === 3 };
}

/** Past any ID3v2 tags (id3.org, ID3v2.4 §3.1: a syncsafe size, plus a footer when flagged). */
function afterId3v2(b: Buffer): number | null {
  let at = 0;
  while (at + 10 <= b.length && b.toString('latin1', at, at + 3) === 'ID3') {
    const s = b.subarray(at + 6, at + 10);
    if (s.some((x) => x & 0x80)) return null;
    at += 10 + ((s[0]! << 21) | (s[1]! << 14) | (s[2]! << 7) | s[3]!) + (b[at + 5]! & 0x10 ? 10 : 0);
  }
  return at <= b.length ? at : null;
}

/** The first frame: a header whose next frame is also one of the same stream (or that ends the file). */
function firstFrame(b: Buffer, from: number): [number, Frame] | null {
  const end = Math.min(b.length - 4, from + SYNC_WINDOW);
  for (let at = from; at <= end; at++) {
    const f = frameAt(b, at);
    if (!f) continue;
    const next = at + f.length;
    const g = frameAt(b, next);
    if (next === b.length || (g && g.version === f.version && g.rate === f.rate)) return [at, f];
  }
  return null;
}

/**
 * The frame count of a Xing/Info (after the side information) or VBRI (32 bytes in) header; null
 * without one, or when it counts more frames than the bytes could hold at the lowest bitrate.
 */
function declaredFrames(b: Buffer, at: number, f: Frame): number | null {
  const xing = at + 4 + (f.version === 3 ? (f.mono ? 17 : 32) : f.mono ? 9 : 17);
  const vbri = at + 36;
  let frames: number | null = null;
  const tag = xing + 12 <= b.length ? b.toString('latin1', xing, xing + 4) : '';
  if ((tag === 'Xing' || tag === 'Info') && b.readUInt32BE(xing + 4) & 1) frames = b.readUInt32BE(xing + 8);
  else if (vbri + 18 <= b.length && b.toString('latin1', vbri, vbri + 4) === 'VBRI') frames = b.readUInt32BE(vbri + 14);
  const shortest = Math.floor(((f.samples / 8) * (f.version === 3 ? L3_KBPS.v1[1]! : L3_KBPS.v2[1]!) * 1000) / f.rate);
  return frames !== null && frames * shortest <= b.length - at ? frames : null;
}

function mp3Seconds(b: Buffer): number | null {
  const start = afterId3v2(b);
  if (start === null) return null;
  const first = firstFrame(b, start);
  if (!first) return null;
  const [at, f] = first;
  let seconds: number;
  const declared = declaredFrames(b, at, f);
  if (declared !== null) {
    seconds = (declared * f.samples) / f.rate;
  } else {
    // No header counts the frames: walk them while they stay one stream (a trailing tag ends the walk).
    let samples = 0;
    for (let p = at; ; ) {
      const g = frameAt(b, p);
      if (!g || g.version !== f.version || g.rate !== f.rate) break;
      samples += g.samples;
      p += g.length;
    }
    seconds = samples / f.rate;
  }
  // An ID3v1 tag (the last 128 bytes, "TAG") is not audio; every other byte plays at 320 kbit/s at most.
  const end = b.length >= 128 && b.toString('latin1', b.length - 128, b.length - 125) === 'TAG' ? b.length - 128 : b.length;
  return Math.max(seconds, (Math.max(0, end - at) * 8) / MAX_BITS_PER_SECOND);
}

// ---- FLAC ----

function flacSeconds(b: Buffer): number | null {
  // "fLaC", then the STREAMINFO block's header (type 0, length 34) and body.
  if (b.length < 8 + 34 || (b[4]! & 0x7f) !== 0 || b.readUIntBE(5, 3) !== 34) return null;
  const info = 8;
  const rate = b.readUIntBE(info + 10, 3) >> 4; // 20 bits
  const channels = ((b[info + 12]! >> 1) & 7) + 1;
  const bits = (((b[info + 12]! & 1) << 4) | (b[info + 13]! >> 4)) + 1;
  const total = (b[info + 13]! & 0x0f) * 2 ** 32 + b.readUInt32BE(info + 14); // 36 bits
  if (rate === 0 || total === 0) return null; // 0 samples: "unknown" in STREAMINFO
  // Nor more than its bytes can hold: a frame (at most 65535 samples) takes at least 10 bytes.
  if (total > (b.length / 10) * 65535) return null;
  // Lossless frames never hold more than the samples uncompressed (plus frame headers): a header
  // that understates the total still pays for the bytes.
  const maxBytesPerSecond = (rate * channels * bits) / 8 * 1.05;
  return Math.max(total / rate, (b.length - info - 34) / maxBytesPerSecond);
}
