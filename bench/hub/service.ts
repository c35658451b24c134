// The local service the hub benches relay to, in its own process: GET /small (an 11-byte JSON),
// GET /download?bytes=N (N bytes in 256 KiB writes, honouring back-pressure), POST /upload (counts the
// body and answers the count); every path but /health wants `Authorization: Bearer <token>`.
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { freePort, waitFor } from '../lib.ts';

export async function startHubService(token: string): Promise<{ proc: ChildProcess; url: string; port: number }> {
  const port = await freePort();
  const code = `
import { createServer } from 'node:http';
const chunk = Buffer.alloc(256 * 1024, 120);
createServer((req, res) => {
  if (req.url === '/health') { res.writeHead(200).end(); return; }
  if (req.headers.authorization !== 'Bearer ${token}') { res.writeHead(401).end(); req.resume(); return; }
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/small') { res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'); return; }
  if (url.pathname === '/download') {
    let left = Number(url.searchParams.get('bytes'));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) });
    const pump = () => { while (left > 0) { const c = left >= chunk.length ? chunk : chunk.subarray(0, left); left -= c.length; if (!res.write(c)) return res.once('drain', pump); } res.end(); };
    pump(); return;
  }
  if (url.pathname === '/upload') { let n = 0; req.on('data', (c) => (n += c.length)); req.on('end', () => res.writeHead(200).end(String(n))); return; }
  res.writeHead(404).end();
}).listen(${port}, '127.0.0.1');
`;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/health`);
  return { proc, url, port };
}

const MB = 1024 * 1024;

/** GETs `bytes` from a /download URL and reads them all; resolves to MB/s (MiB per second). */
export function bulkDownload(url: string, headers: Record<string, string>, bytes: number): Promise<number> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const req = httpRequest(url, { headers }, (r) => {
      let n = 0;
      r.on('data', (c: Buffer) => (n += c.length));
      r.on('end', () => (n === bytes ? res((bytes / MB) / ((performance.now() - t0) / 1000)) : rej(new Error(`got ${n} bytes`))));
      r.on('error', rej);
    });
    req.on('error', rej);
    req.end();
  });
}

/** POSTs `bytes` (a whole number of MiB) to an /upload URL in 1 MiB writes; resolves to MB/s. */
export function bulkUpload(url: string, headers: Record<string, string>, bytes: number): Promise<number> {
  return new Promise((res, rej) => {
    const chunk = Buffer.alloc(MB, 121);
    const t0 = performance.now();
    const req = httpRequest(url, { method: 'POST', headers: { ...headers, 'content-length': String(bytes) } }, (r) => {
      let body = '';
      r.on('data', (c) => (body += c));
      r.on('end', () => (Number(body) === bytes ? res((bytes / MB) / ((performance.now() - t0) / 1000)) : rej(new Error(`service got ${body}`))));
    });
    req.on('error', rej);
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!req.write(chunk)) return req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}
