// How long an MP4, M4A or MOV file plays (ISO/IEC 14496-12, the ISO base media file format; QuickTime
// is its ancestor and uses the same boxes), read from its boxes: the longest of what `moov`/`mvhd`
// (§8.2.2: timescale and duration, 32 bits in version 0, 64 in version 1) and the sound track's
// `mdhd` (§8.4.2) say, and for a fragmented file (Safari's MediaRecorder) of `mvex`/`mehd` (§8.8.2)
// and the end of the sound track's last fragment: its `tfdt` (§8.8.12) plus the durations of its
// `trun` samples (§8.8.8, defaults from `tfhd` and `trex`). Boxes are walked by their sizes (64-bit
// when the size is 1, to the end of the enclosing box when it is 0), so a `moov` after the `mdat`
// is found as readily as one before it; a `moov` cut short is read as far as it goes. The sound
// track's sample sizes (`stsz`, or those of its fragments) are the floor: they cannot play shorter
// than at the uncompressed rate its sample entry names (§12.2.3: channels × sample size × rate).

/** Boxes read in one file at most: a file of a few MB holds dozens, a fragmented hour a few thousand. */
const MAX_BOXES = 200_000;

interface Box {
  type: string;
  /** Where the box's body starts and ends (clipped to what encloses it). */
  body: number;
  end: number;
}

interface Walk {
  b: Buffer;
  boxes: number;
}

/** The boxes within [from, to); a box cut short ends at `to`; null once the file stops making sense. */
function children(w: Walk, from: number, to: number): Box[] | null {
  const out: Box[] = [];
  for (let at = from; at + 8 <= to; ) {
    if (++w.boxes > MAX_BOXES) return null;
    let size = w.b.readUInt32BE(at);
    let head = 8;
    if (size === 1) {
      if (at + 16 > to) break;
      size = Number(w.b.readBigUInt64BE(at + 8));
      head = 16;
    } else if (size === 0) {
      size = to - at;
    }
    if (size < head) return null;
    const end = Math.min(at + size, to);
    out.push({ type: w.b.toString('latin1', at + 4, at + 8), body: at + head, end });
    at = end;
  }
  return out;
}

const find = (boxes: Box[] | null, type: string) => boxes?.find((x) => x.type === type) ?? null;

function inside(w: Walk, box: Box | null, ...path: string[]): Box | null {
  for (const type of path) box = box && find(children(w, box.body, box.end), type);
  return box;
}

/** Timescale and duration of an `mvhd` or `mdhd` (they share the layout up to the duration); the
 *  duration is null when 0 or all ones ("cannot be determined"). */
function header(b: Buffer, box: Box | null): { timescale: number; duration: number | null } | null {
  if (!box) return null;
  const v1 = b[box.body] === 1;
  const at = box.body + 4 + (v1 ? 16 : 8);
  if (at + (v1 ? 12 : 8) > box.end) return null;
  const duration = v1 ? Number(b.readBigUInt64BE(at + 4)) : b.readUInt32BE(at + 4);
  return { timescale: b.readUInt32BE(at), duration: duration === 0 || duration === (v1 ? 2 ** 64 : 0xffffffff) ? null : duration };
}

const seconds = (duration: number | null | undefined, timescale: number | undefined) => (duration && timescale ? duration / timescale : null);

interface SoundTrack {
  id: number;
  timescale: number;
  /** Bytes per second of the samples uncompressed, or 0 when the sample entry does not say. */
  rawBytesPerSecond: number;
  /** The total of `stsz`'s sample sizes. */
  bytes: number;
  mdhdSeconds: number | null;
}

function soundTrack(w: Walk, moov: Box[]): SoundTrack | null {
  const b = w.b;
  for (const trak of moov.filter((x) => x.type === 'trak')) {
    const mdia = inside(w, trak, 'mdia');
    const parts = mdia && children(w, mdia.body, mdia.end);
    const hdlr = find(parts, 'hdlr');
    if (!parts || !hdlr || hdlr.body + 12 > hdlr.end || b.toString('latin1', hdlr.body + 8, hdlr.body + 12) !== 'soun') continue;
    const tkhd = inside(w, trak, 'tkhd');
    const idAt = tkhd ? tkhd.body + (b[tkhd.body] === 1 ? 20 : 12) : 0;
    const id = tkhd && idAt + 4 <= tkhd.end ? b.readUInt32BE(idAt) : 0;
    const mdhd = header(b, find(parts, 'mdhd'));
    const stbl = inside(w, find(parts, 'minf'), 'stbl');
    const table = stbl && children(w, stbl.body, stbl.end);
    // The first sample entry of `stsd`: 8 bytes of box header, 8 of SampleEntry, 8 reserved, then
    // channelcount(16) samplesize(16) pre_defined(16) reserved(16) samplerate(16.16).
    const stsd = find(table, 'stsd');
    const entry = stsd ? stsd.body + 8 : 0;
    let rawBytesPerSecond = 0;
    if (stsd && entry + 36 <= stsd.end) {
      const channels = b.readUInt16BE(entry + 24);
      const bits = b.readUInt16BE(entry + 26);
      const rate = b.readUInt32BE(entry + 32) / 65536;
      // QuickTime's version 2 entries keep the real rate elsewhere and 1.0 here: no floor from them.
      if (rate >= 1000) rawBytesPerSecond = (rate * channels * (bits || 16)) / 8;
    }
    const stsz = find(table, 'stsz');
    let bytes = 0;
    if (stsz && stsz.body + 12 <= stsz.end) {
      const size = b.readUInt32BE(stsz.body + 4);
      const count = b.readUInt32BE(stsz.body + 8);
      if (size) bytes = size * count;
      else for (let at = stsz.body + 12, n = 0; n < count && at + 4 <= stsz.end; n++, at += 4) bytes += b.readUInt32BE(at);
    }
    return { id, timescale: mdhd?.timescale ?? 0, rawBytesPerSecond, bytes, mdhdSeconds: seconds(mdhd?.duration, mdhd?.timescale) };
  }
  return null;
}

/** The sound track's fragments: where its last one ends (in its timescale) and its samples' bytes. */
function fragments(w: Walk, top: Box[], track: SoundTrack, mvex: Box[] | null): { end: number; bytes: number } {
  const b = w.b;
  let defaults = { duration: 0, size: 0 };
  for (const trex of mvex?.filter((x) => x.type === 'trex') ?? []) {
    if (trex.body + 24 <= trex.end && b.readUInt32BE(trex.body + 4) === track.id) defaults = { duration: b.readUInt32BE(trex.body + 12), size: b.readUInt32BE(trex.body + 16) };
  }
  let end = 0;
  let bytes = 0;
  for (const moof of top.filter((x) => x.type === 'moof')) {
    for (const traf of children(w, moof.body, moof.end)?.filter((x) => x.type === 'traf') ?? []) {
      const parts = children(w, traf.body, traf.end);
      const tfhd = find(parts, 'tfhd');
      if (!parts || !tfhd || tfhd.body + 8 > tfhd.end || b.readUInt32BE(tfhd.body + 4) !== track.id) continue;
      // tfhd: flags, track_ID, then base-data-offset (0x01, 64 bits), sample-description-index (0x02),
      // default-sample-duration (0x08), default-sample-size (0x10), each present when flagged.
      const tf = b.readUInt32BE(tfhd.body) & 0xffffff;
      let at = tfhd.body + 8 + (tf & 0x01 ? 8 : 0) + (tf & 0x02 ? 4 : 0);
      let { duration, size } = defaults;
      if (tf & 0x08) {
        if (at + 4 <= tfhd.end) duration = b.readUInt32BE(at);
        at += 4;
      }
      if (tf & 0x10 && at + 4 <= tfhd.end) size = b.readUInt32BE(at);
      const tfdt = find(parts, 'tfdt');
      let t = end; // without a tfdt, fragments follow one another
      if (tfdt && tfdt.body + 8 <= tfdt.end) t = b[tfdt.body] === 1 && tfdt.body + 12 <= tfdt.end ? Number(b.readBigUInt64BE(tfdt.body + 4)) : b.readUInt32BE(tfdt.body + 4);
      for (const trun of parts.filter((x) => x.type === 'trun')) {
        if (trun.body + 8 > trun.end) continue;
        // trun: flags, sample_count, data_offset (0x01), first_sample_flags (0x04), then per sample
        // its duration (0x100), size (0x200), flags (0x400) and composition offset (0x800) when flagged.
        const f = b.readUInt32BE(trun.body) & 0xffffff;
        const count = b.readUInt32BE(trun.body + 4);
        const each = [0x100, 0x200, 0x400, 0x800].filter((bit) => f & bit).length * 4;
        if (each === 0) {
          t += count * duration;
          bytes += count * size;
          continue;
        }
        for (let p = trun.body + 8 + (f & 0x01 ? 4 : 0) + (f & 0x04 ? 4 : 0), n = 0; n < count && p + each <= trun.end; n++, p += each) {
          t += f & 0x100 ? b.readUInt32BE(p) : duration;
          bytes += f & 0x200 ? b.readUInt32BE(p + (f & 0x100 ? 4 : 0)) : size;
        }
      }
      end = Math.max(end, t);
    }
  }
  return { end, bytes };
}

/** The file's playing time in seconds, or null when its boxes do not say. */
export function mp4Seconds(b: Buffer): number | null {
  const w: Walk = { b, boxes: 0 };
  const top = children(w, 0, b.length);
  const moovBox = find(top, 'moov');
  const moov = moovBox && children(w, moovBox.body, moovBox.end);
  if (!top || !moov) return null;
  const track = soundTrack(w, moov);
  const mvhd = header(b, find(moov, 'mvhd'));
  const mvex = inside(w, moovBox, 'mvex');
  const mvexBoxes = mvex && children(w, mvex.body, mvex.end);
  const said = [seconds(mvhd?.duration, mvhd?.timescale), track?.mdhdSeconds ?? null];
  const mehd = find(mvexBoxes, 'mehd');
  if (mehd && mehd.body + 8 <= mehd.end) {
    const v1 = b[mehd.body] === 1 && mehd.body + 12 <= mehd.end;
    said.push(seconds(v1 ? Number(b.readBigUInt64BE(mehd.body + 4)) : b.readUInt32BE(mehd.body + 4), mvhd?.timescale));
  }
  let bytes = track?.bytes ?? 0;
  if (track && mvexBoxes) {
    const f = fragments(w, top, track, mvexBoxes);
    bytes += f.bytes;
    said.push(seconds(f.end, track.timescale));
  }
  const known = said.filter((x) => x !== null);
  const declared = known.length ? Math.max(...known) : null;
  if (w.boxes > MAX_BOXES || declared === null) return null;
  const floor = track?.rawBytesPerSecond ? bytes / (track.rawBytesPerSecond * 1.05) : 0;
  return Math.max(declared, floor);
}
