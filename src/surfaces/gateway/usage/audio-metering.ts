// Audio priced as providers bill it (https://openai.com/api/pricing): transcriptions and translations
// by the minute of input audio (whisper-1, $0.006/min), speech by the million characters of input
// (tts-1 $15, tts-1-hd $30). Such a charge comes on top of the call's token cost (zero for models
// that report no tokens); a model has the one kind of price or the other.
//
// Admission reserves the worst case: speech's characters are known before the call, so exactly;
// an upload's length is read from the file when it is a WAV, MP3, FLAC, MP4/M4A, Ogg (Opus, Vorbis,
// FLAC) or WebM file (audio-duration.ts), and otherwise assumed at UNKNOWN_BYTES_PER_SECOND. Settling charges, in this order of trust: the
// length the provider reports (whisper-1's `usage.seconds`, verbose_json's `duration`), the length
// read from the file, nothing when the provider reported tokens instead (gpt-4o-transcribe: priced
// per token), and otherwise the reservation's assumed length, so that no call goes unpriced.
import type { Model } from '../catalog/catalog.ts';
import type { AudioForm } from '../providers/openai-base/audio-form.ts';
import type { Json, Operation, Usage } from '../providers/types.ts';

/** 16 kbit/s: below what speech codecs are used at for transcription, so a length assumed from the
 *  size is rather too long than too short (a 1 MB file: 500 s). */
export const UNKNOWN_BYTES_PER_SECOND = 2000;

export interface AudioCharge {
  usd: number;
  /** Seconds of input audio charged for (transcriptions, translations). */
  seconds: number;
  /** Characters of speech input charged for. */
  characters: number;
}

export const NO_AUDIO_CHARGE: AudioCharge = Object.freeze({ usd: 0, seconds: 0, characters: 0 });

export interface AudioMeter {
  /** What admission reserves on top of the token estimate. */
  reserveUsd: number;
  /** The charge once the call is over; `answered`: the provider began its answer (it did the work). */
  settle(usage: Usage | null, answered: boolean): AudioCharge;
}

type Prices = Pick<Model, 'audioInputPricePerMinute' | 'ttsPricePerMchar'>;

/** Unicode code points, as "characters" are counted for speech. */
function characters(v: unknown): number {
  if (typeof v !== 'string') return 0;
  let n = 0;
  for (const _ of v) n++;
  return n;
}

/** The meter for an audio call; null for every other operation. */
export function audioMeter(model: Prices, op: Operation, body: Json, form: Pick<AudioForm, 'fileBytes' | 'audioLength'> | undefined): AudioMeter | null {
  if (op === 'speech') {
    const chars = characters(body.input);
    const usd = (chars * (model.ttsPricePerMchar ?? 0)) / 1e6;
    return { reserveUsd: usd, settle: (_u, answered) => (answered ? { usd, seconds: 0, characters: chars } : NO_AUDIO_CHARGE) };
  }
  if (op !== 'transcriptions' && op !== 'translations') return null;
  const perSecond = (model.audioInputPricePerMinute ?? 0) / 60;
  const read = form?.audioLength()?.seconds ?? null;
  const assumed = (form?.fileBytes ?? 0) / UNKNOWN_BYTES_PER_SECOND;
  // Whole seconds: providers that bill by the second round the length.
  const reserved = Math.ceil(read ?? assumed);
  return {
    reserveUsd: perSecond ? reserved * perSecond : 0,
    settle(u, answered) {
      if (!answered) return NO_AUDIO_CHARGE;
      const tokens = u !== null && u.input + u.output > 0;
      // To the millisecond, as usage rows keep it, so that counts kept elsewhere (metrics) add up alike.
      const seconds = Math.round((u?.audioSeconds ?? read ?? (tokens || !perSecond ? 0 : reserved)) * 1000) / 1000;
      return { usd: seconds * perSecond, seconds, characters: 0 };
    },
  };
}
