// How long an Ogg file plays (RFC 3533), read from its pages: the granule position of the audio
// stream's last page, which counts samples — Opus: at 48 kHz, less the pre-skip of its OpusHead
// (RFC 7845 §4, §5.1); Vorbis: at the rate of its identification header (Vorbis I §4.2.2); FLAC: at
// the rate of the STREAMINFO its first packet carries (https://xiph.org/flac/ogg_mapping.html).
// Pages are walked by their headers (27 bytes and a segment table each), resynchronising on the next
// "OggS" after a page that does not parse; a page cut short ends the walk. The stream's pages cannot
// play shorter than their bytes at the codec's highest rate: Opus 510 kbit/s a stream (RFC 6716
// §2.1.1), Vorbis and FLAC the uncompressed rate their header names.

/** Pages read in one file at most: an hour of speech in Opus is a few thousand. */
const MAX_PAGES = 500_000;
/** Opus's highest bitrate per stream (RFC 6716 §2.1.1), plus Ogg's framing (lacing values, page headers). */
export const OPUS_MAX_BYTES_PER_SECOND = (510_000 / 8) * 1.02;

export interface OpusHead {
  channels: number;
  /** Samples at 48 kHz to drop from the start of the decoded stream. */
  preSkip: number;
  /** Opus streams in the packets (more than one for channel mapping families other than 0). */
  streams: number;
}

/** RFC 7845 §5.1: "OpusHead", version (major 0), channels, pre-skip, rate, gain, mapping family, [streams]. */
export function opusHead(b: Buffer, at = 0, end = b.length): OpusHead | null {
  if (end - at < 19 || b.toString('latin1', at, at + 8) !== 'OpusHead' || b[at + 8]! >> 4 !== 0) return null;
  const channels = b[at + 9]!;
  const family = b[at + 18]!;
  const streams = family === 0 ? 1 : end - at >= 20 ? b[at + 19]! : 0;
  if (channels === 0 || streams === 0) return null;
  return { channels, preSkip: b.readUInt16LE(at + 10), streams };
}

interface Codec {
  /** Granule positions per second. */
  rate: number;
  /** Granule positions before the first sample that plays. */
  skip: number;
  maxBytesPerSecond: number;
}

/** The codec of a stream from its first packet; null when it is not Opus, Vorbis or FLAC. */
function codecOf(b: Buffer, at: number, end: number): Codec | null {
  const opus = opusHead(b, at, end);
  if (opus) return { rate: 48_000, skip: opus.preSkip, maxBytesPerSecond: opus.streams * OPUS_MAX_BYTES_PER_SECOND };
  // Vorbis identification header: 0x01 "vorbis", version 0, channels, rate (Vorbis I §4.2.2).
  if (end - at >= 30 && b[at] === 1 && b.toString('latin1', at + 1, at + 7) === 'vorbis' && b.readUInt32LE(at + 7) === 0) {
    const channels = b[at + 11]!;
    const rate = b.readUInt32LE(at + 12);
    return channels && rate ? { rate, skip: 0, maxBytesPerSecond: rate * channels * 2 } : null;
  }
  // FLAC: 0x7F "FLAC", version, header count, "fLaC", then the STREAMINFO block (RFC 9639 §8.2).
  if (end - at >= 13 + 4 + 34 && b[at] === 0x7f && b.toString('latin1', at + 1, at + 5) === 'FLAC' && b.toString('latin1', at + 9, at + 13) === 'fLaC' && (b[at + 13]! & 0x7f) === 0) {
    const info = at + 17;
    const rate = b.readUIntBE(info + 10, 3) >> 4;
    const channels = ((b[info + 12]! >> 1) & 7) + 1;
    const bits = (((b[info + 12]! & 1) << 4) | (b[info + 13]! >> 4)) + 1;
    return rate ? { rate, skip: 0, maxBytesPerSecond: ((rate * channels * bits) / 8) * 1.05 } : null;
  }
  return null;
}

interface Page {
  bos: boolean;
  /** -1 when no packet ends on the page. */
  granule: number;
  serial: number;
  /** Where its first packet starts, and where the page ends. */
  body: number;
  end: number;
}

/** The page at `at`, or null when none starts there or it runs past the end of the file. */
function pageAt(b: Buffer, at: number): Page | null {
  if (at + 27 > b.length || b.toString('latin1', at, at + 4) !== 'OggS' || b[at + 4] !== 0) return null;
  const segments = b[at + 26]!;
  const body = at + 27 + segments;
  if (body > b.length) return null;
  let end = body;
  for (let i = 0; i < segments; i++) end += b[at + 27 + i]!;
  if (end > b.length) return null;
  return { bos: (b[at + 5]! & 0x02) !== 0, granule: Number(b.readBigInt64LE(at + 6)), serial: b.readUInt32LE(at + 14), body, end };
}

/** The file's playing time in seconds, or null when it holds no Opus, Vorbis or FLAC stream that says. */
export function oggSeconds(b: Buffer): number | null {
  let stream: { serial: number; codec: Codec } | null = null;
  const other = new Set<number>();
  let granule = -1;
  let bytes = 0;
  let at = 0;
  for (let n = 0; at < b.length; n++) {
    if (n >= MAX_PAGES) return null;
    const page = pageAt(b, at);
    if (!page) {
      // Not a page (or one cut short): the next capture pattern, if there is one, or the end.
      const next = b.indexOf('OggS', at + 1, 'latin1');
      if (next === -1) break;
      at = next;
      continue;
    }
    at = page.end;
    // The first stream that is audio is the one measured (a file may also carry video, e.g. Theora).
    if (page.bos && !stream) {
      const codec = codecOf(b, page.body, page.end);
      if (codec) stream = { serial: page.serial, codec };
      else other.add(page.serial);
    }
    if (other.has(page.serial)) continue;
    // Pages of a later link of a chained file count for the floor too.
    bytes += page.end - page.body;
    if (stream && page.serial === stream.serial && page.granule > granule) granule = page.granule;
  }
  if (!stream || granule < 0) return null;
  const { rate, skip, maxBytesPerSecond } = stream.codec;
  return Math.max(Math.max(0, granule - skip) / rate, bytes / maxBytesPerSecond);
}
