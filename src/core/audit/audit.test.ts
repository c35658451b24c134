import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../db/db.ts';
import { createAudit } from './audit.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('audit details', () => {
  it('redacts fields named like secrets, keeps counts and everything else, both written now and batched', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-audit-'));
    dirs.push(dir);
    const db = openDatabase(join(dir, 'nexus.db'));
    const audit = createAudit(db, (err) => {
      throw err;
    });
    const details = {
      token: 'nx_pat_1', access_token: 'a', setup_token: 's', client_secret: 'c', password: 'p', api_key: 'k', apiKey: 'k2',
      authorization: 'Bearer x', credential: 'cr', cookie: 'sid=1',
      input_tokens: 12, output_tokens: 3, max_tokens: 100, tokens: 15, model: 'gpt', user_id: 'u1',
    };
    audit.record({ actor_type: 'user', action: 'test.record', outcome: 'success', details });
    audit.enqueue({ actor_type: 'user', action: 'test.enqueue', outcome: 'success', details });
    const rows = audit.query({ action: 'test.*', limit: 10 });
    expect(rows).toHaveLength(2);
    for (const r of rows) {
      expect(r.details).toEqual({
        token: '[redacted]', access_token: '[redacted]', setup_token: '[redacted]', client_secret: '[redacted]', password: '[redacted]',
        api_key: '[redacted]', apiKey: '[redacted]', authorization: '[redacted]', credential: '[redacted]', cookie: '[redacted]',
        input_tokens: 12, output_tokens: 3, max_tokens: 100, tokens: 15, model: 'gpt', user_id: 'u1',
      });
    }
    expect(details.token).toBe('nx_pat_1'); // the caller's object is not changed
    audit.close();
    db.close();
  });
});
