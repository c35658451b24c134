// The WebSocket opening handshake as the public listener answers it (RFC 6455 §4.2). ws, through
// @fastify/websocket, completes the handshake once the route's hooks have run; three things about it
// are settled here instead:
// - Which subprotocol the answer names (§4.2.2, /subprotocol/). ws asks `handleProtocols`, which sees
//   the request but not the route, so a route that must answer with another party's choice (the
//   service proxy, with the service's) records it on the request beforehand. Otherwise ws's default
//   stands: the first protocol the client offered.
// - Which other headers the 101 carries: the ones recorded with that choice (a service's Set-Cookie,
//   say), added in ws's `headers` event.
// - Whether a request is a handshake ws will complete at all, for a route that must know before it does
//   any work (the proxy dials the service first): the checks of §4.2.1 that ws makes, as a message.
import { validateHeaderName, validateHeaderValue, type IncomingMessage } from 'node:http';

const ANSWER = Symbol('nexus.websocket-answer');
interface Answer {
  protocol: string | false;
  headers: Record<string, string | string[]>;
}
type Marked = IncomingMessage & { [ANSWER]?: Answer };

/**
 * Makes the handshake answering `req` name `protocol` (no subprotocol at all when null) and carry
 * `headers` besides ws's own.
 */
export function answerWith(req: IncomingMessage, protocol: string | null, headers: Record<string, string | string[]> = {}): void {
  (req as Marked)[ANSWER] = { protocol: protocol ?? false, headers };
}

/** ws's `handleProtocols` (called only when the client offered some): the recorded choice, else the first offered. */
export function handleProtocols(offered: Set<string>, req: IncomingMessage): string | false {
  const answer = (req as Marked)[ANSWER];
  if (answer) return answer.protocol;
  return offered.values().next().value ?? false;
}

/**
 * ws's `headers` event: adds the recorded headers to the 101's lines. ws writes the handshake's own
 * (Upgrade, Connection, Sec-WebSocket-*) itself; a name or value that could not be sent as given
 * (a line break, say) is left out rather than let it split the response.
 */
export function addAnswerHeaders(lines: string[], req: IncomingMessage): void {
  const answer = (req as Marked)[ANSWER];
  if (!answer) return;
  for (const [name, value] of Object.entries(answer.headers)) {
    const lower = name.toLowerCase();
    if (lower === 'upgrade' || lower === 'connection' || lower === 'content-length' || lower.startsWith('sec-websocket-')) continue;
    for (const one of Array.isArray(value) ? value : [value]) {
      try {
        validateHeaderName(name);
        validateHeaderValue(name, one);
      } catch {
        continue;
      }
      lines.push(`${name}: ${one}`);
    }
  }
}

export type HandshakeCheck =
  | { ok: true; protocols: string[] }
  | { ok: false; message: string; headers: Record<string, string> };

const KEY = /^[+/0-9A-Za-z]{22}==$/; // base64 of 16 bytes (§4.1, item 7)
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 9110 §5.6.2

/** Whether ws would complete this upgrade request, and the subprotocols it offers (§4.2.1). */
export function checkHandshake(method: string, headers: IncomingMessage['headers']): HandshakeCheck {
  const refuse = (message: string, extra: Record<string, string> = {}): HandshakeCheck => ({ ok: false, message, headers: extra });
  if (method !== 'GET') return refuse('a WebSocket handshake is a GET request');
  if (String(headers.upgrade ?? '').toLowerCase() !== 'websocket') return refuse('the Upgrade header must be "websocket"');
  const key = headers['sec-websocket-key'];
  if (typeof key !== 'string' || !KEY.test(key)) return refuse('Sec-WebSocket-Key must be 16 bytes in base64');
  // §4.4: a server that does not speak the version names the one it does.
  if (headers['sec-websocket-version'] !== '13') return refuse('Sec-WebSocket-Version must be 13', { 'sec-websocket-version': '13' });
  const offered = headers['sec-websocket-protocol'];
  if (offered === undefined) return { ok: true, protocols: [] };
  const protocols = offered.split(',').map((p) => p.trim());
  if (protocols.some((p) => !TOKEN.test(p)) || new Set(protocols).size !== protocols.length) {
    return refuse('Sec-WebSocket-Protocol must be a list of distinct tokens');
  }
  return { ok: true, protocols };
}
