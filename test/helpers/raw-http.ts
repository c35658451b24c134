// One HTTP/1.1 exchange as exact bytes, for tests that must control what goes on the wire (split
// heads, odd headers, bodies cut short) and see the answer as it came back.
import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  /** Header names lower-cased; a repeated header keeps its last value. */
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `parts` on a new connection to 127.0.0.1:`port`, 20 ms apart, and reads until the server
 * closes it. Interim 1xx answers (node sends 100 Continue for `Expect: 100-continue`) are skipped.
 * Rejects when no close comes within `timeoutMs`.
 */
export function rawRequest(port: number, parts: (string | Buffer)[], timeoutMs: number): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const out: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no answer in time'));
    }, timeoutMs);
    sock.on('data', (d) => out.push(d));
    sock.on('error', reject);
    sock.on('end', () => {
      clearTimeout(timer);
      const text = Buffer.concat(out).toString().replace(/^(?:HTTP\/1\.1 1\d\d[^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, '');
      const split = text.indexOf('\r\n\r\n');
      const [statusLine, ...rest] = text.slice(0, split).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of rest) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(split + 4) });
    });
    let i = 0;
    const next = () => {
      if (i < parts.length) sock.write(parts[i++]!, () => setTimeout(next, 20));
    };
    sock.once('connect', next);
  });
}
