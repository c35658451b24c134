// Audio files of known length, made byte by byte: WAV (RIFF/WAVE PCM with a 440 Hz tone) and MP3
// (MPEG-1/2 Layer III frames of silence, as a decoder reads them: all-zero side information), with a
// Xing or VBRI header when asked. No encoder and no network needed.

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
