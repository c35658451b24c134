// A local HTTP service standing in for a private API (Grafana, Ollama, …): it demands one bearer
// token and offers echo, upload, download, SSE and never-ending streams for relay tests.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

export interface Upstream {
  url: string;
  server: Server;
  /** Bytes the last /download or /forever response managed to hand to its socket. */
  written: { bytes: number };
  /** Releases the next SSE event (the server waits for the test between events). */
  sseGate: { release(): void };
  /** While set, /upload stops reading its body. */
  pauseUploads: { paused: boolean; resume(): void };
  seen: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }>;
  close(): Promise<void>;
}

export const PATTERN = Buffer.alloc(64 * 1024, 'nexus-relay-0123456789abcdef');

export async function startUpstream(token: string): Promise<Upstream> {
  // Each /download and /forever response counts into its own object; `written` is the latest one.
  let written = { bytes: 0 };
  let gateWaiters: Array<() => void> = [];
  let releases = 0;
  const sseGate = {
    release() {
      releases++;
      const w = gateWaiters;
      gateWaiters = [];
      w.forEach((f) => f());
    },
  };
  const nextGate = (n: number) => new Promise<void>((res) => (releases >= n ? res() : gateWaiters.push(() => (releases >= n ? res() : gateWaiters.push(res)))));
  let resumeUpload: (() => void) | null = null;
  const pauseUploads = {
    paused: false,
    resume() {
      pauseUploads.paused = false;
      resumeUpload?.();
    },
  };
  const seen: Upstream['seen'] = [];

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    const url = new URL(req.url!, 'http://x');
    if (req.headers.authorization !== `Bearer ${token}` && url.pathname !== '/open') {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad token"}');
      req.resume();
      return;
    }
    const mine = url.pathname === '/download' || url.pathname === '/forever' ? (written = { bytes: 0 }) : { bytes: 0 };
    const write = async (chunk: Buffer) => {
      mine.bytes += chunk.length;
      if (res.write(chunk)) return;
      await new Promise<void>((r) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          r();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    };
    switch (url.pathname) {
      case '/echo':
      case '/open': {
        let n = 0;
        for await (const c of req) n += (c as Buffer).length;
        const { authorization: _a, ...headers } = req.headers;
        res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
        res.end(JSON.stringify({ method: req.method, path: url.pathname, query: url.search, headers, body_bytes: n }));
        return;
      }
      case '/upload': {
        const hash = createHash('sha256');
        let n = 0;
        for await (const c of req) {
          if (pauseUploads.paused) await new Promise<void>((r) => (resumeUpload = r));
          hash.update(c as Buffer);
          n += (c as Buffer).length;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes: n, sha256: hash.digest('hex') }));
        return;
      }
      case '/download': {
        const total = Number(url.searchParams.get('bytes') ?? 0);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
        let left = total;
        while (left > 0 && !res.destroyed) {
          const c = left >= PATTERN.length ? PATTERN : PATTERN.subarray(0, left);
          await write(c);
          left -= c.length;
        }
        res.end();
        return;
      }
      case '/forever': {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        while (!res.destroyed) {
          await write(PATTERN);
          await new Promise((r) => setImmediate(r));
        }
        return;
      }
      case '/v1/chat/completions': {
        // A minimal OpenAI-compatible server (an Ollama or vLLM on the private host).
        let raw = '';
        for await (const c of req) raw += c;
        const body = JSON.parse(raw) as { model: string; stream?: boolean };
        const base = { id: 'chatcmpl-local', created: 1, model: body.model };
        if (!body.stream) {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...base, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'hello from the node' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } }));
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const piece of ['hello ', 'from ', 'the node']) {
          res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`);
        }
        res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } })}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      case '/sse': {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        const base = releases;
        for (let i = 1; i <= 3; i++) {
          res.write(`data: {"n":${i}}\n\n`);
          if (i < 3) await nextGate(base + i);
        }
        res.end('data: [DONE]\n\n');
        return;
      }
      default:
        res.writeHead(404).end('not here');
    }
  });
  // /ws-echo: a WebSocket that echoes each message with its type, behind the same bearer token.
  const wss = new WebSocketServer({
    server,
    path: '/ws-echo',
    verifyClient: (info: { req: IncomingMessage }) => info.req.headers.authorization === `Bearer ${token}`,
    handleProtocols: (protocols: Set<string>) => (protocols.has('echo.v1') ? 'echo.v1' : false),
  });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    get written() {
      return written;
    },
    sseGate,
    pauseUploads,
    seen,
    close: () => new Promise((r) => { for (const c of wss.clients) c.terminate(); wss.close(); server.closeAllConnections(); server.close(() => r()); }),
  };
}
