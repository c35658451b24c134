// Exact-match answers for repeated non-streamed calls (chat, completions, embeddings, moderations) to
// models that an admin gave a `cache_ttl_seconds`. An entry is the answer exactly as the client got it
// (its wire format, its bytes), keyed by the public model, the ingress format, the operation and the
// request body; it serves later identical calls without reaching a provider, for at most the model's
// current TTL. In memory, least recently used first out, bounded by `gateway.cacheMaxBytes`; a restart
// starts empty.
//
// Callers choose per request with RFC 9111 request directives in `Cache-Control`: `no-cache` (do not
// answer from the cache; the new answer is stored), `no-store` (neither), `max-age=N` (only an answer
// at most N seconds old).
import { createHash } from 'node:crypto';

export interface CachedAnswer {
  body: Buffer | string;
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

export class ResponseCache {
  private readonly maxBytes: number;
  private readonly entries = new Map<string, CachedAnswer>();
  private bytes = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get enabled(): boolean {
    return this.maxBytes > 0;
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

  set(key: string, body: Buffer | string, now: number): void {
    const size = (typeof body === 'string' ? Buffer.byteLength(body) : body.length) + key.length + 64;
    if (size > this.maxBytes / 8) return; // one answer may not push out most of the others
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

  /** Forgets every answer. */
  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}
