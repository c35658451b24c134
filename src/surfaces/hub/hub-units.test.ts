import { createServer, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log/log.ts';
import { Registry } from './registry.ts';
import { NodePicker } from './routing.ts';
import { guardedConnector, refusal } from './ssrf.ts';

describe('node picking', () => {
  it('prefers the lowest priority and spreads by weight within it', () => {
    const p = new NodePicker();
    const nodes = [
      { node_id: 'a', priority: 0, weight: 3 },
      { node_id: 'b', priority: 0, weight: 1 },
      { node_id: 'c', priority: 1, weight: 1 },
    ];
    const firsts = Array.from({ length: 8 }, () => p.order('s', nodes, () => true)[0]);
    expect(firsts.filter((x) => x === 'a')).toHaveLength(6);
    expect(firsts.filter((x) => x === 'b')).toHaveLength(2);
    expect(p.order('s', nodes, (id) => id === 'c')).toEqual(['c']);
    expect(p.order('s', nodes, () => false)).toEqual([]);
  });
});

describe('SSRF guard', () => {
  const opts = (allowPrivate: boolean) => ({ allowPrivate, ownListeners: () => ['127.0.0.1:8080', '127.0.0.1:9090'] });
  it('refuses metadata always, own listeners always, private ranges unless allowed', () => {
    expect(refusal('169.254.169.254', 80, opts(true))).toMatch(/metadata/);
    expect(refusal('::ffff:169.254.169.254', 80, opts(true))).toMatch(/metadata/);
    // The same host in every IPv6 spelling that reaches an IPv4 address.
    for (const ip of ['::ffff:a9fe:a9fe', '0:0:0:0:0:ffff:a9fe:a9fe', '::a9fe:a9fe', '::169.254.169.254', '64:ff9b::a9fe:a9fe', '64:ff9b::169.254.169.254', '64:ff9b:1::a9fe:a9fe', '64:ff9b::a9fe:aa02', '::ffff:6464:64c8']) {
      expect(refusal(ip, 80, opts(true)), ip).toMatch(/metadata/);
    }
    for (const ip of ['::7f00:1', '64:ff9b::a00:1', '64:ff9b::c0a8:101', '::ffff:7f00:1']) {
      expect(refusal(ip, 443, opts(false)), ip).toMatch(/allowPrivateTargets/);
    }
    expect(refusal('::7f00:1', 8080, opts(true))).toMatch(/own listeners/);
    expect(refusal('64:ff9b::5db8:d822', 443, opts(false))).toBeNull(); // NAT64 of a public address
    expect(refusal('127.0.0.1', 8080, opts(true))).toMatch(/own listeners/);
    expect(refusal('127.0.0.2', 9090, opts(true))).toMatch(/own listeners/);
    expect(refusal('127.0.0.1', 3000, opts(true))).toBeNull();
    for (const ip of ['127.0.0.1', '10.1.2.3', '192.168.0.1', '172.16.5.5', '169.254.1.1', '::1', 'fe80::1', 'fd00::1', '0.0.0.0', '100.64.0.1']) {
      expect(refusal(ip, 443, opts(false)), ip).toMatch(/allowPrivateTargets/);
    }
    expect(refusal('93.184.216.34', 443, opts(false))).toBeNull();
    expect(refusal('2606:2800:220:1::1', 443, opts(false))).toBeNull();
  });
});

describe('SSRF guard at connect time', () => {
  const listen = () => new Promise<Server>((resolve) => {
    const server = createServer((s) => s.end());
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
  const dial = (connect: ReturnType<typeof guardedConnector>, port: number) => new Promise<Error | Socket>((resolve) => {
    connect({ hostname: 'localhost', host: `localhost:${port}`, protocol: 'http:', port: String(port), servername: null } as never, (err, socket) => resolve(err ?? socket!));
  });

  it('refuses a name that resolves to the appliance\'s own listener, on that listener\'s port only', async () => {
    const [own, other] = await Promise.all([listen(), listen()]);
    const ownPort = (own.address() as { port: number }).port;
    const otherPort = (other.address() as { port: number }).port;
    try {
      const connect = guardedConnector({ allowPrivate: true, ownListeners: () => [`127.0.0.1:${ownPort}`] });
      const refused = await dial(connect, ownPort);
      expect(refused).toBeInstanceOf(Error);
      expect((refused as Error & { code?: string }).code).toBe('ESSRF');
      expect((refused as Error).message).toMatch(/own listeners/);
      const allowed = await dial(connect, otherPort);
      expect(allowed).not.toBeInstanceOf(Error);
      (allowed as Socket).destroy();
    } finally {
      own.close();
      other.close();
    }
  });
});

describe('relay totals', () => {
  // Sessions as the registry sees them: a node id, a close, and the mux's counters.
  const session = (nodeId: string) => ({ nodeId, remote: '127.0.0.1', closed: false, close() { this.closed = true; }, mux: { size: 0, bytesIn: 0, bytesOut: 0 } });
  const totals = (r: Registry) => r.totals();

  it('never go down: a replaced or gone session\'s bytes stay counted, once', () => {
    const r = new Registry(createLogger({ level: 'silent' }), () => {});
    const a = session('n1');
    r.add(a as never);
    a.mux.bytesIn = 100;
    a.mux.bytesOut = 40;
    a.mux.size = 2;
    expect(totals(r)).toEqual({ agents: 1, streams: 2, bytesIn: 100, bytesOut: 40 });
    // The same node connects again: the old session is closed, its bytes kept.
    const b = session('n1');
    r.add(b as never);
    expect(a.closed).toBe(true);
    b.mux.bytesIn = 10;
    expect(totals(r)).toEqual({ agents: 1, streams: 0, bytesIn: 110, bytesOut: 40 });
    // The old one's close arrives later (and more bytes it counted meanwhile are not added twice).
    a.mux.bytesIn = 150;
    r.remove(a as never);
    expect(totals(r)).toEqual({ agents: 1, streams: 0, bytesIn: 110, bytesOut: 40 });
    r.remove(b as never);
    r.remove(b as never);
    expect(totals(r)).toEqual({ agents: 0, streams: 0, bytesIn: 110, bytesOut: 40 });
  });
});
