// A local OTLP/HTTP receiver standing in for an OpenTelemetry collector: POST /v1/traces with a JSON
// body (ExportTraceServiceRequest), decoded into flat spans for assertions. `mode` makes it answer
// as a busy or broken collector would.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Record<string, string | number | boolean>;
  status: { code?: number; message?: string };
  resource: Record<string, string | number | boolean>;
}

export type CollectorMode = 'ok' | 'fail-500' | 'busy-503' | 'hang' | 'bad-400';

export interface Collector {
  url: string;
  spans: ExportedSpan[];
  /** Every request as received: headers and raw body text. */
  requests: { headers: IncomingMessage['headers']; body: string }[];
  mode: CollectorMode;
  /** When set: after answering this many export requests in `mode`, the collector answers as 'ok'. */
  okAfter?: number;
  /** Resolves when a span matching `pred` has arrived; rejects after `timeoutMs`. */
  waitFor(pred: (s: ExportedSpan) => boolean, timeoutMs?: number): Promise<ExportedSpan>;
  close(): Promise<void>;
}

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
const valueOf = (v: AnyValue) => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue!;
const flat = (attrs: { key: string; value: AnyValue }[] = []) => Object.fromEntries(attrs.map((a) => [a.key, valueOf(a.value)]));

export async function startCollector(mode: CollectorMode = 'ok'): Promise<Collector> {
  const spans: ExportedSpan[] = [];
  const requests: Collector['requests'] = [];
  const sockets = new Set<Socket>();
  let waiters: Array<() => void> = [];
  const c = { mode } as Collector;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      requests.push({ headers: req.headers, body });
      if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end();
      if (c.okAfter !== undefined && c.okAfter-- <= 0) {
        c.mode = 'ok';
        c.okAfter = undefined;
      }
      if (c.mode === 'hang') return; // never answered; the exporter's timeout ends it
      if (c.mode === 'fail-500') return void res.writeHead(500, { 'content-type': 'application/json' }).end('{}');
      if (c.mode === 'busy-503') return void res.writeHead(503, { 'retry-after': '0' }).end();
      if (c.mode === 'bad-400') return void res.writeHead(400).end();
      if (req.headers['content-type'] !== 'application/json') return void res.writeHead(415).end();
      const decoded = JSON.parse(body) as { resourceSpans: { resource: { attributes: [] }; scopeSpans: { spans: (Omit<ExportedSpan, 'attributes' | 'resource'> & { attributes: [] })[] }[] }[] };
      for (const rs of decoded.resourceSpans) {
        const resource = flat(rs.resource.attributes);
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, attributes: flat(s.attributes), resource });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      const w = waiters;
      waiters = [];
      w.forEach((f) => f());
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(c, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    requests,
    waitFor(pred: (s: ExportedSpan) => boolean, timeoutMs = 15_000) {
      return new Promise<ExportedSpan>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no such span within ${timeoutMs} ms; got: ${spans.map((s) => s.name).join(', ')}`)), timeoutMs);
        const check = () => {
          const found = spans.find(pred);
          if (found) {
            clearTimeout(timer);
            resolve(found);
          } else waiters.push(check);
        };
        check();
      });
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  });
}
