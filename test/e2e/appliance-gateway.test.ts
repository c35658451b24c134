// The AI gateway through the appliance's nginx site (TLS on a test port, test certificate): the
// official openai SDK lists models and streams a chat completion chunk by chunk — the upstream sends
// chunk n+1 only after the SDK has handed chunk n to the test, so any buffering on the way deadlocks
// and fails the bounded wait. (The gateway also sends X-Accel-Buffering: no; the nginx site's own
// settings are proven without that header in appliance-nginx.test.ts.)
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from '../../src/first-boot/certificate.ts';
import { setupAdmin, type Admin } from '../helpers/api.ts';
import { startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { createKey, createProvider, simpleModel } from '../helpers/gateway.ts';
import { nginxBinary, startSiteInFront, type RunningNginx } from '../helpers/nginx.ts';

const HAVE_NGINX = nginxBinary() !== null;
const dir = tempDir('nexus-gateway-edge-');
const cert = createSelfSignedCertificate(['localhost', '127.0.0.1']);
writeFileSync(join(dir, 'test.crt'), cert.certPem);
writeFileSync(join(dir, 'test.key'), cert.keyPem, { mode: 0o600 });

let app: Appliance;
let admin: Admin;
let nginx: RunningNginx;
let base: string;
const tls = new Agent({ connect: { ca: cert.certPem } });

// An OpenAI-compatible upstream that sends chunk n+1 only after the test has seen chunk n.
interface LockStep {
  server: Server;
  url: string;
  seen(n: number): void;
}
function startLockStepLlm(): Promise<LockStep> {
  let onSeen: (n: number) => void = () => {};
  const server = createServer(async (req, res) => {
    for await (const _ of req) { /* drain the request */ }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const chunk = (content: string | null, finish: string | null) =>
      `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'lock', choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }] })}\n\n`;
    const words = ['one', 'two', 'three'];
    let sent = 0;
    const next = () => {
      if (sent < words.length) res.write(chunk(words[sent++]!, null));
      else res.end(`${chunk(null, 'stop')}data: [DONE]\n\n`);
    };
    onSeen = (n) => {
      if (n === sent) next();
    };
    next();
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen: (n) => onSeen(n) })));
}
let llm: LockStep;

describe.skipIf(!HAVE_NGINX)('AI gateway through nginx', () => {
  beforeAll(async () => {
    [app, llm] = await Promise.all([startAppliance(), startLockStepLlm()]);
    admin = await setupAdmin(app);
    ({ nginx, base } = await startSiteInFront(dir, app.url));
  });
  afterAll(async () => {
    await nginx?.stop();
    await app?.stop();
    llm?.server.closeAllConnections();
    llm?.server.close();
  });

  it('streams a chat completion from the gateway to the openai SDK chunk by chunk', async () => {
    const provider = await createProvider(app, admin, { name: 'lockstep', type: 'openai-compatible', base_url: `${llm.url}/v1`, api_key: 'sk-upstream-lockstep' });
    await simpleModel(app, admin, provider.id, 'lock-model', 'lock');
    const { key } = await createKey(app, admin.token, { models: ['lock-model'] });
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, fetch: fetch as unknown as typeof globalThis.fetch, fetchOptions: { dispatcher: tls } as never, maxRetries: 0 });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toContain('lock-model');
    const stream = await client.chat.completions.create({ model: 'lock-model', messages: [{ role: 'user', content: 'count' }], stream: true });
    const words: string[] = [];
    for await (const part of stream) {
      const c = part.choices[0]?.delta?.content;
      if (c) {
        words.push(c);
        llm.seen(words.length); // the upstream sends the next chunk only now
      }
    }
    expect(words).toEqual(['one', 'two', 'three']);
  }, 60_000);
});
