// Exact-match answers for repeated calls (chat, completions, embeddings, moderations, and Responses
// calls that keep no state: `store: false`) to models that an admin gave a `cache_ttl_seconds`. A
// non-streamed entry is the answer exactly as the client got it (its wire format, its bytes); a
// streamed entry is the stream as the gateway handed it to the client's encoder, replayed through a
// fresh encoder for each later client (see StreamRecorder). Entries are keyed by the public model, the
// ingress format, the operation, streamed or not, and the request body; they serve later identical
// calls without reaching a provider, for at most the model's current TTL. In memory, least recently
// used first out, bounded by `gateway.cacheMaxBytes`; a restart starts empty.
//
// Callers choose per request with RFC 9111 request directives in `Cache-Control`: `no-cache` (do not
// answer from the cache; the new answer is stored), `no-store` (neither), `max-age=N` (only an answer
// at most N seconds old).
//
// Identical non-streamed misses are coalesced: while one is in flight (the leader), the others wait
// for its answer instead of each asking a provider (ResponseCache.lead / inFlight).
import { createHash } from 'node:crypto';
import { isObject, type Json, type Operation } from '../providers/types.ts';
import type { ClientEncoder } from './client-encoders.ts';

export interface CachedAnswer {
  body: Buffer | string | CachedStream;
  storedAt: number;
  size: number;
}

export interface CacheDirectives {
  /** Look up an answer. */
  read: boolean;
  /** Store the answer. */
  write: boolean;
  /** Oldest acceptable answer, in seconds (null: the model's TTL decides). */
  maxAge: number | null;
}

const DEFAULT: CacheDirectives = Object.freeze({ read: true, write: true, maxAge: null });

/** Reads a request's `Cache-Control` (RFC 9111 §5.2.1); unknown directives are ignored, as the RFC says. */
export function cacheDirectives(header: string | undefined): CacheDirectives {
  if (!header) return DEFAULT;
  let read = true;
  let write = true;
  let maxAge: number | null = null;
  for (const part of header.toLowerCase().split(',')) {
    const [name, value] = part.trim().split('=', 2).map((s) => s.trim()) as [string, string | undefined];
    if (name === 'no-cache') read = false;
    else if (name === 'no-store') {
      read = false;
      write = false;
    } else if (name === 'max-age' && value !== undefined && /^"?\d{1,10}"?$/.test(value)) {
      const n = Number(value.replace(/"/g, ''));
      maxAge = maxAge === null ? n : Math.min(maxAge, n);
    }
  }
  return { read, write, maxAge };
}

/** The entry key: model, ingress, operation, method and anything else that shapes the answer, then the body. */
export function cacheKey(parts: readonly string[], body: string): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.update(body).digest('base64url');
}

/** Operations whose answers are kept. A Responses call is kept only when it asks the provider to store
 *  nothing and refers to nothing stored: otherwise its answer depends on state outside the body. */
const CACHEABLE: ReadonlySet<Operation> = new Set(['chat', 'completions', 'embeddings', 'moderations']);

export function cacheable(op: Operation, body: Json): boolean {
  if (op === 'responses') return body.store === false && body.previous_response_id == null && body.conversation == null && body.prompt == null && body.background !== true;
  return CACHEABLE.has(op);
}

/**
 * The body as the key sees it. A stream's `stream_options.include_usage` only decides whether the
 * client is shown the usage the gateway asks every OpenAI-shaped stream for (translate.ts), so it is
 * left out: one entry serves a client that asked for usage and one that did not.
 */
export function keyBody(body: Json, stream: boolean): string {
  if (!stream || !isObject(body.stream_options)) return JSON.stringify(body);
  const { include_usage: _u, ...options } = body.stream_options;
  const { stream_options: _o, ...rest } = body;
  return JSON.stringify(Object.keys(options).length ? { ...rest, stream_options: options } : rest);
}

/** One piece of a stream as the live path handed it on: a pivot chunk (its JSON) for the client's
 *  encoder, an upstream frame's data already in the client's family, or pass-through event bytes. */
type Piece = { chunk: string } | { raw: string } | { bytes: Buffer; usageOnly: boolean };

// What a piece costs beyond its bytes (the object, the array slot, the string or Buffer header).
const PIECE_OVERHEAD = 48;
// The events that end a complete pass-through stream: OpenAI's `data: [DONE]`, Anthropic's
// message_stop, the Responses API's response.completed. A stream the upstream closed before one of
// them (or, translated, before a finish_reason) may be cut short, and is not kept.
const TERMINAL = /^(?:data: ?\[DONE\]|event: ?(?:message_stop|response\.completed)\b)/m;

/**
 * Records a live stream while it is passed on, for the cache. It keeps at most `limit` bytes: past
 * that it lets go of everything and records nothing more, so a huge stream is never held.
 */
export class StreamRecorder {
  private pieces: Piece[] | null = [];
  private bytes = 0;
  private complete = false;
  private passthrough = false;
  private onlyFor: boolean | null = null;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  /**
   * What kind of stream this is: `passthrough` (the upstream sends its own terminator), and
   * `onlyFor`: null when the recording serves every client alike, else the only `include_usage` it
   * can serve (a pass-through OpenAI-shaped stream from a provider that ignores `stream_options`:
   * what it sent depended on what this client asked).
   */
  begin(passthrough: boolean, onlyFor: boolean | null): void {
    this.passthrough = passthrough;
    this.onlyFor = onlyFor;
  }

  /** A pivot chunk, before the client's encoder sees it. */
  chunk(c: Json): void {
    if (!this.pieces) return;
    if (Array.isArray(c.choices) && c.choices.some((ch) => isObject(ch) && ch.finish_reason)) this.complete = true;
    const s = JSON.stringify(c);
    this.add({ chunk: s }, Buffer.byteLength(s));
  }

  /** An upstream frame's data in the client's own family (Gemini pass-through). */
  raw(data: string): void {
    if (!this.pieces) return;
    if (data.includes('"finishReason"')) this.complete = true;
    this.add({ raw: data }, Buffer.byteLength(data));
  }

  /** A pass-through event's exact bytes; `usageOnly`: the OpenAI chunk that carries only usage. */
  event(ev: Buffer, usageOnly: boolean): void {
    if (!this.pieces) return;
    if (TERMINAL.test(ev.toString('latin1', 0, Math.min(ev.length, 64)))) this.complete = true;
    this.add({ bytes: ev, usageOnly }, ev.length);
  }

  private add(p: Piece, n: number): void {
    this.bytes += n + PIECE_OVERHEAD;
    if (this.bytes > this.limit) this.pieces = null;
    else this.pieces!.push(p);
  }

  /** The stream to keep, once it ended cleanly: null when it was cut short or grew past the limit. */
  finish(): CachedStream | null {
    if (!this.pieces || !this.complete) return null;
    // Runs of pass-through events become one Buffer (a copy, so no upstream chunk is held by a slice).
    const out: Piece[] = [];
    let run: Buffer[] = [];
    const flush = () => {
      if (run.length) out.push({ bytes: Buffer.concat(run), usageOnly: false });
      run = [];
    };
    for (const p of this.pieces) {
      if ('bytes' in p && !p.usageOnly) run.push(p.bytes);
      else {
        flush();
        out.push('bytes' in p ? { bytes: Buffer.from(p.bytes), usageOnly: true } : p);
      }
    }
    flush();
    this.pieces = null;
    return new CachedStream(out, this.passthrough, this.onlyFor, this.bytes);
  }
}

/** A recorded stream: replayed through a later client's own encoder, it is what a live stream gives. */
export class CachedStream {
  readonly bytes: number;
  private readonly pieces: readonly Piece[];
  private readonly passthrough: boolean;
  private readonly onlyFor: boolean | null;

  constructor(pieces: readonly Piece[], passthrough: boolean, onlyFor: boolean | null, bytes: number) {
    this.pieces = pieces;
    this.passthrough = passthrough;
    this.onlyFor = onlyFor;
    this.bytes = bytes;
  }

  /** Whether it can answer a client that did (or did not) ask for usage exactly as a live stream would. */
  serves(askedUsage: boolean): boolean {
    return this.onlyFor === null || this.onlyFor === askedUsage;
  }

  /**
   * The client's frames, in blocks of about 16 KiB. The usage-only chunk is left out for a client
   * that did not ask for usage, as the live stream strips it (only when the provider was asked for
   * usage on the client's behalf: `onlyFor` null).
   */
  *replay(enc: ClientEncoder, askedUsage: boolean): Generator<string | Buffer> {
    const strip = !askedUsage && this.onlyFor === null;
    let text = '';
    for (const p of this.pieces) {
      if ('chunk' in p) text += enc.chunk(JSON.parse(p.chunk) as Json);
      else if ('raw' in p) text += enc.raw(p.raw);
      else if (!(p.usageOnly && strip)) {
        if (text) yield text;
        text = '';
        yield p.bytes;
        continue;
      }
      if (text.length >= 16 * 1024) {
        yield text;
        text = '';
      }
    }
    text += enc.end(this.passthrough);
    if (text) yield text;
  }
}

/** Resolves with `answer`, or with undefined as soon as `signal` aborts (the waiting client left). */
export function waitFor<T>(answer: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const left = () => resolve(undefined);
    signal.addEventListener('abort', left, { once: true });
    void answer.then((v) => {
      signal.removeEventListener('abort', left);
      resolve(v);
    });
  });
}

/** A non-streamed answer a miss is fetching: its body, or null when it failed or may not be shared. */
type Landing = Buffer | string | null;

export class ResponseCache {
  private readonly maxBytes: number;
  private readonly entries = new Map<string, CachedAnswer>();
  private readonly flights = new Map<string, Promise<Landing>>();
  private bytes = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  /** The largest entry kept: one answer may not push out most of the others. */
  get entryLimit(): number {
    return this.maxBytes / 8;
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }

  /** The answer stored under `key` if it is younger than `maxAgeMs`; it becomes the most recently used. */
  get(key: string, maxAgeMs: number, now: number): CachedAnswer | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    if (now - e.storedAt >= maxAgeMs) {
      this.bytes -= e.size;
      return undefined;
    }
    this.entries.set(key, e);
    return e;
  }

  set(key: string, body: Buffer | string | CachedStream, now: number): void {
    const size = (typeof body === 'string' ? Buffer.byteLength(body) : body instanceof CachedStream ? body.bytes : body.length) + key.length + 64;
    if (size > this.entryLimit) return;
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.bytes -= old.size;
    }
    this.entries.set(key, { body, storedAt: now, size });
    this.bytes += size;
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= e.size;
    }
  }

  /** The answer an identical miss in flight will land (null: it failed), or undefined when none is. */
  inFlight(key: string): Promise<Landing> | undefined {
    return this.flights.get(key);
  }

  /**
   * Marks a miss under `key` as in flight, so that identical calls wait for it (inFlight). Returns
   * the function that lands it — with its answer, or null to send the waiters to ask for themselves —
   * which must be called once it is over; null when another call already leads.
   */
  lead(key: string): ((answer: Landing) => void) | null {
    if (this.flights.has(key)) return null;
    let land!: (answer: Landing) => void;
    const flight = new Promise<Landing>((resolve) => (land = resolve));
    this.flights.set(key, flight);
    return (answer) => {
      if (this.flights.get(key) === flight) this.flights.delete(key);
      land(answer);
    };
  }

  /** Forgets every answer. */
  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}
