import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, isLoopbackHost, loadConfig, parseHostPort, unknownNexusEnv } from './config.ts';

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
  it('reads the hub retry settings from the file and NEXUS_HUB_RETRY_*, and refuses values out of range', () => {
    expect(loadConfig({ env: {} }).hub).toMatchObject({ retryTimeoutSeconds: 10, retryBudgetPercent: 20, retryBudgetMinConcurrent: 3 });
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'nexus.yaml');
    writeFileSync(file, 'hub:\n  retryTimeoutSeconds: 4\n  retryBudgetPercent: 50\n  retryBudgetMinConcurrent: 0\n');
    expect(loadConfig({ env: { NEXUS_CONFIG: file } }).hub).toMatchObject({ retryTimeoutSeconds: 4, retryBudgetPercent: 50, retryBudgetMinConcurrent: 0 });
    const env = { NEXUS_CONFIG: file, NEXUS_HUB_RETRY_TIMEOUT_SECONDS: '2.5', NEXUS_HUB_RETRY_BUDGET_PERCENT: '10', NEXUS_HUB_RETRY_BUDGET_MIN_CONCURRENT: '7' };
    expect(loadConfig({ env }).hub).toMatchObject({ retryTimeoutSeconds: 2.5, retryBudgetPercent: 10, retryBudgetMinConcurrent: 7 });
    expect(() => loadConfig({ env: { NEXUS_HUB_RETRY_BUDGET_PERCENT: '101' } })).toThrow(/hub.retryBudgetPercent: expected 0 to 100/);
    expect(() => loadConfig({ env: { NEXUS_HUB_RETRY_BUDGET_PERCENT: '-5' } })).toThrow(/NEXUS_HUB_RETRY_BUDGET_PERCENT: expected a non-negative number/);
    expect(() => loadConfig({ env: { NEXUS_HUB_RETRY_BUDGET_MIN_CONCURRENT: '1.5' } })).toThrow(/retryBudgetMinConcurrent: expected a whole number/);
    writeFileSync(file, 'hub:\n  retryBudgetPercent: lots\n');
    expect(() => loadConfig({ env: { NEXUS_CONFIG: file } })).toThrow(/hub.retryBudgetPercent" must be a number/);
  });
  it('reads the kept-body bounds for retries, and refuses hostile values with the setting named', () => {
    expect(loadConfig({ env: {} }).hub).toMatchObject({ retryBodyMaxBytes: 1048576, retryBodyTotalBytes: 67108864 });
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'nexus.yaml');
    writeFileSync(file, 'hub:\n  retryBodyMaxBytes: 0\n  retryBodyTotalBytes: 0\n');
    expect(loadConfig({ env: { NEXUS_CONFIG: file } }).hub).toMatchObject({ retryBodyMaxBytes: 0, retryBodyTotalBytes: 0 });
    expect(loadConfig({ env: { NEXUS_HUB_RETRY_BODY_MAX_BYTES: '2048', NEXUS_HUB_RETRY_BODY_TOTAL_BYTES: '4096' } }).hub).toMatchObject({ retryBodyMaxBytes: 2048, retryBodyTotalBytes: 4096 });
    const cases: [string, RegExp][] = [
      ['hub:\n  retryBodyMaxBytes: lots\n', /"hub.retryBodyMaxBytes" must be a number/],
      ['hub:\n  retryBodyMaxBytes: -1\n', /"hub.retryBodyMaxBytes" must be a non-negative number/],
      ['hub:\n  retryBodyMaxBytes: .inf\n', /"hub.retryBodyMaxBytes" must be a non-negative number/],
      ['hub:\n  retryBodyMaxBytes: 1.5\n', /hub.retryBodyMaxBytes: expected a whole number of bytes, got 1.5/],
      ['hub:\n  retryBodyTotalBytes: 1e300\n', /hub.retryBodyTotalBytes: expected a whole number of bytes/],
      ['hub:\n  retryBodyMaxBytes: [1]\n', /"hub.retryBodyMaxBytes" must be a number/],
      ['hub:\n  retryBodyMaxBytes: 2048\n  retryBodyTotalBytes: 1024\n', /hub.retryBodyMaxBytes \(2048\) is larger than hub.retryBodyTotalBytes \(1024\)/],
      ['hub:\n  retryBodyTotalBytes: 1125899906842624\n', /hub.retryBodyTotalBytes \(1125899906842624\) is more than this machine's memory/],
    ];
    for (const [yaml, message] of cases) {
      writeFileSync(file, yaml);
      expect(() => loadConfig({ env: { NEXUS_CONFIG: file } }), yaml).toThrow(message);
    }
    expect(() => loadConfig({ env: { NEXUS_HUB_RETRY_BODY_MAX_BYTES: 'Infinity' } })).toThrow(/NEXUS_HUB_RETRY_BODY_MAX_BYTES: expected a non-negative number/);
    expect(() => loadConfig({ env: { NEXUS_HUB_RETRY_BODY_TOTAL_BYTES: '1048575' } })).toThrow(/retryBodyMaxBytes \(1048576\) is larger than hub.retryBodyTotalBytes \(1048575\)/);
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
  it('reads telemetry from the file, the standard OTEL_* variables and NEXUS_*, in that order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'nexus.yaml');
    expect(loadConfig({ env: {} }).telemetry).toMatchObject({ otlpEndpoint: null, propagate: true, sampler: 'parentbased_always_on', sampleRatio: 1, serviceName: 'nexus' });
    writeFileSync(file, 'telemetry:\n  otlpEndpoint: http://collector:4318\n  otlpHeaders: "x-honeycomb-team=abc"\n  sampleRatio: 0.5\n  sampler: parentbased_traceidratio\n  propagate: false\n');
    expect(loadConfig({ env: { NEXUS_CONFIG: file } }).telemetry).toMatchObject({ otlpEndpoint: 'http://collector:4318/v1/traces', otlpHeaders: { 'x-honeycomb-team': 'abc' }, sampleRatio: 0.5, propagate: false });
    const std = loadConfig({ env: { NEXUS_CONFIG: file, OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.com/base/', OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Basic%20eA==', OTEL_SERVICE_NAME: 'gw', OTEL_TRACES_SAMPLER_ARG: '0.1' } }).telemetry;
    expect(std).toMatchObject({ otlpEndpoint: 'https://otel.example.com/base/v1/traces', serviceName: 'gw', sampleRatio: 0.1, otlpHeaders: { 'x-honeycomb-team': 'abc', authorization: 'Basic eA==' } });
    expect(loadConfig({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/custom' } }).telemetry.otlpEndpoint).toBe('http://b:4318/custom');
    expect(loadConfig({ env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/custom', NEXUS_OTLP_ENDPOINT: 'http://c:4318/v1/traces' } }).telemetry.otlpEndpoint).toBe('http://c:4318/v1/traces');
    expect(loadConfig({ env: { NEXUS_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' } }).telemetry.otlpEndpoint).toBeNull();
    expect(loadConfig({ env: { NEXUS_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' } }).telemetry.otlpEndpoint).toBeNull();
    expect(loadConfig({ env: { OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-resource,team=ai' } }).telemetry).toMatchObject({ serviceName: 'from-resource', resourceAttributes: { team: 'ai' } });
    expect(loadConfig({ env: { NEXUS_TRACE_PROPAGATE: 'false' } }).telemetry.propagate).toBe(false);
  });
  it('refuses bad telemetry settings without repeating a header value', () => {
    expect(() => loadConfig({ env: { NEXUS_OTLP_ENDPOINT: 'collector:4318' } })).toThrow(/not a URL|http/);
    expect(() => loadConfig({ env: { NEXUS_OTLP_ENDPOINT: 'ftp://c/x' } })).toThrow(/http:\/\/ or https:\/\//);
    expect(() => loadConfig({ env: { NEXUS_OTLP_ENDPOINT: 'http://u:p@c:4318' } })).toThrow(/headers/);
    expect(() => loadConfig({ env: { NEXUS_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' } })).toThrow(/4318/);
    expect(loadConfig({ env: { NEXUS_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' } }).telemetry.otlpEndpoint).toBe('http://c:4318/v1/traces');
    expect(() => loadConfig({ env: { OTEL_TRACES_SAMPLER: 'sometimes' } })).toThrow(/sampler/);
    expect(() => loadConfig({ env: { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' } })).toThrow(/0 to 1/);
    expect(() => loadConfig({ env: { OTEL_BSP_MAX_QUEUE_SIZE: '0' } })).toThrow(/positive/);
    let message = '';
    try {
      loadConfig({ env: { OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=%E0%A4%A-topsecret' } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/x-api-key/);
    expect(message).not.toMatch(/topsecret/);
    expect(() => loadConfig({ env: { OTEL_EXPORTER_OTLP_HEADERS: 'no-equals-sign' } })).toThrow(/key=value/);
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'nexus.yaml');
    writeFileSync(file, 'telemetry:\n  endpoint: http://c\n');
    expect(() => loadConfig({ env: { NEXUS_CONFIG: file } })).toThrow(/unknown setting "telemetry.endpoint"/);
    writeFileSync(file, 'telemetry: on\n');
    expect(() => loadConfig({ env: { NEXUS_CONFIG: file } })).toThrow(/mapping/);
  });
});

describe('unknownNexusEnv', () => {
  it('names each NEXUS_* variable nothing reads, with the closest known one when near', () => {
    expect(unknownNexusEnv({ NEXUS_LISTN: '0.0.0.0:80', NEXUS_GATEWAY_MAX_STREAM_SECOND: '5', NEXUS_SOMETHING_ELSE: '1', PATH: '/bin', LISTN: 'x' })).toEqual([
      { name: 'NEXUS_GATEWAY_MAX_STREAM_SECOND', closest: 'NEXUS_GATEWAY_MAX_STREAM_SECONDS' },
      { name: 'NEXUS_LISTN', closest: 'NEXUS_LISTEN' },
      { name: 'NEXUS_SOMETHING_ELSE', closest: null },
    ]);
  });

  it("knows every variable the appliance, the agent and the CLI read, including the config's own", () => {
    const env = Object.fromEntries(['NEXUS_LISTEN', 'NEXUS_ADMIN_LISTEN', 'NEXUS_DATA_DIR', 'NEXUS_CONFIG', 'NEXUS_PUBLIC_URL', 'NEXUS_LOG_LEVEL',
      'NEXUS_HUB_RETRY_BUDGET_PERCENT', 'NEXUS_PROXY_ALLOW_PRIVATE_TARGETS', 'NEXUS_OTLP_ENDPOINT', 'NEXUS_TRACE_PROPAGATE', 'NEXUS_DB_WRITE_THREAD',
      'NEXUS_AGENT_HOME', 'NEXUS_URL', 'NEXUS_TOKEN', 'NEXUS_BROWSER'].map((n) => [n, 'x']));
    expect(unknownNexusEnv(env)).toEqual([]);
  });
});
