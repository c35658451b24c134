import { describe, expect, it } from 'vitest';
import { toCsv } from './pages/audit.ts';
import { callbackUrl, cliParams } from './pages/cli-auth.ts';
import { safeReturn } from './pages/login.ts';
import { wsUrl } from './pages/nodes.ts';
import { endpointBody, routingBody } from './pages/services.ts';
import { MODEL_NAME_PREDICATE, modelNameProblem, plainError, publicModelName } from './pages/provider-form.ts';
import { ApiError } from './api.ts';
import { MODEL_PLACEHOLDER, snippetModel } from './snippets.ts';

describe('console helpers', () => {
  it('writes RFC 4180 CSV and defuses spreadsheet formulas', () => {
    const row = { id: 1, ts: 't', actor_type: 'user', actor_name: '=cmd()', action: 'a,b', target_type: null, target_id: null, outcome: 'success',
      source_ip: '1.2.3.4', routed_via: null, node_id: null, status: null, details: { q: 'say "hi"' } };
    const csv = toCsv([row]);
    expect(csv.split('\r\n')[1]).toBe(`1,t,user,'=cmd(),"a,b",,,success,1.2.3.4,,,,"{""q"":""say \\""hi\\""""}"`);
  });
  it('accepts only a numeric port and a 16-byte hex state from the CLI', () => {
    expect(cliParams(new URLSearchParams(''))).toBeNull();
    expect(cliParams(new URLSearchParams(`port=5000&state=${'a'.repeat(32)}`))).toEqual({ port: 5000, state: 'a'.repeat(32) });
    for (const q of ['port=5000', `state=${'a'.repeat(32)}`, `port=0&state=${'a'.repeat(32)}`, `port=99999&state=${'a'.repeat(32)}`, 'port=80&state=xyz', `port=1e3&state=${'a'.repeat(32)}`]) {
      expect(cliParams(new URLSearchParams(q)), q).toBe('invalid');
    }
    expect(callbackUrl(5000, { state: 's', code: 'c' })).toBe('http://127.0.0.1:5000/callback?state=s&code=c');
  });
  it('keeps return_to on this site and derives the hub URL', () => {
    expect(safeReturn('//evil.test')).toBe('/');
    expect(safeReturn('/audit')).toBe('/audit');
    expect(wsUrl('https://nexus.example.com')).toBe('wss://nexus.example.com/ws');
    expect(wsUrl('http://127.0.0.1:8080')).toBe('ws://127.0.0.1:8080/ws');
  });
  it('turns a routing card into a PATCH body, refusing what the hub would refuse', () => {
    const row = (priority: string, weight = '1') => ({ node_id: 'n1', name: 'edge-1', priority, weight });
    const viaNode = { auth_method: 'bearer', routed_via: 'node', has_credential: false };
    expect(routingBody([row('2', '3')], viaNode, '')).toEqual({ nodes: [{ node_id: 'n1', priority: 2, weight: 3 }] });
    for (const [p, w] of [['-1', '1'], ['1.5', '1'], ['', '1'], ['1001', '1'], ['1e2', '1'], ['0', '0'], ['0', '']]) {
      expect(routingBody([row(p!, w)], viaNode, ''), `${p}/${w}`).toMatch(/^(Priority|Weight) for edge-1 must be a whole number/);
    }
    // No nodes: direct, which needs a credential unless the service already holds one or takes none.
    expect(routingBody([], viaNode, '')).toMatch(/enter the credential/);
    expect(routingBody([], viaNode, 's3cret')).toEqual({ nodes: [], credential: 's3cret' });
    expect(routingBody([], { auth_method: 'none', routed_via: 'node' }, '')).toEqual({ nodes: [] });
    expect(routingBody([], { auth_method: 'bearer', routed_via: 'direct', has_credential: true }, '')).toEqual({ nodes: [] });
  });
  it('turns the endpoint form into a PATCH body of what changed', () => {
    const svc = { endpoint_url: 'http://localhost:3000', label: 'Grafana' };
    expect(endpointBody(svc, ' http://192.168.1.20:3000 ', 'Grafana', '')).toEqual({ endpoint_url: 'http://192.168.1.20:3000' });
    expect(endpointBody(svc, 'http://localhost:3000', '  ', '')).toEqual({ label: null });
    expect(endpointBody({ endpoint_url: 'http://a.test' }, 'https://b.test', 'B', 'tok')).toEqual({ endpoint_url: 'https://b.test', label: 'B', credential: 'tok' });
    expect(endpointBody(svc, 'http://localhost:3000', 'Grafana', '')).toMatch(/^Nothing to save/);
    for (const bad of ['', 'localhost:3000', 'ftp://x.test', 'javascript:alert(1)', 'http://']) {
      expect(endpointBody(svc, bad, 'Grafana', ''), bad).toBe('Enter the endpoint as an http:// or https:// URL.');
    }
  });
  it('derives a public model name the API takes from any upstream name', () => {
    const rule = /^[A-Za-z0-9][A-Za-z0-9._/@+-]*$/; // admin-routes.ts MODEL_NAME
    for (const [up, name] of [['llama3:8b', 'llama3-8b'], ['gpt-4o-mini', 'gpt-4o-mini'], [' qwen2.5:7b-instruct ', 'qwen2.5-7b-instruct'],
      ['meta-llama/Llama-3.1-8B', 'meta-llama/Llama-3.1-8B'], [':latest', 'latest'], ['a b:c', 'a-b-c'], ['модель', ''], ['x:', 'x']]) {
      expect(publicModelName(up!), up).toBe(name);
      if (name) expect(name, up).toMatch(rule);
    }
    expect(publicModelName('a'.repeat(300))).toHaveLength(200);
    expect(modelNameProblem('llama3-8b')).toBeNull();
    expect(modelNameProblem('llama3:8b')).toContain('not allowed: Letters, digits');
    expect(modelNameProblem('-x')).toContain('starting with a letter or digit');
    expect(modelNameProblem('')).toBe('Enter the public model name.');
  });
  it('names a model the key can call in its snippets, or a marked placeholder', () => {
    expect(snippetModel(null, ['llama3-8b', 'gpt-4o'])).toBe('llama3-8b');
    expect(snippetModel([], [])).toBe(MODEL_PLACEHOLDER);
    expect(snippetModel(['typo', 'gpt-4o'], ['llama3-8b', 'gpt-4o'])).toBe('gpt-4o');
    expect(snippetModel(['not-yet'], ['llama3-8b'])).toBe('not-yet');
  });
  it('says the API\'s validation errors in plain words, naming the field by its label', () => {
    const plain = (message: string, param?: string, status = 400) => plainError(new ApiError(status, 'validation_failed', message, param)).message;
    expect(plain('body.api_key must NOT have fewer than 1 characters', 'api_key')).toBe('API key cannot be empty.');
    expect(plain('body.api_version must match pattern "^[A-Za-z0-9._-]+$"', 'api_version')).toBe('API version may hold only letters, digits, ".", "_" and "-".');
    expect(plain('base_url must not carry credentials, a query or a fragment', 'base_url')).toBe('Base URL must not carry credentials, a query or a fragment.');
    expect(plain('api_version is required for azure providers (e.g. 2024-10-21, or v1)', 'api_version')).toBe('API version is required for azure providers (e.g. 2024-10-21, or v1).');
    expect(plain('body.type must be equal to one of the allowed values: openai, azure', 'type')).toBe('Type must be one of: openai, azure.');
    expect(plain('provider "x" already exists', undefined, 409)).toBe('Provider "x" already exists.');
    expect(plainError(new ApiError(400, 'validation_failed', 'body.name must match pattern "x"', 'name'), { name: 'Public model name' }, { name: MODEL_NAME_PREDICATE }).message)
      .toBe('Public model name may hold only letters, digits and . _ / @ + -, starting with a letter or digit.');
    expect(plain('cannot reach the appliance', undefined, 0)).toBe('Cannot reach the appliance; check your connection and try again.');
    expect(plainError(new Error('Enter the key.')).message).toBe('Enter the key.');
  });
});
