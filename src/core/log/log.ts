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

export function createLogger(opts: LogOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: {
        req(req: { id?: string; method?: string; url?: string; ip?: string; socket?: { remoteAddress?: string } }) {
          return { id: req.id, method: req.method, url: redactUrl(req.url ?? ''), remote: req.ip ?? req.socket?.remoteAddress };
        },
        res(res: { statusCode?: number }) {
          return { status: res.statusCode };
        },
        err: pino.stdSerializers.err,
      },
    },
    opts.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
