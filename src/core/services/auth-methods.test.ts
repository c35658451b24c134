import { describe, expect, it } from 'vitest';
import { AUTH_METHODS as PROTOCOL_METHODS, formatMethod } from '../../protocol/credentials.ts';
import { AGENT_FORMAT, AUTH_METHODS, agentCredentialLine } from './auth-methods.ts';

describe('the agent line for a node-routed service', () => {
  it('names, for every auth method, the agent format that injects it that way', () => {
    expect(Object.keys(AUTH_METHODS).sort()).toEqual([...PROTOCOL_METHODS].sort());
    for (const method of PROTOCOL_METHODS) {
      const format = AGENT_FORMAT[method];
      if (method === 'none') expect(format).toBeNull();
      else expect(formatMethod(format!), method).toBe(method);
    }
  });
  it('always names the format, and the header, prefix or field when there is one', () => {
    expect(agentCredentialLine('telegram', 'https://api.telegram.org', 'path', 'bot')).toBe('nexus agent credentials add --service telegram --url https://api.telegram.org --header bot --secret-format path');
    expect(agentCredentialLine('discord', 'https://discord.com/api/v10', 'bot_bearer', 'authorization')).toBe('nexus agent credentials add --service discord --url https://discord.com/api/v10 --header authorization --secret-format bot');
    expect(agentCredentialLine('app', 'http://h', 'body', 'app_secret')).toBe('nexus agent credentials add --service app --url http://h --header app_secret --secret-format body');
    expect(agentCredentialLine('tg', 'http://h', 'path', null)).toBe('nexus agent credentials add --service tg --url http://h --secret-format path');
    expect(agentCredentialLine('ollama', 'http://h', 'none', null)).toBeNull();
    // A method from a newer appliance goes to the agent as it is, for the agent to refuse.
    expect(agentCredentialLine('x', 'http://h', 'hmac', null)).toBe('nexus agent credentials add --service x --url http://h --secret-format hmac');
  });
});
