// The filter grammar and its SQL, run against a real SQLite database with the real migrations.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase, type Db } from '../../../core/db/db.ts';
import { createUsersStore } from '../../../core/identity/users-store.ts';
import { createGroupsStore } from '../../../core/identity/groups-store.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { GROUP_SCHEMA, URN, USER_SCHEMA } from '../schemas.ts';
import { createScimUsersStore, userSqlMapping } from '../users-store.ts';
import { groupSqlMapping } from '../groups-store.ts';
import { FILTER_LIMITS, parseFilter, parsePatchPath } from './parser.ts';
import { compileFilter } from './sql.ts';
import { normaliseDate } from './values.ts';

function scimTypeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).status).toBe(400);
    return (err as AppError).details?.scimType as string;
  }
  throw new Error('expected a 400');
}

describe('filter parser', () => {
  it('parses every operator, logical precedence, not, parentheses and value paths', () => {
    expect(parseFilter('userName eq "bjensen"')).toEqual({ kind: 'cmp', path: { urn: null, name: 'userName', sub: null }, op: 'eq', value: 'bjensen' });
    for (const op of ['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']) expect(parseFilter(`title ${op.toUpperCase()} "x"`)).toMatchObject({ op });
    expect(parseFilter('title pr')).toEqual({ kind: 'pr', path: { urn: null, name: 'title', sub: null } });
    // and binds tighter than or
    const f = parseFilter('a eq 1 or b eq 2 and c eq 3');
    expect(f).toMatchObject({ kind: 'or', right: { kind: 'and' } });
    expect(parseFilter('(a eq 1 or b eq 2) and c eq 3')).toMatchObject({ kind: 'and', left: { kind: 'or' } });
    expect(parseFilter('not (a eq 1)')).toMatchObject({ kind: 'not' });
    expect(parseFilter('NOT(a eq 1)')).toMatchObject({ kind: 'not' });
    expect(parseFilter('emails[type eq "work" and primary eq true]')).toMatchObject({ kind: 'valuePath', path: { name: 'emails' }, filter: { kind: 'and' } });
    expect(parseFilter('name.familyName co "O\'Malley"')).toMatchObject({ path: { name: 'name', sub: 'familyName' }, value: "O'Malley" });
    expect(parseFilter(`${URN.enterprise}:manager.value eq "m1"`)).toMatchObject({ path: { urn: URN.enterprise, name: 'manager', sub: 'value' } });
  });

  it('reads literals: JSON strings with escapes, numbers, booleans, null, and bare words as strings', () => {
    expect(parseFilter('a eq "q\\"uote\\\\ \\u00e9"')).toMatchObject({ value: 'q"uote\\ é' });
    expect(parseFilter('a eq 42')).toMatchObject({ value: 42 });
    expect(parseFilter('a eq -1.5e3')).toMatchObject({ value: -1500 });
    expect(parseFilter('a eq True')).toMatchObject({ value: true });
    expect(parseFilter('a eq null')).toMatchObject({ value: null });
    // Entra: `name.familyName eq Employee and (emails.value co example.com)`
    expect(parseFilter('name.FamilyName eq Employee and (emails.Value co example.com)')).toMatchObject({ left: { value: 'Employee' }, right: { value: 'example.com' } });
    expect(parseFilter('meta.created gt 2015-10-10T14:38:21.8617979-07:00')).toMatchObject({ value: '2015-10-10T14:38:21.8617979-07:00' });
  });

  it('answers hostile and malformed filters with 400 invalidFilter, never a crash', () => {
    const bad = [
      '', '   ', 'userName', 'userName eq', 'userName xx "a"', 'userName eq "unterminated', 'userName eq "bad \\q escape"',
      'userName eq "bad \\u12 escape"', '(userName eq "a"', 'userName eq "a")', 'emails[type eq "work"', 'emails[type eq "a"[x eq 1]]',
      'a eq "x" and', 'and a eq 1', 'not a eq 1', '1abc eq 2', 'a.b.c eq 1', 'a eq "x" "y"', 'a eq "ctl\u0001"', 'a eq x"y',
      '[a eq 1]', 'a eq 1 or or b eq 2', 'emails.value[type eq "w"]',
    ];
    for (const f of bad) expect(scimTypeOf(() => parseFilter(f)), f).toBe('invalidFilter');
    const deep = '('.repeat(5000) + 'a eq 1' + ')'.repeat(5000);
    expect(scimTypeOf(() => parseFilter(deep))).toBe('invalidFilter');
    const nots = 'not ('.repeat(100) + 'a eq 1' + ')'.repeat(100);
    expect(scimTypeOf(() => parseFilter(nots))).toBe('invalidFilter');
    const wide = Array.from({ length: FILTER_LIMITS.maxTerms + 1 }, (_, i) => `a eq ${i}`).join(' or ');
    expect(scimTypeOf(() => parseFilter(wide))).toBe('invalidFilter');
    expect(scimTypeOf(() => parseFilter(`a eq "${'x'.repeat(FILTER_LIMITS.maxLength)}"`))).toBe('invalidFilter');
  });

  it('parses PATCH paths with value filters and a trailing sub-attribute', () => {
    expect(parsePatchPath('emails[type eq "work"].value')).toMatchObject({ path: { name: 'emails' }, filter: { op: 'eq', value: 'work' }, subAfterFilter: 'value' });
    expect(parsePatchPath('members[value eq "abc"]')).toMatchObject({ path: { name: 'members' }, subAfterFilter: null });
    expect(parsePatchPath(`${URN.enterprise}:manager`)).toMatchObject({ path: { urn: URN.enterprise, name: 'manager' }, filter: null });
    expect(scimTypeOf(() => parsePatchPath('members[value eq "a"'))).toBe('invalidPath');
    expect(scimTypeOf(() => parsePatchPath('members[value eq "a"].'))).toBe('invalidPath');
  });

  it('normalises dates of any precision and offset', () => {
    expect(normaliseDate('2015-10-10T14:38:21.8617979-07:00')).toBe('2015-10-10T21:38:21.861Z');
    expect(normaliseDate('2020-01-01T00:00:00Z')).toBe('2020-01-01T00:00:00.000Z');
    expect(normaliseDate('2020-01-01')).toBe('2020-01-01T00:00:00.000Z');
    expect(normaliseDate('yesterday')).toBeNull();
  });
});

describe('filters compiled to SQL', () => {
  let db: Db;
  const ids: Record<string, string> = {};
  let groupId = '';
  const users = () => createUsersStore(db);
  const match = (filter: string) => {
    const cond = compileFilter(parseFilter(filter), USER_SCHEMA, userSqlMapping);
    const rows = db.prepare(`SELECT u.username FROM scim_users s JOIN users u ON u.id = s.user_id WHERE ${cond.sql} ORDER BY u.username`).pluck().all(...cond.params) as string[];
    return rows;
  };

  beforeAll(() => {
    db = openDatabase(join(mkdtempSync(join(tmpdir(), 'nexus-filter-')), 'nexus.db'));
    const scim = createScimUsersStore(db);
    const add = (username: string, display: string | null, active: boolean, externalId: string, attrs: object) => {
      const u = users().create({ username, display_name: display, active, source: 'scim' });
      scim.insert(u.id, externalId, attrs as Record<string, unknown>);
      ids[username] = u.id;
    };
    add('Alice', 'Alice Liddell', true, 'EXT-1', {
      name: { givenName: 'Alice', familyName: 'Liddell' },
      emails: [{ value: 'alice@example.com', type: 'work', primary: true }, { value: 'alice@home.org', type: 'home' }],
      title: 'Engineer',
      [URN.enterprise]: { employeeNumber: '100', department: 'R&D', manager: { value: 'boss-1' } },
    });
    add('bob', 'Bob 100%_done', false, 'ext-2', {
      name: { givenName: 'Bob', familyName: "O'Malley" },
      emails: [{ value: 'bob@example.org', type: 'work', primary: false }],
      [URN.enterprise]: { employeeNumber: '200' },
    });
    add('carol', null, true, 'ext-3', { emails: [] });
    const groups = createGroupsStore(db);
    groupId = groups.create({ displayName: 'Engineers' }).id;
    groups.addMembers(groupId, [{ user_id: ids.Alice!, display: 'Alice' }]);
  });
  afterAll(() => closeDatabase(db));

  it('matches userName case-insensitively and externalId case-exactly', () => {
    expect(match('userName eq "ALICE"')).toEqual(['Alice']);
    expect(match('USERNAME Eq "alice"')).toEqual(['Alice']);
    expect(match('externalId eq "ext-1"')).toEqual([]);
    expect(match('externalId eq "EXT-1"')).toEqual(['Alice']);
    expect(match('externalId sw "ext"')).toEqual(['bob', 'carol']);
    expect(match('userName sw "a"')).toEqual(['Alice']);
    expect(match('userName ew "OB"')).toEqual(['bob']);
    expect(match('userName ne "bob"')).toEqual(['Alice', 'carol']);
  });

  it('treats LIKE wildcards in values as data', () => {
    expect(match('displayName co "100%_"')).toEqual(['bob']);
    expect(match('displayName co "%"')).toEqual(['bob']);
    expect(match('displayName co "_"')).toEqual(['bob']);
    expect(match('externalId co "*"')).toEqual([]);
  });

  it('compares booleans, dates as dates, and presence', () => {
    expect(match('active eq true')).toEqual(['Alice', 'carol']);
    expect(match('active eq "False"')).toEqual(['bob']);
    expect(match('meta.created gt 2015-10-10T14:38:21.8617979-07:00')).toEqual(['Alice', 'bob', 'carol']);
    expect(match('meta.lastModified lt "2000-01-01T00:00:00+01:00"')).toEqual([]);
    expect(match('displayName pr')).toEqual(['Alice', 'bob']);
    expect(match('emails pr')).toEqual(['Alice', 'bob']);
    expect(match('not (title pr)')).toEqual(['bob', 'carol']);
  });

  it('filters sub-attributes, multi-valued attributes and value paths', () => {
    expect(match('name.familyName eq "o\'malley"')).toEqual(['bob']);
    expect(match('emails.value co "example"')).toEqual(['Alice', 'bob']);
    expect(match('emails co "home.org"')).toEqual(['Alice']);
    expect(match('emails[type eq "work" and primary eq true]')).toEqual(['Alice']);
    expect(match('emails[type eq "work" and value ew ".org"]')).toEqual(['bob']);
    expect(match('emails[not (type eq "work")]')).toEqual(['Alice']);
    expect(match(`${URN.enterprise}:employeeNumber eq "200"`)).toEqual(['bob']);
    expect(match(`${URN.enterprise.toUpperCase().replace('URN', 'urn')}:MANAGER.value eq "boss-1"`)).toEqual(['Alice']);
    expect(match('employeeNumber gt "150"')).toEqual(['bob']);
    expect(match(`groups.value eq "${groupId}"`)).toEqual(['Alice']);
    expect(match('name.FamilyName eq Liddell and (emails.Value co example.com or emails.Value co example.org)')).toEqual(['Alice']);
  });

  it('rejects unknown attributes, wrong types and unfilterable attributes with invalidFilter', () => {
    for (const f of ['nope eq 1', 'urn:x eq 1', 'name eq "x"', 'active gt true', 'active eq "maybe"', 'meta.created gt "not a date"', 'password eq "x"', 'emails[nope eq 1]', 'title[value eq 1]', 'userName co 3 and name.nope eq 1']) {
      expect(scimTypeOf(() => match(f)), f).toBe('invalidFilter');
    }
  });

  it('binds every value as a parameter', () => {
    const hostile = `userName eq "x' OR 1=1 --" or displayName co "'); DROP TABLE users; --"`;
    const cond = compileFilter(parseFilter(hostile), USER_SCHEMA, userSqlMapping);
    expect(cond.sql).not.toContain('DROP');
    expect(cond.sql).not.toContain('OR 1=1');
    expect(match(hostile)).toEqual([]);
    expect(users().getByUsername('bob')).toBeTruthy();
  });

  it('filters groups by displayName and member', () => {
    const cond = compileFilter(parseFilter(`displayName eq "engineers" and members[value eq "${ids.Alice}"]`), GROUP_SCHEMA, groupSqlMapping);
    expect(db.prepare(`SELECT g.id FROM groups g WHERE ${cond.sql}`).pluck().all(...cond.params)).toEqual([groupId]);
  });
});
