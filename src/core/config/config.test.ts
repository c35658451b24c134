import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseHostPort } from './config.ts';

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
});
