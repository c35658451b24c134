// `nexus agent daemon`: the units it writes pass systemd's own verifier, differ per profile, and start
// a working agent when their ExecStart line is run with exactly the environment the unit gives it, the
// way systemd would run it (this machine has no systemd as PID 1, so the line is run directly).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentCli } from '../helpers/agent.ts';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';

const HAVE_SYSTEMD_ANALYZE = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;
if (!HAVE_SYSTEMD_ANALYZE) console.warn('agent-daemon: unit verification SKIPPED — systemd-analyze is not installed');

let app: Appliance;
let admin: Admin;
const home = tempDir('nexus-agent-daemon-');
const root = tempDir('nexus-daemon-root-');
const nodes: Record<string, string> = {};

beforeAll(async () => {
  const cfg = join(tempDir('nexus-daemon-cfg-'), 'nexus.yaml');
  writeFileSync(cfg, 'hub:\n  heartbeatSeconds: 1\n');
  app = await startAppliance({ args: ['--config', cfg] });
  admin = await setupAdmin(app);
  for (const profile of ['east', 'west']) {
    const reg = await json(await post(`${app.url}/api/v1/nodes`, { name: `daemon-${profile}` }, { authorization: `Bearer ${admin.token}` }));
    nodes[profile] = reg.id;
    const r = await agentCli(home, ['enroll', '--profile', profile, '--url', `${app.url.replace('http', 'ws')}/ws`, '--token', reg.registration_token]);
    expect(r.code, r.stderr).toBe(0);
  }
});
afterAll(async () => {
  await app?.stop();
});

/** The [Service] settings of a unit file, each key with all its values in order. */
function serviceSettings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const line of text.split('\n')) {
    const s = /^\[(.+)\]$/.exec(line.trim());
    if (s) section = s[1]!;
    const kv = /^(\w+)=(.*)$/.exec(line);
    if (kv && section === 'Service') out.set(kv[1]!, [...(out.get(kv[1]!) ?? []), kv[2]!]);
  }
  return out;
}

/** Splits a systemd command line or assignment (systemd.syntax(7): double quotes, backslash escapes). */
function systemdWords(line: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m; (m = re.exec(line)); ) words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1').replace(/%%/g, '%') : m[2]!.replace(/%%/g, '%'));
  return words;
}

describe('nexus agent daemon', () => {
  const unitFile = (profile: string) => join(root, 'etc/systemd/system', `nexus-agent-${profile}.service`);

  it('writes one unit per profile, under distinct names', async () => {
    for (const profile of ['east', 'west']) {
      const r = await agentCli(home, ['daemon', 'install', '--profile', profile, '--root', root, '--dry-run']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(unitFile(profile));
    }
    const east = readFileSync(unitFile('east'), 'utf8');
    const west = readFileSync(unitFile('west'), 'utf8');
    expect(east).not.toBe(west);
    expect(serviceSettings(east).get('ExecStart')![0]).toMatch(/ agent start --profile east$/);
    expect(serviceSettings(east).get('RestartPreventExitStatus')).toEqual(['3']);
  });

  it.skipIf(!HAVE_SYSTEMD_ANALYZE)('passes systemd-analyze verify without a warning', () => {
    const r = spawnSync('systemd-analyze', ['verify', unitFile('east'), unitFile('west')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
  });

  it('changes nothing on the host with --dry-run alone: it names the unit file it would write', async () => {
    const fakeHome = tempDir('nexus-daemon-home-');
    const r = await agentCli(home, ['daemon', 'install', '--profile', 'dry', '--user', '--dry-run'], { HOME: fakeHome });
    expect(r.code, r.stderr).toBe(0);
    const path = join(fakeHome, '.config/systemd/user/nexus-agent-dry.service');
    expect(r.stdout).toContain(`Would write ${path}\n`);
    expect(r.stdout).toContain('systemctl --user enable nexus-agent-dry.service');
    expect(existsSync(path)).toBe(false);
    // The profile is not enrolled, and a user unit needs lingering to run without a session: both said.
    expect(r.stderr).toMatch(/^warning: profile "dry" is not enrolled \(.+\); the unit would restart every 5 s until it is: nexus agent enroll --url wss:\/\/HOST\/ws --token nx_nreg_… --profile dry\n$/);
    expect(r.stdout).toMatch(/run once: loginctl enable-linger \S+\n$/);
  });

  it('refuses to install the unit of a profile that is not enrolled; --print shows it with a warning', async () => {
    const fakeHome = tempDir('nexus-daemon-home-');
    const r = await agentCli(home, ['daemon', 'install', '--profile', 'never-enrolled', '--user'], { HOME: fakeHome });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`nexus agent daemon: profile "never-enrolled" is not enrolled (${join(home, 'profiles/never-enrolled')}); run nexus agent enroll --url wss://HOST/ws --token nx_nreg_… --profile never-enrolled first\n`);
    expect(r.stdout).toBe('');
    expect(existsSync(join(fakeHome, '.config'))).toBe(false);
    // Under --root the unit goes into an image whose instances enroll at first boot (until then the
    // unit's restarts wait for it): written, with the warning.
    const imageRoot = tempDir('nexus-daemon-root-');
    const image = await agentCli(home, ['daemon', 'install', '--profile', 'never-enrolled', '--system', '--root', imageRoot]);
    expect(image.code, image.stderr).toBe(0);
    expect(image.stderr).toMatch(/^warning: profile "never-enrolled" is not enrolled/);
    expect(existsSync(join(imageRoot, 'etc/systemd/system/nexus-agent-never-enrolled.service'))).toBe(true);
    const printed = await agentCli(home, ['daemon', 'install', '--profile', 'never-enrolled', '--print']);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toMatch(/^\[Unit\]\n/);
    expect(printed.stderr).toMatch(/^warning: profile "never-enrolled" is not enrolled/);
    // An enrolled profile's unit is written as before, with no warning; a system unit needs no lingering.
    const enrolled = await agentCli(home, ['daemon', 'install', '--profile', 'east', '--system', '--root', tempDir('nexus-daemon-root-')]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(enrolled.stderr).toBe('');
    expect(enrolled.stdout).not.toContain('linger');
  });

  it('passes --transport and --log-level on to agent start, and refuses bad values before writing', async () => {
    const r = await agentCli(home, ['daemon', 'install', '--profile', 'east', '--print', '--transport', 'http', '--log-level', 'debug']);
    expect(r.code, r.stderr).toBe(0);
    expect(serviceSettings(r.stdout).get('ExecStart')![0]).toMatch(/ agent start --transport http --log-level debug --profile east$/);
    for (const bad of [['--transport', 'pigeon'], ['--log-level', 'loud'], ['--transport', 'toString']]) {
      const refused = await agentCli(home, ['daemon', 'install', '--profile', 'east', '--print', ...bad]);
      expect(refused.code, bad.join(' ')).toBe(2);
      expect(refused.stderr, bad.join(' ')).toMatch(new RegExp(`^nexus agent daemon: ${bad[0]} must be`));
      expect(refused.stdout).toBe('');
    }
  });

  it('names the systemctl and journalctl commands for the profile unit', async () => {
    const expected: Record<string, string> = {
      start: 'systemctl start nexus-agent-west.service',
      stop: 'systemctl stop nexus-agent-west.service',
      status: 'systemctl status --no-pager nexus-agent-west.service',
      logs: 'journalctl -u nexus-agent-west.service --no-pager -n 200',
    };
    for (const [action, line] of Object.entries(expected)) {
      const r = await agentCli(home, ['daemon', action, '--profile', 'west', '--dry-run']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(line);
    }
  });

  it('starts a connected agent, heartbeats logged, from the unit ExecStart and Environment alone', async () => {
    const s = serviceSettings(readFileSync(unitFile('east'), 'utf8'));
    const [cmd, ...args] = systemdWords(s.get('ExecStart')![0]!);
    const env: Record<string, string> = { PATH: '/usr/bin:/bin' };
    for (const assignment of s.get('Environment') ?? []) {
      for (const w of systemdWords(assignment)) {
        const i = w.indexOf('=');
        env[w.slice(0, i)] = w.slice(i + 1);
      }
    }
    expect(env.NEXUS_AGENT_HOME).toBe(home);
    const proc = spawn(cmd!, args, { cwd: '/', env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    try {
      for (let i = 0; i < 200 && !(/Connected to hub/.test(out) && /heartbeat/.test(out)); i++) await new Promise((r) => setTimeout(r, 100));
      expect(out).toMatch(/Connected to hub/);
      expect(out).toMatch(/heartbeat/);
      const node = await json(await fetch(`${app.url}/api/v1/nodes/${nodes.east}`, authed(admin.token)));
      expect(node.status).toBe('online');
      const west = await json(await fetch(`${app.url}/api/v1/nodes/${nodes.west}`, authed(admin.token)));
      expect(west.status).not.toBe('online');
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
  });
});
