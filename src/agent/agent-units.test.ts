import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backoffDelay } from './connect.ts';
import { credentialCovers } from './credentials-store.ts';
import { commandsFor, renderUnit, unitName, writeUnit, type DaemonTarget } from './daemon.ts';
import { enrollUrl, hubSocketUrl } from './enroll.ts';

describe('reconnect backoff', () => {
  it('doubles from 100 ms to a 60 s cap with jitter in [d/2, d]', () => {
    expect(backoffDelay(0, () => 1)).toBe(100);
    expect(backoffDelay(0, () => 0)).toBe(50);
    expect(backoffDelay(3, () => 1)).toBe(800);
    expect(backoffDelay(30, () => 1)).toBe(60_000);
    expect(backoffDelay(1000, () => 0)).toBe(30_000);
  });
});

describe('enroll URL', () => {
  it('derives the HTTP enroll endpoint from the WebSocket URL', () => {
    expect(enrollUrl('ws://127.0.0.1:8080/ws').toString()).toBe('http://127.0.0.1:8080/api/internal/things/enroll');
    expect(enrollUrl('wss://nexus.example.com/prefix/ws').toString()).toBe('https://nexus.example.com/prefix/api/internal/things/enroll');
    expect(() => enrollUrl('http://x/ws')).toThrow(/ws:\/\//);
    expect(() => enrollUrl('not a url')).toThrow(/not a URL/);
  });

  it('stores the socket address whichever form was given, and names it for an http(s) URL', () => {
    for (const given of ['ws://127.0.0.1:8080', 'ws://127.0.0.1:8080/', 'ws://127.0.0.1:8080/ws', 'ws://127.0.0.1:8080/ws/']) {
      expect(hubSocketUrl(given), given).toBe('ws://127.0.0.1:8080/ws');
    }
    expect(hubSocketUrl('wss://nexus.example.com/prefix/ws')).toBe('wss://nexus.example.com/prefix/ws');
    expect(hubSocketUrl('wss://nexus.example.com/prefix')).toBe('wss://nexus.example.com/prefix/ws');
    expect(() => hubSocketUrl('https://nexus.example.com')).toThrow('wss://nexus.example.com/ws, not https://');
    expect(() => hubSocketUrl('ftp://x/ws')).toThrow(/ws:\/\//);
  });
});

describe('credential scope', () => {
  it('covers only the same origin under the credential path', () => {
    expect(credentialCovers('http://localhost:3000', new URL('http://localhost:3000/api/x'))).toBe(true);
    expect(credentialCovers('http://localhost:3000/api', new URL('http://localhost:3000/api/x'))).toBe(true);
    expect(credentialCovers('http://localhost:3000/api', new URL('http://localhost:3000/apix'))).toBe(false);
    expect(credentialCovers('http://localhost:3000', new URL('http://evil.example:3000/'))).toBe(false);
    expect(credentialCovers('http://localhost:3000', new URL('https://localhost:3000/'))).toBe(false);
  });
});

describe('systemd unit', () => {
  const target = (profile: string | null, system = true): DaemonTarget => ({
    manager: 'systemd',
    profile,
    system,
    agentHome: '/var/lib/nexus agent',
    exec: ['/usr/local/bin/nexus', 'agent', 'start'],
    user: 'nexus',
  });
  it('renders distinct units per profile that start the agent with its home', () => {
    expect(unitName(null)).toBe('nexus-agent.service');
    expect(unitName('lab')).toBe('nexus-agent-lab.service');
    const unit = renderUnit(target('lab'));
    expect(unit).toContain('ExecStart=/usr/local/bin/nexus agent start --profile lab');
    expect(unit).toContain('Environment="NEXUS_AGENT_HOME=/var/lib/nexus agent"');
    expect(unit).toContain('Restart=always');
    expect(unit).toContain('RestartPreventExitStatus=3');
    expect(unit).toContain('User=nexus');
    expect(unit).toContain('WantedBy=multi-user.target');
    expect(renderUnit(target(null, false))).toContain('WantedBy=default.target');
  });
  it('writes under --root and names the systemctl commands', () => {
    const root = mkdtempSync(join(tmpdir(), 'nexus-root-'));
    const path = writeUnit(target('lab'), root);
    expect(path).toBe(join(root, 'etc/systemd/system/nexus-agent-lab.service'));
    expect(readFileSync(path, 'utf8')).toContain('--profile lab');
    const argv = (...a: Parameters<typeof commandsFor>) => commandsFor(...a).map((c) => c.argv);
    expect(argv('install', target('lab'))).toEqual([['systemctl', 'daemon-reload'], ['systemctl', 'enable', 'nexus-agent-lab.service']]);
    expect(argv('start', target(null, false))).toEqual([['systemctl', '--user', 'start', 'nexus-agent.service']]);
    expect(argv('logs', target('lab'), true)[0]).toEqual(['journalctl', '-u', 'nexus-agent-lab.service', '--no-pager', '-f']);
  });
});
