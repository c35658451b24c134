import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, isLoopbackHost, loadConfig, parseHostPort } from './config.ts';

describe('config', () => {
  it('applies defaults < file < env < flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'nexus.yaml');
    writeFileSync(file, 'listen: 127.0.0.1:7000\nlogLevel: debug\nhub:\n  heartbeatSeconds: 5\n');
    const cfg = loadConfig({ env: { NEXUS_CONFIG: file, NEXUS_LOG_LEVEL: 'warn' }, flags: { 'data-dir': dir } });
    expect(cfg.listen).toEqual({ host: '127.0.0.1', port: 7000 });
    expect(cfg.logLevel).toBe('warn');
    expect(cfg.hub.heartbeatSeconds).toBe(5);
    expect(cfg.hub.offlineAfterSeconds).toBe(90);
    expect(cfg.dataDir).toBe(dir);
    const flagged = loadConfig({ env: { NEXUS_CONFIG: file, NEXUS_LISTEN: '127.0.0.1:7001' }, flags: { listen: '0.0.0.0:7002' } });
    expect(flagged.listen).toEqual({ host: '0.0.0.0', port: 7002 });
    expect(Object.isFrozen(flagged.hub)).toBe(true);
  });
  it('rejects unknown settings, wrong types and bad addresses with a clear message', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'lisen: 1\n');
    expect(() => loadConfig({ env: { NEXUS_CONFIG: file } })).toThrow(/unknown setting "lisen"/);
    writeFileSync(file, 'hub:\n  heartbeatSeconds: soon\n');
    expect(() => loadConfig({ env: { NEXUS_CONFIG: file } })).toThrow(/hub.heartbeatSeconds" must be a number/);
    writeFileSync(file, '{ not yaml');
    expect(() => loadConfig({ env: { NEXUS_CONFIG: file } })).toThrow(ConfigError);
    expect(() => parseHostPort('localhost', '--listen')).toThrow(/HOST:PORT/);
    expect(() => parseHostPort('1.2.3.4:70000', '--listen')).toThrow(/out of range/);
    expect(parseHostPort('[::1]:80', 'x')).toEqual({ host: '::1', port: 80 });
    expect(() => loadConfig({ env: { NEXUS_BODY_LIMIT_BYTES: 'lots' } })).toThrow(/NEXUS_BODY_LIMIT_BYTES/);
  });
  it('tells loopback listen hosts from the rest (the admin listener warns on the rest)', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LocalHost']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.10', '128.0.0.1', '::ffff:10.0.0.1', 'nexus.internal', 'localhost.example.com']) expect(isLoopbackHost(host), host).toBe(false);
  });
  it('refuses a list, a mapping or an empty value where the setting is of another shape', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'bad.yaml');
    const cases: [string, RegExp][] = [
      ['adminListen: [1, 2]\n', /"adminListen" must be HOST:PORT/],
      ['listen: 8080\n', /"listen" must be HOST:PORT/],
      ['hub: 5\n', /"hub" must be a mapping/],
      ['trustProxy: 10.0.0.1\n', /"trustProxy" must be a list of strings/],
      ['trustProxy: [1, 2]\n', /"trustProxy" must be a list of strings/],
      ['bodyLimitBytes:\n', /"bodyLimitBytes" must be a number/],
      ['bodyLimitBytes: -1\n', /"bodyLimitBytes" must be a non-negative number/],
      ['gateway:\n  cooldownSeconds: [30]\n', /"gateway.cooldownSeconds" must be a number/],
      ['publicUrl: 5\n', /"publicUrl" must be a string/],
      ['logLevel: loud\n', /log level "loud": expected one of trace, debug, info/],
    ];
    for (const [yaml, message] of cases) {
      writeFileSync(file, yaml);
      expect(() => loadConfig({ env: { NEXUS_CONFIG: file } }), yaml).toThrow(message);
    }
    expect(() => loadConfig({ flags: { 'log-level': 'verbose' } })).toThrow(ConfigError);
    writeFileSync(file, 'trustProxy: [10.0.0.1]\npublicUrl: https://nexus.example.com\nlisten: {host: 0.0.0.0, port: 8443}\n');
    const ok = loadConfig({ env: { NEXUS_CONFIG: file } });
    expect(ok.trustProxy).toEqual(['10.0.0.1']);
    expect(ok.listen).toEqual({ host: '0.0.0.0', port: 8443 });
  });
});
