import { describe, expect, it } from 'vitest';
import { toCsv } from './pages/audit.ts';
import { callbackUrl, cliParams } from './pages/cli-auth.ts';
import { safeReturn } from './pages/login.ts';
import { wsUrl } from './pages/nodes.ts';
import { endpointBody, routingBody } from './pages/services.ts';

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
});
