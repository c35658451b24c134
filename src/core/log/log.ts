// pino JSON logs. Secrets never reach a log: headers that carry credentials, cookies, `?key=` style
// query parameters and any field named like a secret are redacted before serialisation.
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

// Field names that carry secrets anywhere in a logged object (headers included).
const SECRET_KEY = /^(authorization|proxy-authorization|cookie|set-cookie|api-key|x-api-key|x-goog-api-key|password|new_password|passwd|secret|client_secret|token|access_token|refresh_token|id_token|setup_token|registration_token|auth_token|signing_secret|api_key|apikey|credential|credentials|key|private_key)$/i;

/**
 * Replaces secret-named fields with "[redacted]" (objects up to 4 levels deep) and masks secret query
 * parameters in `url` fields. Runs only when a line is actually written, so request-scoped child
 * loggers stay cheap (pino's path redaction made each child cost ~10 µs).
 */
export function scrubSecrets(obj: Record<string, unknown>, depth = 0): Record<string, unknown> {
  if (depth > 4) return obj;
  let out: Record<string, unknown> | null = null;
  for (const key in obj) {
    const v = obj[key];
    let nv: unknown = v;
    if (SECRET_KEY.test(key) && v !== undefined && v !== null) nv = '[redacted]';
    else if (key === 'url' && typeof v === 'string') nv = redactUrl(v);
    else if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Error)) nv = scrubSecrets(v as Record<string, unknown>, depth + 1);
    if (nv !== v) {
      out ??= { ...obj };
      out[key] = nv;
    }
  }
  return out ?? obj;
}

const SECRET_QUERY = /([?&](?:key|api[-_]?key|token|access_token|secret|code|state|password|sig|signature)=)[^&#]*/gi;

/** Masks secret-looking query parameters in a URL or path. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1[redacted]');
}

export interface LogOptions {
  level: string;
  destination?: DestinationStream;
}

// The per-request access line is built only from the serializers below (method, redacted URL,
// remote address, status), so it carries no secret by construction; it is written by a sibling logger
// that skips the scrubbing walk.
const accessLoggers = new WeakMap<Logger, Logger>();

export function accessLoggerFor(log: Logger): Logger {
  return accessLoggers.get(log) ?? log;
}

const ACCESS_SERIALIZERS = {
  req(req: { method?: string; url?: string; ip?: string; socket?: { remoteAddress?: string } }) {
    return { method: req.method, url: redactUrl(req.url ?? ''), remote: req.ip ?? req.socket?.remoteAddress };
  },
  res(res: { statusCode?: number }) {
    return { status: res.statusCode };
  },
};

export function createLogger(opts: LogOptions): Logger {
  const destination = opts.destination ?? pino.destination({ fd: 1, sync: false });
  const log = pino(
    {
      level: opts.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { log: scrubSecrets },
      serializers: { ...ACCESS_SERIALIZERS, err: pino.stdSerializers.err },
    },
    destination,
  );
  const access = pino(
    { level: opts.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, serializers: ACCESS_SERIALIZERS },
    destination,
  );
  accessLoggers.set(log, access);
  return log;
}
