// How long a WebM or Matroska file plays (RFC 9559), read from its elements: the Segment's Info
// Duration (a float, in TimecodeScale units, 1,000,000 ns unless said) and the blocks of its first
// audio track (TrackType 2): their Cluster Timecode + the block's own 16-bit timecode, plus the
// block's length (its BlockDuration, or for Opus the frames its first packet's TOC byte counts,
// RFC 6716 §3.1). MediaRecorder (browsers) writes no Duration and Clusters of unknown size, which end
// where the next top-level element begins; both are read. The file plays as long as the later of
// its Duration and its last audio block, and its audio blocks cannot play shorter than their bytes at
// the codec's highest rate (Opus: 510 kbit/s a stream; others: the uncompressed rate the track names).
import { OPUS_MAX_BYTES_PER_SECOND, opusHead } from './ogg-duration.ts';

/** Elements read in one file at most: an hour of MediaRecorder Opus is about 200,000. */
const MAX_ELEMENTS = 2_000_000;
/** Tracks in one file at most (the track number is one byte in most files; the format allows more). */
const MAX_TRACKS = 127;

const ID = {
  EBML: 0x1a45dfa3,
  Segment: 0x18538067,
  Info: 0x1549a966,
  TimecodeScale: 0x2ad7b1,
  Duration: 0x4489,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackType: 0x83,
  CodecID: 0x86,
  CodecPrivate: 0x63a2,
  Audio: 0xe1,
  SamplingFrequency: 0xb5,
  Channels: 0x9f,
  BitDepth: 0x6264,
  Cluster: 0x1f43b675,
  Timecode: 0xe7,
  SimpleBlock: 0xa3,
  BlockGroup: 0xa0,
  Block: 0xa1,
  BlockDuration: 0x9b,
} as const;

/** Masters whose children are read in place (the walk is flat: their IDs do not recur elsewhere). */
const ENTERED = new Set<number>([ID.Segment, ID.Info, ID.Tracks, ID.TrackEntry, ID.Audio, ID.Cluster, ID.BlockGroup]);

/** A variable-length integer (RFC 8794 §4): its length from the first byte's leading zeros. */
function vint(b: Buffer, at: number, keepMarker: boolean): { value: number; length: number; unknown: boolean } | null {
  const first = b[at];
  if (first === undefined || first === 0) return null;
  const length = Math.clz32(first) - 23;
  if (at + length > b.length) return null;
  let value = keepMarker ? first : first & (0xff >> length);
  let ones = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    value = value * 256 + b[at + i]!;
    ones &&= b[at + i] === 0xff;
  }
  return { value, length, unknown: !keepMarker && ones };
}

interface Track {
  number: number;
  type: number;
  codec: string;
  rate: number;
  channels: number;
  bits: number;
  opusStreams: number;
}

const uint = (b: Buffer, at: number, size: number) => (size >= 1 && size <= 6 ? b.readUIntBE(at, size) : size === 0 ? 0 : Number.NaN);
const float = (b: Buffer, at: number, size: number) => (size === 4 ? b.readFloatBE(at) : size === 8 ? b.readDoubleBE(at) : Number.NaN);

/** Samples at 48 kHz in an Opus packet, from its TOC byte (RFC 6716 §3.1); 0 when it cannot say. */
function opusSamples(b: Buffer, at: number, end: number): number {
  if (at >= end) return 0;
  const toc = b[at]!;
  const config = toc >> 3;
  const frame = config < 12 ? [480, 960, 1920, 2880][config & 3]! : config < 16 ? [480, 960][config & 1]! : [120, 240, 480, 960][config & 3]!;
  const code = toc & 3;
  const frames = code === 0 ? 1 : code < 3 ? 2 : at + 1 < end ? b[at + 1]! & 0x3f : 0;
  return frame * frames;
}

/** The file's playing time in seconds, or null when it is not one whose length can be read. */
export function webmSeconds(b: Buffer): number | null {
  const header = vint(b, 0, true);
  const headerSize = header && vint(b, header.length, false);
  if (!header || header.value !== ID.EBML || !headerSize || headerSize.unknown) return null;
  const headerEnd = header.length + headerSize.length + headerSize.value;
  if (headerEnd > b.length) return null;
  // The DocType inside the header: "webm" or "matroska" (both carry the same elements).
  const head = b.subarray(0, headerEnd);
  if (!head.includes('webm', 0, 'latin1') && !head.includes('matroska', 0, 'latin1')) return null;

  let scale = 1_000_000;
  let duration: number | null = null;
  const tracks: Track[] = [];
  let audio: Track | null = null;
  let chosen = false; // the audio track is chosen at the first block, once
  let cluster = 0;
  let last = 0; // the end of the latest audio block, in ns
  let bytes = 0;
  let blockAt: number | null = null; // the latest audio block's start (ns), for a BlockDuration after it
  let n = 0;
  for (let at = headerEnd; at < b.length; n++) {
    if (n >= MAX_ELEMENTS) return null;
    const id = vint(b, at, true);
    const size = id && vint(b, at + id.length, false);
    if (!id || !size) break;
    const body = at + id.length + size.length;
    if (ENTERED.has(id.value)) {
      // Defaults of RFC 9559 §5.1.4.1.28.6 (SamplingFrequency 8000 Hz) and .1.28.8 (Channels 1).
      if (id.value === ID.TrackEntry && tracks.push({ number: 0, type: 0, codec: '', rate: 8000, channels: 1, bits: 0, opusStreams: 0 }) > MAX_TRACKS) return null;
      if (id.value === ID.Cluster) cluster = 0;
      at = body;
      continue;
    }
    // Any other element of unknown size cannot be skipped; one that runs past the end was cut short.
    if (size.unknown || body + size.value > b.length) break;
    const end = body + size.value;
    const track = tracks.at(-1);
    switch (id.value) {
      case ID.TimecodeScale:
        scale = uint(b, body, size.value);
        break;
      case ID.Duration:
        duration = float(b, body, size.value);
        break;
      case ID.Timecode:
        cluster = uint(b, body, size.value);
        break;
      case ID.TrackNumber:
        if (track) track.number = uint(b, body, size.value);
        break;
      case ID.TrackType:
        if (track) track.type = uint(b, body, size.value);
        break;
      case ID.CodecID:
        if (track) track.codec = size.value <= 32 ? b.toString('latin1', body, end) : '';
        break;
      case ID.CodecPrivate:
        if (track) track.opusStreams = opusHead(b, body, end)?.streams ?? 0;
        break;
      case ID.SamplingFrequency:
        if (track) track.rate = float(b, body, size.value);
        break;
      case ID.Channels:
        if (track) track.channels = uint(b, body, size.value);
        break;
      case ID.BitDepth:
        if (track) track.bits = uint(b, body, size.value);
        break;
      case ID.SimpleBlock:
      case ID.Block: {
        if (!chosen) {
          chosen = true;
          audio = tracks.find((t) => t.type === 2) ?? null;
        }
        const number = vint(b, body, false);
        blockAt = null;
        if (!audio || !number || number.value !== audio.number || body + number.length + 3 > end) break;
        const data = body + number.length + 3;
        const start = (cluster + b.readInt16BE(body + number.length)) * scale;
        const laced = (b[body + number.length + 2]! & 0x06) !== 0;
        const samples = audio.codec === 'A_OPUS' && !laced ? opusSamples(b, data, end) : 0;
        last = Math.max(last, start + (samples / 48_000) * 1e9);
        bytes += end - data;
        blockAt = start;
        break;
      }
      case ID.BlockDuration:
        if (blockAt !== null) last = Math.max(last, blockAt + uint(b, body, size.value) * scale);
        break;
    }
    at = end;
  }
  if (!chosen) audio = tracks.find((t) => t.type === 2) ?? null;
  if (!audio || !(scale > 0)) return null;
  const declared = duration !== null && duration > 0 ? (duration * scale) / 1e9 : null;
  if (declared === null && last === 0) return null;
  const maxBytesPerSecond = audio.codec === 'A_OPUS' ? Math.max(1, audio.opusStreams || audio.channels) * OPUS_MAX_BYTES_PER_SECOND : (audio.rate * audio.channels * (audio.bits || 16)) / 8;
  const floor = maxBytesPerSecond > 0 ? bytes / maxBytesPerSecond : 0;
  return Math.max(declared ?? 0, last / 1e9, floor);
}
