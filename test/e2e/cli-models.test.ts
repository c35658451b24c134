// `nexus provider …` and `nexus model …` against a real appliance and a local upstream: a provider
// added with its key from the environment or piped stdin (never a flag, never printed), a model with
// two deployments, prices, routing and cache set from flags, a call through it reaching the provider
// with that key, edits and removal; bad flags exit 2 before the appliance is asked.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, setupAdmin, type Admin } from '../helpers/api.ts';
import { nexus, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { createKey } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let env: Record<string, string>;

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  admin = await setupAdmin(app);
  env = { NEXUS_URL: app.url, NEXUS_TOKEN: admin.token, XDG_CONFIG_HOME: tempDir('nexus-cli-cfg-') };
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

const get = async (path: string) => json(await fetch(`${app.url}${path}`, authed(admin.token)));

describe('nexus provider and nexus model', () => {
  it('adds providers with keys from the environment or stdin, and a model that routes through them', async () => {
    const a = await nexus(['provider', 'add', 'primary', '--type', 'openai', '--base-url', `${up.url}/v1`, '--api-key-env', 'UPSTREAM_KEY'], { env: { ...env, UPSTREAM_KEY: 'sk-from-env-123' } });
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toContain('Provider "primary" added');
    expect(a.stdout + a.stderr).not.toContain('sk-from-env-123');
    const b = await nexus(['provider', 'add', 'backup', '--type', 'openai-compatible', '--base-url', `${up.url}/v1`], { env, input: 'sk-piped-456\n' });
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout + b.stderr).not.toContain('sk-piped-456');

    const m = await nexus(['model', 'add', 'team-gpt', '--deploy', 'primary:up-primary', '--deploy', 'backup:up-backup:1:3',
      '--input-price', '2.5', '--output-price', '10', '--audio-price', '0.006', '--cache-ttl', '10m', '--routing', 'latency'], { env });
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout).toContain('Model "team-gpt" added with 2 deployments.');
    const model = await get('/api/v1/models/team-gpt');
    expect(model).toMatchObject({ input_price_per_mtok: 2.5, output_price_per_mtok: 10, audio_input_price_per_minute: 0.006, tts_price_per_mchar: null, cache_ttl_seconds: 600, routing_strategy: 'latency' });
    expect(model.deployments.map((d: { upstream_model: string; priority: number; weight: number }) => [d.upstream_model, d.priority, d.weight])).toEqual([['up-primary', 0, 1], ['up-backup', 1, 3]]);

    const client = new OpenAI({ apiKey: (await createKey(app, admin.token)).key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const res = await client.chat.completions.create({ model: 'team-gpt', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.choices[0]!.message.content).toBe('echo: hi');
    const seen = up.requests.at(-1)!;
    expect([seen.body!.model, seen.headers.authorization]).toEqual(['up-primary', 'Bearer sk-from-env-123']);

    const list = await nexus(['provider', 'list'], { env });
    expect(list.stdout).toMatch(/primary\s+openai\s+\S+\s+stored\s+direct/);
    expect(list.stdout).not.toContain('sk-');
    const models = await nexus(['model', 'list'], { env });
    expect(models.stdout).toMatch(/team-gpt\s+primary:up-primary:0:1 backup:up-backup:1:3\s+\$2\.5\/\$10\/-\s+\$0\.006\s+-\s+latency\s+600s/);
  });

  it('updates and removes them, only what the flags name', async () => {
    const key = await nexus(['provider', 'update', 'primary', '--api-key-env', 'NEW_KEY', '--api-version', 'none'], { env: { ...env, NEW_KEY: 'sk-rotated-789' } });
    expect(key.code, key.stderr).toBe(0);
    expect(key.stdout).toContain('Provider "primary" updated: api_version, new key.');
    const client = new OpenAI({ apiKey: (await createKey(app, admin.token)).key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    await client.chat.completions.create({ model: 'team-gpt', messages: [{ role: 'user', content: 'again' }] });
    expect(up.requests.at(-1)!.headers.authorization).toBe('Bearer sk-rotated-789');

    const upd = await nexus(['model', 'update', 'team-gpt', '--cache-ttl', 'none', '--cached-price', '1.25', '--audio-price', 'none', '--tts-price', '15', '--deploy', 'backup:only-backup', '--json'], { env });
    expect(upd.code, upd.stderr).toBe(0);
    expect(JSON.parse(upd.stdout)).toMatchObject({
      cache_ttl_seconds: null, cached_input_price_per_mtok: 1.25, audio_input_price_per_minute: null, tts_price_per_mchar: 15, routing_strategy: 'latency', input_price_per_mtok: 2.5,
    });
    expect((await get('/api/v1/models/team-gpt')).deployments.map((d: { upstream_model: string }) => d.upstream_model)).toEqual(['only-backup']);

    // A provider a model still uses cannot go; after the model, it can.
    const busy = await nexus(['provider', 'remove', 'backup'], { env });
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain('provider is used by a model deployment');
    expect((await nexus(['model', 'remove', 'team-gpt'], { env })).code).toBe(0);
    expect((await nexus(['provider', 'remove', 'backup'], { env })).code).toBe(0);
    expect((await get('/api/v1/providers')).items.map((p: { name: string }) => p.name)).toEqual(['primary']);
    const noKey = await nexus(['provider', 'update', 'primary', '--no-api-key', '--json'], { env });
    expect(JSON.parse(noKey.stdout).has_api_key).toBe(false);
  });

  it('refuses bad flags with exit 2 before asking the appliance, and unknown names with exit 1', async () => {
    const before = (await get('/api/v1/providers')).items.length;
    for (const [args, text] of [
      [['provider', 'add', 'x'], '--type is required'],
      [['provider', 'add', 'x', '--type', 'openia'], '--type must be one of'],
      [['provider', 'add', 'x', '--type', 'openai', '--api-key-env', 'NOPE_NOT_SET'], 'NOPE_NOT_SET is empty or not set'],
      [['provider', 'add', 'x', '--type', 'openai', '--no-api-key', '--api-key-env', 'A'], 'cannot go with'],
      [['provider', 'add', 'x', '--type', 'openai', '--api-key', 'sk-in-a-flag'], 'api-key'],
      [['provider', 'update', 'primary'], 'nothing to change'],
      [['provider', 'update', 'primary', '--type', 'gemini'], 'cannot change'],
      [['model', 'add', 'm'], '--deploy is required'],
      [['model', 'add', 'm', '--deploy', 'primary'], 'expected PROVIDER:UPSTREAM'],
      [['model', 'add', 'm', '--deploy', 'primary:x:'], 'expected PROVIDER:UPSTREAM'],
      [['model', 'add', 'm', '--deploy', 'primary:x', '--input-price=-1'], '--input-price must be a non-negative number'],
      [['model', 'add', 'm', '--deploy', 'primary:x', '--output-price', 'free'], '--output-price must be a non-negative number'],
      [['model', 'add', 'm', '--deploy', 'primary:x', '--cache-ttl', 'soon'], '--cache-ttl must be a duration'],
      [['model', 'add', 'm', '--deploy', 'primary:x', '--cache-ttl', '60d'], 'between 1s and 30d'],
      [['model', 'add', 'm', '--deploy', 'primary:x', '--routing', 'fastest'], '--routing must be one of'],
      [['model', 'add', 'm', '--deploy', 'primary:x', '--cache-ttl', 'none'], 'none is for update only'],
      [['model', 'add', 'm', '--deploy', 'primary:x', '--audio-price', 'none'], 'none is for update only'],
      [['model', 'add', 'm', '--deploy', 'primary:x', '--audio-price', '1e400'], '--audio-price must be a non-negative number'],
      [['model', 'add', 'm', '--deploy', 'primary:x', '--tts-price=-15'], '--tts-price must be a non-negative number'],
      [['model', 'update', 'm', '--tts-price', '15 USD'], '--tts-price must be a non-negative number'],
      [['model', 'update', 'm'], 'nothing to change'],
    ] as const) {
      const r = await nexus([...args], { env });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(text);
    }
    expect((await get('/api/v1/providers')).items.length).toBe(before);
    // No subcommand, or an unknown one, prints the usage with exit 2; --help prints it with exit 0.
    for (const [args, code, usage] of [[['provider'], 2, 'nexus provider add NAME'], [['model', 'frobnicate'], 2, 'nexus model add NAME'],
      [['model', '--help'], 0, 'nexus model add NAME'], [['key', '-h'], 0, 'nexus key create NAME']] as const) {
      const r = await nexus([...args], { env });
      expect([r.code, r.stdout.includes(usage)], args.join(' ')).toEqual([code, true]);
    }
    const unknown = await nexus(['model', 'add', 'm', '--deploy', 'ghost:x'], { env });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no provider named "ghost"');
    // The appliance's own checks come back as they are (a duplicate name).
    const dup = await nexus(['provider', 'add', 'primary', '--type', 'openai', '--no-api-key'], { env });
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('already exists');
  });
});
