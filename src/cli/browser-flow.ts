// The CLI ⇄ browser handshake of `nexus login` and `nexus service add`: listen on 127.0.0.1:0,
// mint a 16-byte hex state, open the console page with ?port=&state=, and wait (bounded) for the
// page to send the browser to http://127.0.0.1:PORT/callback?state=…. A callback with a missing
// or wrong state is refused with 400 and does not end the wait, so a stray local request cannot
// abort or hijack the flow.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { safeEqual } from '../core/crypto/tokens.ts';
import { cliEnv } from '../core/config/config.ts';
import { CliError } from './cli-credentials.ts';

export const CALLBACK_TIMEOUT_MS = 120_000;

export interface Callback {
  port: number;
  state: string;
  /** Resolves with the callback's query once a request with the right state arrives. */
  result: Promise<URLSearchParams>;
  close(): void;
}

const page = (title: string, text: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>${title}</title></head><body><h1>${title}</h1><p>${text}</p></body></html>\n`;

export async function startCallback(timeoutMs = CALLBACK_TIMEOUT_MS): Promise<Callback> {
  const state = randomBytes(16).toString('hex');
  let settle!: { resolve(q: URLSearchParams): void; reject(e: Error): void };
  const result = new Promise<URLSearchParams>((resolve, reject) => (settle = { resolve, reject }));
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const headers = { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' };
    if (req.method !== 'GET' || url.pathname !== '/callback') {
      res.writeHead(404, headers).end(page('Not found', 'Nothing here.'));
      return;
    }
    const got = url.searchParams.get('state');
    if (!got || !safeEqual(got, state)) {
      res.writeHead(400, headers).end(page('Refused', 'This callback does not belong to the waiting nexus command (state mismatch).'));
      return;
    }
    res.writeHead(200, headers).end(page('Done', 'You can close this tab and return to your terminal.'));
    settle.resolve(url.searchParams);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const timer = setTimeout(() => settle.reject(new CliError(`no answer from the browser within ${Math.round(timeoutMs / 1000)} s; run the command again`)), timeoutMs);
  const close = () => {
    clearTimeout(timer);
    server.closeAllConnections();
    server.close();
  };
  result.then(close, close);
  return { port, state, result, close };
}

/**
 * Opens `url` with NEXUS_BROWSER / BROWSER when set (the URL is its one argument; "none" opens
 * nothing), else the desktop's opener. Never fails the command: the URL is printed as well.
 */
export function openBrowser(url: string): void {
  const configured = cliEnv().browser;
  if (configured === 'none') return;
  const [cmd, args] = configured
    ? [configured, [url]]
    : process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(cmd, args, { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    /* the printed URL is the fallback */
  }
}
