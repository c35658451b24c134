// A local HTTP service standing in for a private API (Grafana, Ollama, …): it demands one bearer
// token and offers echo, upload, download, SSE and never-ending streams for relay tests.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
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
  /** WebSocket handshakes to /ws-hang still open: never answered, held until their caller leaves. */
  readonly hangingUpgrades: number;
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
  // WebSockets, behind the same bearer token: /ws-echo echoes each message with its type, picks
  // subprotocol echo.v1 when offered and sets a cookie on its 101; /ws-greet says 'welcome' as soon as it is open; /ws-hang never
  // answers the handshake. Any other path refuses the upgrade with a 403 of its own.
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols: Set<string>) => (protocols.has('echo.v1') ? 'echo.v1' : false) });
  // /ws-echo's 101 carries headers of its own, as a service's handshake may (a session cookie).
  wss.on('headers', (lines, req) => req.url?.startsWith('/ws-echo') && lines.push('Set-Cookie: ws-session=1', 'X-Upstream-WS: yes'));
  const hanging = new Set<Socket>();
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url!, 'http://x').pathname;
    if (!['/ws-echo', '/ws-greet', '/ws-hang'].includes(path)) {
      const body = JSON.stringify({ error: 'no WebSocket here', path });
      socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nx-refused-by: upstream\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    if (req.headers.authorization !== `Bearer ${token}`) {
      socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: 21\r\nconnection: close\r\n\r\n{"error":"bad token"}');
      return;
    }
    if (path === '/ws-hang') {
      hanging.add(socket);
      socket.once('close', () => hanging.delete(socket));
      // Reading, as any server does, is what notices the other side going away.
      socket.once('end', () => socket.destroy());
      socket.resume();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (path === '/ws-greet') ws.send('welcome');
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
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
    get hangingUpgrades() {
      return hanging.size;
    },
    close: () => new Promise((r) => {
      for (const c of wss.clients) c.terminate();
      for (const s of hanging) s.destroy();
      wss.close();
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
