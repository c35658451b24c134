// Audio files of known length, made byte by byte: WAV (RIFF/WAVE PCM with a 440 Hz tone) and MP3
// (MPEG-1/2 Layer III frames of silence, as a decoder reads them: all-zero side information), with a
// Xing or VBRI header when asked; M4A (plain and fragmented), Ogg (Opus, Vorbis, FLAC) and WebM
// laid out as their writers lay them out, with filler where the coded audio would be (the gateway
// reads containers, never codecs). No encoder and no network needed.

/** A PCM WAV file: `seconds` of a 440 Hz tone at `rate` Hz, `channels` × `bits`-bit samples. */
export function wavFile(seconds: number, opts: { rate?: number; channels?: number; bits?: 8 | 16 | 24 | 32; trailer?: Buffer } = {}): Buffer {
  const { rate = 16_000, channels = 1, bits = 16 } = opts;
  const block = channels * (bits / 8);
  const frames = Math.round(seconds * rate);
  const data = Buffer.alloc(frames * block);
  if (bits === 16) for (let i = 0; i < frames; i++) for (let c = 0; c < channels; c++) data.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / rate) * 8000), (i * channels + c) * 2);
  const fmt = Buffer.alloc(16);
  fmt.writeUInt16LE(1, 0);
  fmt.writeUInt16LE(channels, 2);
  fmt.writeUInt32LE(rate, 4);
  fmt.writeUInt32LE(rate * block, 8);
  fmt.writeUInt16LE(block, 12);
  fmt.writeUInt16LE(bits, 14);
  const chunk = (id: string, body: Buffer) => {
    const head = Buffer.alloc(8);
    head.write(id, 0, 'latin1');
    head.writeUInt32LE(body.length, 4);
    return Buffer.concat([head, body, body.length & 1 ? Buffer.alloc(1) : Buffer.alloc(0)]);
  };
  const body = Buffer.concat([Buffer.from('WAVE'), chunk('LIST', Buffer.from('INFOISFT\x05\x00\x00\x00test\x00\x00', 'latin1')), chunk('fmt ', fmt), chunk('data', data), opts.trailer ?? Buffer.alloc(0)]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

const V1_KBPS = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const V2_KBPS = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

/** One Layer III frame: MPEG-1 (or MPEG-2 with `mpeg2`) at `kbps`, 48 kHz (24 kHz for MPEG-2), stereo or mono. */
export function mp3Frame(kbps: number, opts: { mpeg2?: boolean; mono?: boolean } = {}): Buffer {
  const v1 = !opts.mpeg2;
  const index = (v1 ? V1_KBPS : V2_KBPS).indexOf(kbps);
  if (index < 1) throw new Error(`no Layer III bitrate ${kbps}`);
  const rate = v1 ? 48_000 : 24_000;
  const length = Math.floor(((v1 ? 144 : 72) * kbps * 1000) / rate);
  const f = Buffer.alloc(length);
  f[0] = 0xff;
  f[1] = v1 ? 0xfb : 0xf3; // sync, version, Layer III, no CRC
  f[2] = (index << 4) | (1 << 2); // bitrate, 48 kHz (24 kHz for MPEG-2), no padding
  f[3] = opts.mono ? 0xc0 : 0x00;
  return f;
}

/** Seconds per frame of `mp3Frame`. */
export const MP3_FRAME_SECONDS = { mpeg1: 1152 / 48_000, mpeg2: 576 / 24_000 };

/**
 * An MP3 file: an ID3v2 tag, then `frames` frames (the bitrates cycle through `kbps`), optionally led
 * by a Xing or VBRI frame that counts `declared` frames (default: `frames`), and an ID3v1 tag.
 */
export function mp3File(frames: number, opts: { kbps?: number[]; header?: 'xing' | 'vbri'; declared?: number; mono?: boolean; id3v1?: boolean } = {}): Buffer {
  const kbps = opts.kbps ?? [128];
  const parts: Buffer[] = [];
  const id3 = Buffer.alloc(10 + 20);
  id3.write('ID3', 0, 'latin1');
  id3[3] = 4;
  id3[9] = 20; // syncsafe size: 20 bytes of (empty) frames
  parts.push(id3);
  if (opts.header) {
    const f = mp3Frame(128, { mono: opts.mono });
    const count = opts.declared ?? frames;
    if (opts.header === 'xing') {
      const at = 4 + (opts.mono ? 17 : 32);
      f.write('Xing', at, 'latin1');
      f.writeUInt32BE(1, at + 4); // frames field present
      f.writeUInt32BE(count, at + 8);
    } else {
      f.write('VBRI', 36, 'latin1');
      f.writeUInt16BE(1, 40);
      f.writeUInt32BE(count, 36 + 14);
    }
    parts.push(f);
  }
  for (let i = 0; i < frames; i++) parts.push(mp3Frame(kbps[i % kbps.length]!, { mono: opts.mono }));
  if (opts.id3v1) parts.push(Buffer.concat([Buffer.from('TAG'), Buffer.alloc(125)]));
  return Buffer.concat(parts);
}

// ---- MP4 / M4A (ISO/IEC 14496-12) ----

/** A box: 32-bit size (or 1 and a 64-bit size with `large`), type, body. */
export function box(type: string, body: Buffer | Buffer[], opts: { large?: boolean } = {}): Buffer {
  const payload = Array.isArray(body) ? Buffer.concat(body) : body;
  const head = Buffer.alloc(opts.large ? 16 : 8);
  head.write(type, 4, 'latin1');
  if (opts.large) {
    head.writeUInt32BE(1, 0);
    head.writeBigUInt64BE(BigInt(16 + payload.length), 8);
  } else {
    head.writeUInt32BE(8 + payload.length, 0);
  }
  return Buffer.concat([head, payload]);
}

/** A full box: version and flags before the body. */
function fullBox(type: string, version: number, flags: number, body: Buffer): Buffer {
  const vf = Buffer.alloc(4);
  vf.writeUInt32BE(((version & 0xff) << 24) | (flags & 0xffffff), 0);
  return box(type, [vf, body]);
}

/** The fields of an mvhd or mdhd up to the duration (version 0: 32-bit times, 1: 64-bit). */
function timeHeader(type: 'mvhd' | 'mdhd', version: number, timescale: number, duration: number, rest: number): Buffer {
  const body = Buffer.alloc((version === 1 ? 28 : 16) + rest);
  const at = version === 1 ? 16 : 8;
  body.writeUInt32BE(timescale, at);
  if (version === 1) body.writeBigUInt64BE(BigInt(duration), at + 4);
  else body.writeUInt32BE(duration, at + 4);
  return fullBox(type, version, 0, body);
}

export interface M4aOptions {
  /** The moov after the mdat, as many encoders (and phones) write it. */
  moovAtEnd?: boolean;
  /** Version 1 (64-bit) headers. */
  version1?: boolean;
  /** The mdat with a 64-bit size, or with size 0 ("to the end of the file"; needs moovAtEnd false). */
  mdatSize?: 'large' | 'zero';
  /** What the mvhd says (default: the length); 0: unknown, so the sound track's mdhd counts. */
  mvhdDuration?: number;
  /** AAC frame bytes (default 200: ~69 kbit/s at 44.1 kHz). */
  frameBytes?: number;
  /** A video track before the sound track. */
  video?: boolean;
}

const AAC_RATE = 44_100;
const AAC_FRAME = 1024;

function soundTrak(id: number, frames: number, frameBytes: number, version: number, handler = 'soun'): Buffer {
  const tkhd = Buffer.alloc(version === 1 ? 88 : 76);
  tkhd.writeUInt32BE(id, version === 1 ? 16 : 8);
  const hdlr = Buffer.alloc(21);
  hdlr.write(handler, 4, 'latin1');
  const entry = Buffer.alloc(28);
  entry.writeUInt16BE(1, 6); // data_reference_index
  entry.writeUInt16BE(2, 16); // channelcount
  entry.writeUInt16BE(16, 18); // samplesize
  entry.writeUInt32BE(AAC_RATE * 65536, 24); // samplerate, 16.16
  const stsd = Buffer.alloc(4);
  stsd.writeUInt32BE(1, 0);
  const stts = Buffer.alloc(12);
  stts.writeUInt32BE(1, 0);
  stts.writeUInt32BE(frames, 4);
  stts.writeUInt32BE(AAC_FRAME, 8);
  const stsz = Buffer.alloc(8 + 4 * frames);
  stsz.writeUInt32BE(frames, 4);
  for (let i = 0; i < frames; i++) stsz.writeUInt32BE(frameBytes, 8 + 4 * i);
  return box('trak', [
    fullBox('tkhd', version, 3, tkhd),
    box('mdia', [
      timeHeader('mdhd', version, AAC_RATE, frames * AAC_FRAME, 4),
      fullBox('hdlr', 0, 0, hdlr),
      box('minf', [box('stbl', [fullBox('stsd', 0, 0, Buffer.concat([stsd, box(handler === 'soun' ? 'mp4a' : 'avc1', entry)])), fullBox('stts', 0, 0, stts), fullBox('stsz', 0, 0, stsz)])]),
    ]),
  ]);
}

/** An M4A file: `seconds` of 44.1 kHz stereo AAC-sized frames (zeros; nothing here decodes them). */
export function m4aFile(seconds: number, opts: M4aOptions = {}): Buffer {
  const version = opts.version1 ? 1 : 0;
  const frameBytes = opts.frameBytes ?? 200;
  const frames = Math.round((seconds * AAC_RATE) / AAC_FRAME);
  const ftyp = box('ftyp', Buffer.from('M4A \0\0\x02\0M4A mp42isom', 'latin1'));
  const movieScale = 1000;
  const mvhd = timeHeader('mvhd', version, movieScale, opts.mvhdDuration ?? Math.round(seconds * movieScale), 80);
  const traks = [...(opts.video ? [soundTrak(1, 10, 5000, version, 'vide')] : []), soundTrak(opts.video ? 2 : 1, frames, frameBytes, version)];
  const moov = box('moov', [mvhd, ...traks]);
  const data = Buffer.alloc(frames * frameBytes);
  if (opts.mdatSize === 'zero') {
    const head = Buffer.alloc(8);
    head.write('mdat', 4, 'latin1');
    return Buffer.concat([ftyp, moov, head, data]);
  }
  const mdat = box('mdat', data, { large: opts.mdatSize === 'large' });
  return Buffer.concat(opts.moovAtEnd ? [ftyp, mdat, moov] : [ftyp, moov, mdat]);
}

/** A fragmented MP4 (as Safari's MediaRecorder writes): an empty moov with trex, then moof + mdat pairs of one second each. */
export function fragmentedM4aFile(seconds: number, opts: { mehd?: boolean; tfdt?: boolean } = {}): Buffer {
  const perFragment = Math.round(AAC_RATE / AAC_FRAME);
  const total = Math.round((seconds * AAC_RATE) / AAC_FRAME);
  const trex = Buffer.alloc(20);
  trex.writeUInt32BE(1, 0);
  trex.writeUInt32BE(1, 4);
  trex.writeUInt32BE(AAC_FRAME, 8); // default duration
  const mehd = Buffer.alloc(4);
  mehd.writeUInt32BE(Math.round(seconds * 1000), 0);
  const moov = box('moov', [
    timeHeader('mvhd', 0, 1000, 0, 80),
    soundTrak(1, 0, 0, 0),
    box('mvex', [...(opts.mehd ? [fullBox('mehd', 0, 0, mehd)] : []), fullBox('trex', 0, 0, trex)]),
  ]);
  const parts = [box('ftyp', Buffer.from('iso5\0\0\0\x01iso5mp41', 'latin1')), moov];
  for (let done = 0, seq = 1; done < total; seq++) {
    const n = Math.min(perFragment, total - done);
    const tfhd = Buffer.alloc(4);
    tfhd.writeUInt32BE(1, 0);
    const tfdt = Buffer.alloc(4);
    tfdt.writeUInt32BE(done * AAC_FRAME, 0);
    // trun with sample-size per sample (0x200) and data offset (0x01); durations from trex.
    const trun = Buffer.alloc(8 + 4 * n);
    trun.writeUInt32BE(n, 0);
    for (let i = 0; i < n; i++) trun.writeUInt32BE(180, 8 + 4 * i);
    const mfhd = Buffer.alloc(4);
    mfhd.writeUInt32BE(seq, 0);
    parts.push(box('moof', [fullBox('mfhd', 0, 0, mfhd), box('traf', [fullBox('tfhd', 0, 0x020000, tfhd), ...(opts.tfdt === false ? [] : [fullBox('tfdt', 0, 0, tfdt)]), fullBox('trun', 0, 0x201, trun)])]));
    parts.push(box('mdat', Buffer.alloc(180 * n)));
    done += n;
  }
  return Buffer.concat(parts);
}

// ---- Ogg (RFC 3533) ----

const OGG_CRC = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let j = 0; j < 8; j++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    t[i] = r >>> 0;
  }
  return t;
})();

/** One Ogg page holding whole packets (255 lacing values at most), with its CRC. */
export function oggPage(serial: number, sequence: number, granule: bigint, packets: Buffer[], flags = 0): Buffer {
  const lacing: number[] = [];
  for (const p of packets) {
    for (let left = p.length; ; left -= 255) {
      lacing.push(Math.min(left, 255));
      if (left < 255) break;
    }
  }
  const head = Buffer.alloc(27 + lacing.length);
  head.write('OggS', 0, 'latin1');
  head[5] = flags;
  head.writeBigInt64LE(granule, 6);
  head.writeUInt32LE(serial, 14);
  head.writeUInt32LE(sequence, 18);
  head[26] = lacing.length;
  lacing.forEach((l, i) => (head[27 + i] = l));
  const page = Buffer.concat([head, ...packets]);
  let crc = 0;
  for (const byte of page) crc = ((crc << 8) ^ OGG_CRC[((crc >>> 24) ^ byte) & 0xff]!) >>> 0;
  page.writeUInt32LE(crc, 22);
  return page;
}

/**
 * An Ogg stream: its header packets on their own pages, then `packets` of audio, up to 50 to a page
 * (fewer when their lacing values would pass 255), each page's granule from `granuleAfter`.
 */
function oggStream(serial: number, headers: Buffer[], packets: Buffer[], granuleAfter: (packetsDone: number) => bigint): Buffer[] {
  const pages = headers.map((h, i) => oggPage(serial, i, 0n, [h], i === 0 ? 0x02 : 0));
  for (let i = 0; i < packets.length; ) {
    let n = 0;
    for (let lacing = 0; i + n < packets.length && n < 50; n++) {
      lacing += Math.floor(packets[i + n]!.length / 255) + 1;
      if (lacing > 255) break;
    }
    i += n;
    pages.push(oggPage(serial, pages.length, granuleAfter(i), packets.slice(i - n, i), i >= packets.length ? 0x04 : 0));
  }
  return pages;
}

/** An Ogg Opus file: `seconds` of 20 ms packets (TOC: SILK wideband 20 ms, one frame), with `preSkip` samples at 48 kHz to drop. */
export function oggOpusFile(seconds: number, opts: { preSkip?: number; packetBytes?: number; serial?: number } = {}): Buffer {
  const preSkip = opts.preSkip ?? 312;
  const head = Buffer.alloc(19);
  head.write('OpusHead', 0, 'latin1');
  head[8] = 1;
  head[9] = 1;
  head.writeUInt16LE(preSkip, 10);
  head.writeUInt32LE(16_000, 12);
  const tags = Buffer.concat([Buffer.from('OpusTags'), Buffer.from([4, 0, 0, 0]), Buffer.from('test'), Buffer.alloc(4)]);
  const count = Math.round(seconds / 0.02);
  const packet = Buffer.alloc(opts.packetBytes ?? 40, 0x55);
  packet[0] = 9 << 3;
  return Buffer.concat(oggStream(opts.serial ?? 0x4f505553, [head, tags], Array.from({ length: count }, () => packet), (n) => BigInt(preSkip + n * 960)));
}

/** An Ogg Vorbis file: `seconds` at `rate` Hz, in packets of 1024 samples (their bytes are filler). */
export function oggVorbisFile(seconds: number, rate = 44_100): Buffer {
  const id = Buffer.alloc(30);
  id[0] = 1;
  id.write('vorbis', 1, 'latin1');
  id[11] = 2;
  id.writeUInt32LE(rate, 12);
  id.writeInt32LE(128_000, 20);
  id[28] = 0xb8;
  id[29] = 1;
  const comment = Buffer.concat([Buffer.from('\x03vorbis', 'latin1'), Buffer.alloc(9)]);
  const setup = Buffer.concat([Buffer.from('\x05vorbis', 'latin1'), Buffer.alloc(300)]);
  const total = Math.round(seconds * rate);
  const count = Math.ceil(total / 1024);
  return Buffer.concat(oggStream(0x766f7262, [id, comment, setup], Array.from({ length: count }, () => Buffer.alloc(300, 0x11)), (n) => BigInt(Math.min(total, n * 1024))));
}

/** A FLAC-in-Ogg file: `seconds` at `rate` Hz mono 16-bit, in frames of 4096 samples. */
export function oggFlacFile(seconds: number, rate = 16_000): Buffer {
  const total = Math.round(seconds * rate);
  const info = Buffer.alloc(34);
  info.writeUInt16BE(4096, 0);
  info.writeUInt16BE(4096, 2);
  info.writeUIntBE((rate << 4) | (0 << 1) | (15 >> 4), 10, 3);
  info[13] = (15 & 0x0f) << 4;
  info.writeUInt32BE(total, 14);
  const first = Buffer.concat([Buffer.from('\x7fFLAC\x01\x00\x00\x01fLaC', 'latin1'), Buffer.from([0x00, 0, 0, 34]), info]);
  const count = Math.ceil(total / 4096);
  return Buffer.concat(oggStream(0x666c6163, [first], Array.from({ length: count }, () => Buffer.alloc(2000, 0x22)), (n) => BigInt(Math.min(total, n * 4096))));
}

// ---- WebM / Matroska (RFC 9559, EBML RFC 8794) ----

/** An element: its ID (its bytes as written), an 8-byte size (or unknown), its body. */
export function ebml(id: number, body: Buffer | Buffer[] | string, opts: { unknownSize?: boolean } = {}): Buffer {
  const idBytes = Buffer.alloc(4);
  idBytes.writeUInt32BE(id, 0);
  const payload = typeof body === 'string' ? Buffer.from(body, 'latin1') : Array.isArray(body) ? Buffer.concat(body) : body;
  const size = Buffer.alloc(8);
  if (opts.unknownSize) size.fill(0xff, 1);
  else size.writeBigUInt64BE(BigInt(payload.length), 0);
  size[0] = 0x01; // an 8-byte size: the length marker alone in the first byte
  return Buffer.concat([idBytes.subarray(idBytes.findIndex((x) => x !== 0)), size, payload]);
}

const uintBody = (v: number, bytes = 4) => {
  const b = Buffer.alloc(bytes);
  b.writeUIntBE(v, 0, bytes);
  return b;
};
const f64 = (v: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(v, 0);
  return b;
};

export interface WebmOptions {
  /** Write Info's Duration (ffmpeg does; MediaRecorder does not). Default true. */
  duration?: boolean;
  /** What Duration says, in ms (default: the length). */
  declaredMs?: number;
  /** MediaRecorder's layout: a Segment and Clusters of unknown size. */
  live?: boolean;
  /** A video track (number 1) whose blocks are interleaved; the audio is track 2. */
  video?: boolean;
  /** Opus packet bytes (default 40: 16 kbit/s). */
  packetBytes?: number;
  /** Every Cluster and block at time 0, as a file whose times lie. */
  timesZero?: boolean;
}

/** A WebM file: `seconds` of Opus in 20 ms SimpleBlocks, one Cluster a second, TimecodeScale 1 ms. */
export function webmFile(seconds: number, opts: WebmOptions = {}): Buffer {
  const audioTrack = opts.video ? 2 : 1;
  const opusHead = Buffer.alloc(19);
  opusHead.write('OpusHead', 0, 'latin1');
  opusHead[8] = 1;
  opusHead[9] = 1;
  opusHead.writeUInt16LE(312, 10);
  opusHead.writeUInt32LE(48_000, 12);
  const header = ebml(0x1a45dfa3, [ebml(0x4286, uintBody(1, 1)), ebml(0x4282, 'webm'), ebml(0x4287, uintBody(4, 1)), ebml(0x4285, uintBody(2, 1))]);
  const info = ebml(0x1549a966, [ebml(0x2ad7b1, uintBody(1_000_000)), ebml(0x4d80, 'test'), ...(opts.duration === false ? [] : [ebml(0x4489, f64(opts.declaredMs ?? seconds * 1000))])]);
  const entries = [
    ...(opts.video ? [ebml(0xae, [ebml(0xd7, uintBody(1, 1)), ebml(0x83, uintBody(1, 1)), ebml(0x86, 'V_VP8'), ebml(0xe0, [ebml(0xb0, uintBody(640, 2)), ebml(0xba, uintBody(480, 2))])])] : []),
    ebml(0xae, [ebml(0xd7, uintBody(audioTrack, 1)), ebml(0x83, uintBody(2, 1)), ebml(0x86, 'A_OPUS'), ebml(0x63a2, opusHead), ebml(0xe1, [ebml(0xb5, f64(48_000)), ebml(0x9f, uintBody(1, 1))])]),
  ];
  const tracks = ebml(0x1654ae6b, entries);
  const clusters: Buffer[] = [];
  const blocks = Math.round(seconds / 0.02);
  for (let first = 0; first < blocks; first += 50) {
    const children = [ebml(0xe7, uintBody(opts.timesZero ? 0 : first * 20))];
    for (let i = first; i < Math.min(blocks, first + 50); i++) {
      const block = Buffer.alloc(4 + (opts.packetBytes ?? 40), 0x55);
      block[0] = 0x80 | audioTrack;
      block.writeInt16BE(opts.timesZero ? 0 : (i - first) * 20, 1);
      block[3] = 0x80; // keyframe
      block[4] = 9 << 3; // Opus TOC: SILK wideband 20 ms, one frame
      children.push(ebml(0xa3, block));
      if (opts.video && i % 5 === 0) {
        const frame = Buffer.alloc(4 + 500, 0x66);
        frame[0] = 0x81;
        frame.writeInt16BE((i - first) * 20, 1);
        children.push(ebml(0xa3, frame));
      }
    }
    clusters.push(ebml(0x1f43b675, children, { unknownSize: opts.live }));
  }
  const segment = ebml(0x18538067, [info, tracks, ...clusters], { unknownSize: opts.live });
  return Buffer.concat([header, segment]);
}

// ---- hostile variants ----

/**
 * What `read` makes of every prefix of `b` and of `b` with single bytes overwritten (0x00, 0x01, 0x7f,
 * 0xff at evenly spread offsets): the cases that threw or gave anything but null or a length within a
 * day. Empty when the reader is safe on them.
 */
export function unsafeLengths(b: Buffer, read: (b: Buffer) => { seconds: number } | null, cases = 400): string[] {
  const bad: string[] = [];
  const check = (what: string, x: Buffer) => {
    try {
      const s = read(x)?.seconds ?? null;
      if (s !== null && !(Number.isFinite(s) && s >= 0 && s <= 86_400)) bad.push(`${what}: ${s}`);
    } catch (err) {
      bad.push(`${what}: threw ${(err as Error).message}`);
    }
  };
  const step = Math.max(1, Math.floor(b.length / cases));
  for (let n = 0; n <= b.length; n += step) check(`prefix ${n}`, b.subarray(0, n));
  for (let i = 0; i < b.length; i += step) {
    for (const v of [0x00, 0x01, 0x7f, 0xff]) {
      const c = Buffer.from(b);
      c[i] = v;
      check(`byte ${i} = ${v}`, c);
    }
  }
  return bad;
}
