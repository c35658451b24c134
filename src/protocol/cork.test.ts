import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { corkPerTick, corkPerTurn } from './cork.ts';

let closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers) c();
  closers = [];
});

/** A connected loopback pair: what the client writes, the server side collects. */
async function pair(): Promise<{ client: Socket; received: () => Buffer; reads: () => number }> {
  const chunks: Buffer[] = [];
  const server = createServer((s) => s.on('data', (d) => chunks.push(d)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  closers.push(() => (client.destroy(), server.close()));
  return { client, received: () => Buffer.concat(chunks), reads: () => chunks.length };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('corking', () => {
  it('corkPerTurn holds writes until the end of the loop turn, across ticks, then sends them in order', async () => {
    const { client, received } = await pair();
    const cork = corkPerTurn(client);
    cork();
    client.write('a');
    await Promise.resolve();
    process.nextTick(() => {
      cork();
      client.write('b');
    });
    await new Promise((r) => process.nextTick(r));
    expect(client.writableCorked).toBe(1); // still held after the ticks
    await turn();
    expect(client.writableCorked).toBe(0);
    for (let i = 0; i < 100 && received().length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(received().toString()).toBe('ab');
  });

  it('corkPerTick releases at the end of the tick', async () => {
    const { client } = await pair();
    const cork = corkPerTick(client);
    cork();
    cork(); // once per tick, not nested
    expect(client.writableCorked).toBe(1);
    await new Promise((r) => process.nextTick(r));
    expect(client.writableCorked).toBe(0);
  });

  it('does nothing without a socket or on a destroyed one', async () => {
    expect(() => corkPerTurn(null)()).not.toThrow();
    const { client } = await pair();
    client.destroy();
    corkPerTurn(client)();
    expect(client.writableCorked).toBe(0);
  });
});
