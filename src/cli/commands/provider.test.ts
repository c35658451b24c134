import { describe, expect, it } from 'vitest';
import { parseDeploy } from './provider.ts';

describe('--deploy PROVIDER:UPSTREAM[:PRIORITY[:WEIGHT]]', () => {
  it('keeps the colons of an upstream name and reads trailing all-digit parts as priority and weight', () => {
    expect(parseDeploy('openai:gpt-4o', 3)).toEqual({ provider: 'openai', upstream_model: 'gpt-4o', priority: 3, weight: 1 });
    expect(parseDeploy('azure-eu:gpt-4o-prod:0:3', 0)).toEqual({ provider: 'azure-eu', upstream_model: 'gpt-4o-prod', priority: 0, weight: 3 });
    expect(parseDeploy('local:llama3:8b', 0)).toEqual({ provider: 'local', upstream_model: 'llama3:8b', priority: 0, weight: 1 });
    expect(parseDeploy('local:llama3:8b:2', 0)).toEqual({ provider: 'local', upstream_model: 'llama3:8b', priority: 2, weight: 1 });
    expect(parseDeploy('local:llama3:8b:0:1', 5)).toEqual({ provider: 'local', upstream_model: 'llama3:8b', priority: 0, weight: 1 });
    expect(parseDeploy('local:hf.co/org/m:Q4_K_M', 1)).toEqual({ provider: 'local', upstream_model: 'hf.co/org/m:Q4_K_M', priority: 1, weight: 1 });
    // A last tag of digits is a priority unless both numbers follow it.
    expect(parseDeploy('local:qwen:7', 0)).toEqual({ provider: 'local', upstream_model: 'qwen', priority: 7, weight: 1 });
    expect(parseDeploy('local:qwen:7:0:1', 4)).toEqual({ provider: 'local', upstream_model: 'qwen:7', priority: 0, weight: 1 });
    // The upstream name itself may be all digits.
    expect(parseDeploy('p:123', 0)).toEqual({ provider: 'p', upstream_model: '123', priority: 0, weight: 1 });
  });

  it('refuses a spec without a provider or an upstream, or with an empty part', () => {
    for (const spec of ['primary', 'primary:', ':x', 'primary::1', 'primary:x:', 'primary:a::b', '']) {
      expect(() => parseDeploy(spec, 0), spec).toThrow(/expected PROVIDER:UPSTREAM\[:PRIORITY\[:WEIGHT\]\]/);
    }
  });
});
