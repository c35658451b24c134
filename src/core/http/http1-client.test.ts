// The gateway's HTTP/1.1 client against real sockets: servers below write exact bytes, so framing,
// persistence, timeouts and hostile answers are each exercised on the wire.
import { Buffer } from 'node:buffer';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from '../../first-boot/certificate.ts';
import { Http1Client, Http1Error, type Http1ClientOptions } from './http1-client.ts';

interface Received { method: string; target: string; head: string; body: Buffer; conn: number; index: number }
type Answer = (sock: Socket, req: Received) => void | Promise<void>;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

/** A server that reads requests (Content-Length framed) and lets `answer` write raw bytes back. */
async function rawServer(answer: Answer) {
  const received: Received[] = [];
  let conns = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    const conn = ++conns;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        const len = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const [method, target] = head.split(' ') as [string, string];
        const req = { method, target, head, body: buf.subarray(end + 4, end + 4 + len), conn, index: received.length };
        buf = buf.subarray(end + 4 + len);
        received.push(req);
        void answer(sock, req);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, connections: () => conns };
}

function client(opts: Partial<Http1ClientOptions> = {}): Http1Client {
  const c = new Http1Client({ connectTimeoutMs: 2000, headersTimeoutMs: 2000, bodyTimeoutMs: 2000, ...opts });
  closers.push(() => c.close());
  return c;
}

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
const post = (url: string, body: string | Buffer | null = '{}', headers: Record<string, string> = {}) => ({ method: 'POST', url, headers: { 'content-type': 'application/json', ...headers }, body });
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e as Http1Error);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Http1Client', () => {
  it('sends the request as written and keeps one connection for sequential calls', async () => {
    const srv = await rawServer((s, req) => void s.write(ok(JSON.stringify({ n: req.index, echo: req.body.toString('utf8') }))));
    const c = client();
    for (let i = 0; i < 5; i++) {
      const a = await c.request(post(`${srv.url}/v1/chat?x=1`, `{"i":${i},"s":"héllo"}`, { authorization: 'Bearer k', Host: 'evil', 'Content-Length': '1', connection: 'close' }), 1 << 20);
      expect(a.status).toBe(200);
      expect(JSON.parse(a.body.toString('utf8'))).toEqual({ n: i, echo: `{"i":${i},"s":"héllo"}` });
    }
    expect(srv.connections()).toBe(1);
    const r = srv.received[0]!;
    expect(r.method).toBe('POST');
    expect(r.target).toBe('/v1/chat?x=1');
    const port = srv.url.split(':')[2];
    // The client's own framing and Host, never the caller's.
    expect(r.head.split('\r\n').slice(1).sort()).toEqual(['authorization: Bearer k', `content-length: ${Buffer.byteLength('{"i":0,"s":"héllo"}')}`, 'content-type: application/json', `host: 127.0.0.1:${port}`]);
  });

  it('sends Buffer bodies byte for byte and parses the header fields of an answer when asked', async () => {
    const srv = await rawServer((s, req) => void s.write(Buffer.concat([Buffer.from(`HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nX-A: 1\r\nx-a: 2\r\ncontent-length: ${req.body.length}\r\n\r\n`), req.body])));
    const body = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 256));
    const a = await client().request(post(srv.url, body), 1 << 20);
    expect(a.status).toBe(429);
    expect(a.body.equals(body)).toBe(true);
    expect(a.headers['retry-after']).toBe('7');
    expect(a.headers['x-a']).toBe('1, 2');
  });

  it('reads chunked answers, with extensions and trailers, however the bytes are split', async () => {
    const answer = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1A\r\n, a chunk of 26 bytes here\r\n0\r\nX-Trailer: t\r\n\r\n';
    const srv = await rawServer(async (s, req) => {
      if (req.index === 0) return void s.write(answer);
      for (const ch of answer) {
        s.write(ch);
        await sleep(1);
      }
    });
    const c = client();
    for (let i = 0; i < 2; i++) {
      const a = await c.request(post(srv.url), 1 << 20);
      expect(a.body.toString()).toBe('hello, a chunk of 26 bytes here');
    }
    expect(srv.connections()).toBe(1); // reusable after a chunked answer
  });

  it('skips interim answers and reads bodiless ones (HEAD, 204, 304)', async () => {
    const srv = await rawServer((s, req) => {
      if (req.index === 0) s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n' + ok('{"a":1}'));
      else if (req.index === 1) s.write('HTTP/1.1 204 No Content\r\n\r\n');
      else if (req.index === 2) s.write('HTTP/1.1 304 Not Modified\r\ncontent-length: 99\r\n\r\n');
      else s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n');
    });
    const c = client();
    expect((await c.request(post(srv.url), 100)).body.toString()).toBe('{"a":1}');
    expect((await c.request(post(srv.url), 100)).status).toBe(204);
    expect((await c.request({ method: 'GET', url: srv.url, headers: {}, body: null }, 100)).status).toBe(304);
    const head = await c.request({ method: 'HEAD', url: srv.url, headers: {}, body: null }, 100);
    expect([head.status, head.body.length]).toEqual([200, 0]);
    expect(srv.connections()).toBe(1);
    expect(srv.received[2]!.head).not.toMatch(/content-length/i); // a GET without a body says nothing of one
  });

  it('reads an answer without framing to the end of the connection, and never reuses that connection', async () => {
    const srv = await rawServer((s) => void s.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end'));
    const c = client();
    expect((await c.request(post(srv.url), 100)).body.toString()).toBe('until the end');
    expect((await c.request(post(srv.url), 100)).body.toString()).toBe('until the end');
    expect(srv.connections()).toBe(2);
  });

  it('does not reuse a connection after Connection: close, HTTP/1.0, or bytes past the answer', async () => {
    const srv = await rawServer((s, req) => {
      if (req.index === 0) s.write(ok('{}', 'Connection: close\r\n'));
      else if (req.index === 1) s.write(ok('{}').replace('HTTP/1.1', 'HTTP/1.0'));
      else if (req.index === 2) s.write(ok('{}') + 'HTTP/1.1 200 OK\r\n');
      else s.write(ok('{}'));
    });
    const c = client();
    for (let i = 0; i < 4; i++) expect((await c.request(post(srv.url), 100)).status).toBe(200);
    expect(srv.connections()).toBe(4);
  });

  it('honours the server\'s Keep-Alive timeout, minus a second', async () => {
    const srv = await rawServer((s) => void s.write(ok('{}', 'Keep-Alive: timeout=1\r\n')));
    const c = client({ keepAliveMs: 30_000 });
    await c.request(post(srv.url), 100);
    await c.request(post(srv.url), 100);
    expect(srv.connections()).toBe(2); // a 1 s hint leaves nothing to keep

    const srv2 = await rawServer((s) => void s.write(ok('{}', 'Keep-Alive: timeout=2, max=100\r\n')));
    await c.request(post(srv2.url), 100);
    await c.request(post(srv2.url), 100);
    expect(srv2.connections()).toBe(1);
    await sleep(1300);
    await c.request(post(srv2.url), 100);
    expect(srv2.connections()).toBe(2);
  });

  it('drops idle connections the server closes, and sends a request once more when a reused connection closes before answering', async () => {
    // A real node:http server with a short keep-alive: it closes idle connections itself.
    let hits = 0;
    const server = createHttpServer((_req, res) => {
      hits++;
      res.end('{}');
    });
    server.keepAliveTimeout = 100;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => server.close(() => r())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const c = client();
    await c.request(post(url), 100);
    await sleep(300);
    expect((await c.request(post(url), 100)).status).toBe(200);
    expect(hits).toBe(2);

    // The second request on a connection is met by a close: it goes again on a new connection.
    const srv = await rawServer((s, req) => {
      if (req.conn === 1 && req.index === 1) s.destroy();
      else s.write(ok(`{"conn":${req.conn}}`));
    });
    await c.request(post(srv.url), 100);
    expect(JSON.parse((await c.request(post(srv.url), 100)).body.toString())).toEqual({ conn: 2 });
    expect(srv.received.length).toBe(3);

    // A fresh connection closed before answering is a failure, not retried.
    const mute = await rawServer((s) => void s.destroy());
    const e = await failure(c.request(post(mute.url), 100));
    expect(e.code).toBe('CLOSED');
    expect(e.status).toBeUndefined();
    expect(mute.received.length).toBe(1);
  });

  it('refuses malformed answers with PROTOCOL and drops the connection', async () => {
    const cases = [
      'HTTP/2 200 OK\r\n\r\n',
      'HTTP/1.1 20 OK\r\n\r\n',
      'garbage\r\n\r\n',
      'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\ncontent-length: 0\r\n\r\n',
      'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!',
      'HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n',
      'HTTP/1.1 200 OK\r\ncontent-length: 1e3\r\n\r\n',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffff\r\n',
      'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n',
      `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(70_000)}\r\n\r\n`,
      `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(70_000)}`, // no end of head in sight
    ];
    for (const raw of cases) {
      const srv = await rawServer((s) => void s.write(raw));
      const e = await failure(client().request(post(srv.url), 1 << 20));
      expect(e, raw.slice(0, 60)).toBeInstanceOf(Http1Error);
      expect(e.code, raw.slice(0, 60)).toBe('PROTOCOL');
    }
  });

  it('refuses a body over the limit, by Content-Length or as it arrives, with the status it came with', async () => {
    const srv = await rawServer((s, req) => {
      if (req.index === 0) s.write(`HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n${'x'.repeat(1000)}`);
      else s.write(`HTTP/1.1 500 Oops\r\ntransfer-encoding: chunked\r\n\r\n${'200\r\n' + 'y'.repeat(512) + '\r\n'}${'200\r\n' + 'y'.repeat(512) + '\r\n'}0\r\n\r\n`);
    });
    const c = client();
    const a = await failure(c.request(post(srv.url), 999));
    expect([a.code, a.status]).toEqual(['TOO_LARGE', 200]);
    const b = await failure(c.request(post(srv.url), 999));
    expect([b.code, b.status]).toEqual(['TOO_LARGE', 500]);
    expect(srv.connections()).toBe(2);
  });

  it('tells a connection refused, a silent server, a stalled body and a truncated body apart', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const c = client({ headersTimeoutMs: 200, bodyTimeoutMs: 200 });
    expect((await failure(c.request(post(`http://127.0.0.1:${port}`), 100))).code).toBe('CONNECT');

    const silent = await rawServer(() => {});
    const s = await failure(c.request(post(silent.url), 100));
    expect([s.code, s.status]).toEqual(['HEADERS_TIMEOUT', undefined]);

    const stalled = await rawServer((sock) => void sock.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf'));
    const t = await failure(c.request(post(stalled.url), 100));
    expect([t.code, t.status]).toEqual(['BODY_TIMEOUT', 200]);

    const cut = await rawServer((sock) => void sock.end('HTTP/1.1 502 Bad\r\ncontent-length: 10\r\n\r\nhalf'));
    const u = await failure(c.request(post(cut.url), 100));
    expect([u.code, u.status]).toEqual(['CLOSED', 502]);

    const cutChunked = await rawServer((sock) => void sock.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n'));
    expect((await failure(c.request(post(cutChunked.url), 100))).code).toBe('CLOSED');
  });

  it('aborts before and after the head, and refuses an already aborted signal', async () => {
    const srv = await rawServer((s, req) => {
      if (req.index === 1) s.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhal');
    });
    const c = client();
    const ac = new AbortController();
    const p = failure(c.request(post(srv.url), 100, ac.signal));
    await sleep(50);
    ac.abort();
    expect((await p).code).toBe('ABORTED');

    const ac2 = new AbortController();
    const p2 = failure(c.request(post(srv.url), 100, ac2.signal));
    await sleep(50);
    ac2.abort();
    expect(await p2).toMatchObject({ code: 'ABORTED', status: 200 });

    const ac3 = new AbortController();
    ac3.abort();
    expect((await failure(c.request(post(srv.url), 100, ac3.signal))).code).toBe('ABORTED');
    expect(srv.received.length).toBe(2);
    expect(srv.connections()).toBe(2); // an aborted exchange's connection is not reused
  });

  it('refuses header injection and unsupported URLs without sending anything', async () => {
    const srv = await rawServer((s) => void s.write(ok('{}')));
    const c = client();
    for (const headers of [{ 'x-a': 'ok\r\nx-injected: 1' }, { 'x-a': 'nul\0' }, { 'bad name': 'v' }, { 'x-a:\r\n': 'v' }] as Record<string, string>[]) {
      expect((await failure(c.request(post(srv.url, '{}', headers), 100))).code).toBe('BAD_REQUEST');
    }
    for (const url of ['ftp://127.0.0.1/x', 'not a url']) expect((await failure(c.request(post(url), 100))).code).toBe('BAD_REQUEST');
    expect(srv.received.length).toBe(0);
  });

  it('keeps 64 concurrent exchanges apart', async () => {
    const srv = await rawServer(async (s, req) => {
      await sleep((req.index * 7) % 13);
      s.write(ok(req.body.toString('utf8')));
    });
    const c = client();
    const bodies = Array.from({ length: 64 }, (_, i) => JSON.stringify({ i, pad: 'p'.repeat(i * 100) }));
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(bodies.map((b) => c.request(post(srv.url, b), 1 << 20)));
      expect(answers.map((a) => a.body.toString('utf8'))).toEqual(bodies);
    }
    expect(srv.connections()).toBeLessThanOrEqual(64);
  });

  it('speaks TLS to https origins and resumes the session on a new connection', async () => {
    const cert = createSelfSignedCertificate(['localhost']);
    const tlsConns: boolean[] = [];
    const server = createTlsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      res.setHeader('connection', 'close');
      res.end(JSON.stringify({ path: req.url, alpn: (req.socket as import('node:tls').TLSSocket).alpnProtocol }));
    });
    server.on('secureConnection', (s) => tlsConns.push(s.isSessionReused()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => server.close(() => r())));
    const url = `https://localhost:${(server.address() as AddressInfo).port}/p?q=1`;
    const c = client({ tls: { ca: cert.certPem } });
    expect(JSON.parse((await c.request(post(url), 1000)).body.toString())).toEqual({ path: '/p?q=1', alpn: 'http/1.1' });
    await c.request(post(url), 1000);
    expect(tlsConns).toEqual([false, true]);
    // Without the CA the certificate is refused.
    expect((await failure(client().request(post(url), 1000))).code).toBe('CONNECT');
  });
});
