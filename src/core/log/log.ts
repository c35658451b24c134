// pino JSON logs. Secrets never reach a log: headers that carry credentials, cookies, `?key=` style
// query parameters and any field named like a secret are redacted before serialisation.
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

const SECRET_FIELDS = [
  'password', 'new_password', 'token', 'secret', 'api_key', 'apiKey', 'credential', 'setup_token',
  'registration_token', 'auth_token', 'signing_secret', 'key', 'authorization', 'cookie',
];

const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["api-key"]',
  'req.headers["x-api-key"]',
  'req.headers["x-goog-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["api-key"]',
  'headers["x-api-key"]',
  'headers["x-goog-api-key"]',
  'headers.cookie',
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  ...SECRET_FIELDS.map((f) => `*.*.${f}`),
];

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
// remote address, status), so it carries no secret by construction. It is written by a sibling logger
// without path redaction, which costs ~25 µs per line and would dominate a fast request.
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
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
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
