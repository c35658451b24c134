import { describe, expect, it } from 'vitest';
import { exempt, proxyAuthorization } from './hub-egress.ts';

describe('NO_PROXY', () => {
  it('matches hosts, domains with or without a leading dot, ports, IPv6 and *', () => {
    const list = 'localhost, .internal.example, corp.example:8443 [::1] 10.0.0.7';
    expect(exempt('localhost', '443', list)).toBe(true);
    expect(exempt('hub.internal.example', '443', list)).toBe(true);
    expect(exempt('internal.example', '443', list)).toBe(true);
    expect(exempt('notinternal.example', '443', list)).toBe(false);
    expect(exempt('a.corp.example', '8443', list)).toBe(true);
    expect(exempt('a.corp.example', '443', list)).toBe(false);
    expect(exempt('[::1]', '443', list)).toBe(true);
    expect(exempt('[::1]', '443', '::1')).toBe(true);
    expect(exempt('[fd00::5]', '8443', '[fd00::5]:8443')).toBe(true);
    expect(exempt('[fd00::5]', '443', '[fd00::5]:8443')).toBe(false);
    expect(exempt('10.0.0.7', '80', list)).toBe(true);
    expect(exempt('10.0.0.70', '80', list)).toBe(false);
    expect(exempt('HUB.Internal.Example', '443', list)).toBe(true);
    expect(exempt('anything', '1', '*')).toBe(true);
    expect(exempt('anything', '1', '')).toBe(false);
    expect(exempt('anything', '1', undefined)).toBe(false);
  });

  it('sends proxy credentials decoded from the URL as Basic', () => {
    expect(proxyAuthorization(new URL('http://proxy:3128'))).toBeUndefined();
    expect(proxyAuthorization(new URL(`http://us%40er:${encodeURIComponent('p:w d')}@proxy:3128`))).toBe(`Basic ${Buffer.from('us@er:p:w d').toString('base64')}`);
  });
});
