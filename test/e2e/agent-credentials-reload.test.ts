// A running agent holds its credentials store open and looks the file up on every request without a
// system call; a change made by `nexus agent credentials add|remove` in another process must still
// reach the very next lookup after that command returns. The store here is the one `agent start`
// uses; the edits come from the real CLI.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createCredentialsStore } from '../../src/agent/credentials-store.ts';
import { agentHome } from '../../src/agent/home.ts';
import { agentCli } from '../helpers/agent.ts';

const add = async (home: string, service: string, url: string, secret: string) => {
  const r = await agentCli(home, ['credentials', 'add', '--service', service, '--url', url, '--secret-format', 'bearer', '--secret-env', 'S'], { S: secret });
  expect(r.code, r.stderr).toBe(0);
};

const stores: Array<ReturnType<typeof createCredentialsStore>> = [];
const openStore = (home: string) => {
  const before = process.env.NEXUS_AGENT_HOME;
  process.env.NEXUS_AGENT_HOME = home;
  try {
    const s = createCredentialsStore(agentHome(null));
    stores.push(s);
    return s;
  } finally {
    if (before === undefined) delete process.env.NEXUS_AGENT_HOME;
    else process.env.NEXUS_AGENT_HOME = before;
  }
};
afterAll(() => {
  for (const s of stores) s.close();
});

describe('credentials edited while the agent runs', () => {
  it('the next lookup after `credentials add` or `remove` returns sees the change', async () => {
    const home = mkdtempSync(join(tmpdir(), 'nexus-cred-reload-'));
    await add(home, 'first', 'http://127.0.0.1:9/', 'one');
    const store = openStore(home);
    // Looked up many times, as requests do: the store is watching from here on.
    for (let i = 0; i < 3; i++) expect(store.get('first')?.secret).toBe('one');
    expect(store.get('second')).toBeNull();

    await add(home, 'second', 'http://127.0.0.1:9/api', 'two');
    expect(store.get('second')).toMatchObject({ url: 'http://127.0.0.1:9/api', secret: 'two' });

    // Replaced: new URL and secret.
    await add(home, 'second', 'http://127.0.0.1:10/', 'three');
    expect(store.get('second')).toMatchObject({ url: 'http://127.0.0.1:10/', secret: 'three' });
    expect(store.get('first')?.secret).toBe('one');

    const rm = await agentCli(home, ['credentials', 'remove', '--service', 'first']);
    expect(rm.code, rm.stderr).toBe(0);
    expect(store.get('first')).toBeNull();
    expect(store.get('second')?.secret).toBe('three');
  });

  it('a store opened before its directory existed still sees the file once it is written', async () => {
    const home = join(mkdtempSync(join(tmpdir(), 'nexus-cred-reload-')), 'not-yet');
    const store = openStore(home);
    expect(store.get('svc')).toBeNull(); // nothing to watch yet: the file is looked at once per turn
    await add(home, 'svc', 'http://127.0.0.1:9/', 'late');
    expect(store.get('svc')?.secret).toBe('late');
  });
});
