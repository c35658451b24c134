// `nexus agent daemon`: the units it writes pass systemd's own verifier, differ per profile, and start
// a working agent when their ExecStart line is run with exactly the environment the unit gives it, the
// way systemd would run it (this machine has no systemd as PID 1, so the line is run directly). The
// launchd jobs (macOS) the same way: their property lists read back by Python's plistlib, and their
// ProgramArguments run with their EnvironmentVariables.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentCli } from '../helpers/agent.ts';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';

const HAVE_SYSTEMD_ANALYZE = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;
if (!HAVE_SYSTEMD_ANALYZE) console.warn('agent-daemon: unit verification SKIPPED — systemd-analyze is not installed');
const HAVE_PLISTLIB = spawnSync('python3', ['-c', 'import plistlib'], { encoding: 'utf8' }).status === 0;
if (!HAVE_PLISTLIB) console.warn('agent-daemon: property list cross-check SKIPPED — python3 is not installed');

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
    expect(r.stdout).toContain(`Would write ${path}:\n[Unit]\n`);
    expect(r.stdout).toContain(`Environment=NEXUS_AGENT_HOME=${home}\n`);
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

type Plist = string | number | boolean | Plist[] | { [key: string]: Plist };

/** A property list (the XML form launchd reads) as values: dict, array, key, string, integer, true, false. */
function parsePlist(text: string): Plist {
  const unescape = (t: string) => t.replace(/&(lt|gt|quot|apos|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e]!);
  const tokens = [...text.replace(/<\?xml[^>]*\?>|<!DOCTYPE[^>]*>/g, '').matchAll(/<(\/?)(\w+)(?:\s[^>]*?)?(\/?)>|([^<]+)/g)].filter((m) => m[4] === undefined || m[4].trim() !== '');
  let i = 0;
  const expectTag = (name: string, closing: boolean) => {
    const t = tokens[i++];
    if (!t || t[2] !== name || (t[1] === '/') !== closing) throw new Error(`expected <${closing ? '/' : ''}${name}>, got ${t?.[0]}`);
  };
  const text_ = (name: string): string => {
    expectTag(name, false);
    const t = tokens[i]?.[4] !== undefined ? unescape(tokens[i++]![4]!) : '';
    expectTag(name, true);
    return t;
  };
  const value = (): Plist => {
    const t = tokens[i]!;
    const name = t[2]!;
    if (t[3] === '/') {
      i++;
      if (name === 'true' || name === 'false') return name === 'true';
      throw new Error(`unexpected <${name}/>`);
    }
    if (name === 'string') return text_('string');
    if (name === 'integer') return Number(text_('integer'));
    if (name === 'array') {
      i++;
      const out: Plist[] = [];
      while (tokens[i]![2] !== 'array') out.push(value());
      expectTag('array', true);
      return out;
    }
    if (name === 'dict') {
      i++;
      const out: Record<string, Plist> = {};
      while (tokens[i]![2] !== 'dict') out[text_('key')] = value();
      expectTag('dict', true);
      return out;
    }
    throw new Error(`unexpected <${name}>`);
  };
  expectTag('plist', false);
  const v = value();
  expectTag('plist', true);
  if (i !== tokens.length) throw new Error('trailing content');
  return v;
}

describe('nexus agent daemon --manager launchd', () => {
  const job = (profile: string) => join(root, 'Library/LaunchDaemons', `nexus.agent.${profile}.plist`);
  const plist = (path: string) => parsePlist(readFileSync(path, 'utf8')) as Record<string, Plist>;

  it('writes one job per profile under LaunchDaemons: started at load, restarted after a failure only', async () => {
    for (const profile of ['east', 'west']) {
      const r = await agentCli(home, ['daemon', 'install', '--manager', 'launchd', '--system', '--profile', profile, '--root', root]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(job(profile));
      expect(r.stdout).not.toContain('linger');
    }
    const east = plist(job('east'));
    expect(east).toMatchObject({
      Label: 'nexus.agent.east',
      EnvironmentVariables: { NEXUS_AGENT_HOME: home, NEXUS_AGENT_SUPERVISOR: 'launchd' },
      RunAtLoad: true,
      KeepAlive: { SuccessfulExit: false },
      ThrottleInterval: 5,
      StandardOutPath: '/Library/Logs/nexus-agent-east.log',
      StandardErrorPath: '/Library/Logs/nexus-agent-east.log',
    });
    expect(typeof east.UserName).toBe('string');
    expect((east.ProgramArguments as string[]).slice(-4)).toEqual(['agent', 'start', '--profile', 'east']);
    expect(plist(job('west')).Label).toBe('nexus.agent.west');
  });

  it('escapes what XML would misread, as plistlib reads it back', async () => {
    const odd = join(tempDir('nexus-daemon-odd-'), `a & <b> "c" 'd'`);
    mkdirSync(odd);
    const r = await agentCli(odd, ['daemon', 'install', '--manager', 'launchd', '--user', '--print']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^warning: this agent home is not enrolled/);
    const ours = parsePlist(r.stdout) as Record<string, Plist>;
    expect(ours.EnvironmentVariables).toEqual({ NEXUS_AGENT_HOME: odd, NEXUS_AGENT_SUPERVISOR: 'launchd' });
    expect(ours.UserName).toBeUndefined();
    expect(ours.StandardOutPath).toMatch(/\/Library\/Logs\/nexus-agent\.log$/);
    if (HAVE_PLISTLIB) {
      const py = spawnSync('python3', ['-c', 'import json, plistlib, sys; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))'], { input: r.stdout, encoding: 'utf8' });
      expect(py.status, py.stderr).toBe(0);
      expect(JSON.parse(py.stdout)).toEqual(ours);
    }
  });

  it('names the launchctl and tail commands for the profile job', async () => {
    const expected: Record<string, string> = {
      install: `Would write /Library/LaunchDaemons/nexus.agent.west.plist:`,
      start: 'launchctl bootstrap system /Library/LaunchDaemons/nexus.agent.west.plist',
      stop: 'launchctl bootout system/nexus.agent.west',
      status: 'launchctl print system/nexus.agent.west',
      logs: 'tail -n 200 /Library/Logs/nexus-agent-west.log',
      uninstall: 'launchctl bootout system/nexus.agent.west\nlaunchctl disable system/nexus.agent.west\nWould remove /Library/LaunchDaemons/nexus.agent.west.plist',
    };
    for (const [action, lines] of Object.entries(expected)) {
      const r = await agentCli(home, ['daemon', action, '--manager', 'launchd', '--system', '--profile', 'west', '--dry-run']);
      expect(r.code, r.stderr).toBe(0);
      if (action === 'install') {
        expect(r.stdout.startsWith(`${lines}\n<?xml`), r.stdout).toBe(true);
        expect(r.stdout.trimEnd().endsWith('launchctl enable system/nexus.agent.west'), r.stdout).toBe(true);
      } else expect(r.stdout.trim()).toBe(lines);
    }
    const follow = await agentCli(home, ['daemon', 'logs', '-f', '--manager', 'launchd', '--system', '--profile', 'west', '--dry-run']);
    expect(follow.stdout.trim()).toBe('tail -f -n 200 /Library/Logs/nexus-agent-west.log');
    const bad = await agentCli(home, ['daemon', 'start', '--manager', 'upstart', '--dry-run']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('nexus agent daemon: --manager must be systemd or launchd\n');
    // systemd's uninstall: disabled and stopped, the unit file removed, then systemd reloaded.
    const sd = await agentCli(home, ['daemon', 'uninstall', '--profile', 'west', '--dry-run']);
    expect(sd.stdout.trim()).toBe('systemctl disable --now nexus-agent-west.service\nWould remove /etc/systemd/system/nexus-agent-west.service\nsystemctl daemon-reload');
  });

  it('starts a connected agent from the job ProgramArguments and EnvironmentVariables alone', async () => {
    const p = plist(job('west'));
    const [cmd, ...args] = p.ProgramArguments as string[];
    const proc = spawn(cmd!, args, { cwd: p.WorkingDirectory as string, env: { PATH: '/usr/bin:/bin', ...(p.EnvironmentVariables as Record<string, string>) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    try {
      for (let i = 0; i < 200 && !/Connected to hub/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      expect(out).toMatch(/Connected to hub/);
      const node = await json(await fetch(`${app.url}/api/v1/nodes/${nodes.west}`, authed(admin.token)));
      expect(node.status).toBe('online');
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
  });

  it('under launchd a permanent refusal exits 0, so the job is not restarted into it; elsewhere 3', async () => {
    const reg = await json(await post(`${app.url}/api/v1/nodes`, { name: 'daemon-gone' }, { authorization: `Bearer ${admin.token}` }));
    const enrolled = await agentCli(home, ['enroll', '--profile', 'gone', '--url', `${app.url.replace('http', 'ws')}/ws`, '--token', reg.registration_token]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const del = await fetch(`${app.url}/api/v1/nodes/${reg.id}`, authed(admin.token, { method: 'DELETE' }));
    expect(del.status).toBeLessThan(300);
    const underLaunchd = await agentCli(home, ['start', '--profile', 'gone'], { NEXUS_AGENT_SUPERVISOR: 'launchd' });
    expect(underLaunchd.code, underLaunchd.stderr).toBe(0);
    expect(underLaunchd.stderr).toMatch(/^nexus agent start: .*close 4003/m);
    const plain = await agentCli(home, ['start', '--profile', 'gone']);
    expect(plain.code).toBe(3);
  });
});
