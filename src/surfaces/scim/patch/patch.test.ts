// The PATCH engine against the quirks Okta and Entra ID send (RFC 7644 §3.5.2 plus their habits).
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors/errors.ts';
import { canonicalise } from '../resource.ts';
import { GROUP_SCHEMA, URN, USER_SCHEMA } from '../schemas.ts';
import { applyPatch, parsePatchRequest, MAX_OPERATIONS } from './patch.ts';

const ENT = URN.enterprise;

const user = () =>
  canonicalise(USER_SCHEMA, {
    userName: 'alice',
    active: true,
    displayName: 'Alice',
    name: { givenName: 'Alice', familyName: 'Liddell' },
    emails: [{ value: 'alice@work.example', type: 'work', primary: true }, { value: 'alice@home.example', type: 'home' }],
    [ENT]: { employeeNumber: '1', manager: { value: 'boss' } },
  });

const group = () => canonicalise(GROUP_SCHEMA, { displayName: 'Eng', members: [{ value: 'u1', display: 'One' }, { value: 'u2' }] });

const patchUser = (ops: unknown[], base = user()) => applyPatch(USER_SCHEMA, base, parsePatchRequest({ schemas: [URN.patch], Operations: ops }));
const patchGroup = (ops: unknown[], base = group()) => applyPatch(GROUP_SCHEMA, base, parsePatchRequest({ schemas: [URN.patch], Operations: ops }));
const memberIds = (g: Record<string, unknown>) => ((g.members as { value: string }[] | undefined) ?? []).map((m) => m.value);

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

describe('PATCH request parsing', () => {
  it('accepts op names in any case and the Operations key in any case', () => {
    const ops = parsePatchRequest({ schemas: [URN.patch], operations: [{ op: 'Add', path: 'title', value: 'x' }, { OP: 'REPLACE', Path: 'title', Value: 'y' }, { op: 'Remove', path: 'title' }] });
    expect(ops.map((o) => o.op)).toEqual(['add', 'replace', 'remove']);
  });

  it('rejects what is not a PatchOp with 400 and a scimType', () => {
    expect(scimTypeOf(() => parsePatchRequest('x'))).toBe('invalidSyntax');
    expect(scimTypeOf(() => parsePatchRequest({ schemas: ['urn:wrong'], Operations: [{ op: 'add', value: {} }] }))).toBe('invalidSyntax');
    expect(scimTypeOf(() => parsePatchRequest({ Operations: [] }))).toBe('invalidSyntax');
    expect(scimTypeOf(() => parsePatchRequest({ Operations: [{ op: 'move', path: 'x' }] }))).toBe('invalidSyntax');
    expect(scimTypeOf(() => parsePatchRequest({ Operations: [{ op: 'add', path: 7, value: 1 }] }))).toBe('invalidPath');
    expect(scimTypeOf(() => parsePatchRequest({ Operations: [{ op: 'add', path: 'title' }] }))).toBe('invalidValue');
    const many = Array.from({ length: MAX_OPERATIONS + 1 }, () => ({ op: 'add', path: 'title', value: 'x' }));
    expect(scimTypeOf(() => parsePatchRequest({ Operations: many }))).toBe('tooMany');
  });
});

describe('PATCH on users', () => {
  it('Okta: path-less {active:false} and boolean strings "True"/"False"', () => {
    expect(patchUser([{ op: 'replace', value: { active: false } }]).active).toBe(false);
    expect(patchUser([{ op: 'Replace', path: 'active', value: 'False' }]).active).toBe(false);
    expect(patchUser([{ op: 'replace', path: 'active', value: 'True' }], { ...user(), active: false }).active).toBe(true);
    expect(scimTypeOf(() => patchUser([{ op: 'replace', path: 'active', value: 'nope' }]))).toBe('invalidValue');
  });

  it('Entra: path-less replace with dotted and URN-qualified keys', () => {
    const r = patchUser([{ op: 'replace', value: { 'name.givenName': 'Alicia', displayName: 'Alicia L', [`${ENT}:employeeNumber`]: '42', [`${ENT}:department`]: 'Ops' } }]);
    expect(r.name).toEqual({ givenName: 'Alicia', familyName: 'Liddell' });
    expect(r.displayName).toBe('Alicia L');
    expect(r[ENT]).toEqual({ employeeNumber: '42', department: 'Ops', manager: { value: 'boss' } });
  });

  it('path-less values nested under an extension URN, and attribute names in any case', () => {
    const r = patchUser([{ op: 'add', value: { [ENT]: { Department: 'Sales' }, NAME: { FamilyName: 'L.' } } }]);
    expect(r[ENT]).toMatchObject({ department: 'Sales', employeeNumber: '1' });
    expect(r.name).toEqual({ givenName: 'Alice', familyName: 'L.' });
  });

  it('value-path targets: replace emails[type eq "work"].value, creating the element when missing', () => {
    const r = patchUser([{ op: 'replace', path: 'emails[type eq "work"].value', value: 'new@work.example' }]);
    expect(r.emails).toEqual([{ value: 'new@work.example', type: 'work', primary: true }, { value: 'alice@home.example', type: 'home' }]);
    const created = patchUser([{ op: 'replace', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 555' }]);
    expect(created.phoneNumbers).toEqual([{ type: 'mobile', value: '+1 555' }]);
    const removed = patchUser([{ op: 'remove', path: 'emails[type eq "home"]' }]);
    expect(removed.emails).toEqual([{ value: 'alice@work.example', type: 'work', primary: true }]);
    expect(scimTypeOf(() => patchUser([{ op: 'replace', path: 'emails[value co "zzz"].type', value: 'home' }]))).toBe('noTarget');
  });

  it('manager as a plain string, as {value}, and removed', () => {
    expect(patchUser([{ op: 'replace', path: `${ENT}:manager`, value: 'm2' }])[ENT]).toMatchObject({ manager: { value: 'm2' } });
    expect(patchUser([{ op: 'add', path: `${ENT}:manager`, value: { value: 'm3' } }])[ENT]).toMatchObject({ manager: { value: 'm3' } });
    expect(patchUser([{ op: 'replace', value: { [`${ENT}:manager`]: 'm4' } }])[ENT]).toMatchObject({ manager: { value: 'm4' } });
    expect(patchUser([{ op: 'remove', path: `${ENT}:manager` }])[ENT]).toEqual({ employeeNumber: '1' });
  });

  it('sub-attribute paths, add to multi-valued, and one primary', () => {
    expect(patchUser([{ op: 'replace', path: 'name.familyName', value: 'X' }]).name).toEqual({ givenName: 'Alice', familyName: 'X' });
    const r = patchUser([{ op: 'add', path: 'emails', value: [{ value: 'third@x', type: 'other', primary: true }] }]);
    expect((r.emails as { primary?: boolean }[]).filter((e) => e.primary)).toHaveLength(1);
    expect((r.emails as { value: string }[]).at(-1)!.value).toBe('third@x');
  });

  it('ignores unknown and read-only attributes in path-less values, refuses them as explicit paths', () => {
    const r = patchUser([{ op: 'replace', value: { id: 'hijack', meta: {}, groups: [], unknownThing: 1, 'urn:example:custom:1.0:User:foo': 'bar' } }]);
    expect(r).toEqual(user());
    expect(patchUser([{ op: 'replace', path: 'nonexistent', value: 1 }])).toEqual(user());
    expect(scimTypeOf(() => patchUser([{ op: 'replace', path: 'id', value: 'x' }]))).toBe('mutability');
    expect(scimTypeOf(() => patchUser([{ op: 'remove' }]))).toBe('noTarget');
    expect(scimTypeOf(() => patchUser([{ op: 'replace', path: 'emails[type eq "work"', value: 'x' }]))).toBe('invalidPath');
  });

  it('is atomic: a failing operation leaves the input untouched', () => {
    const base = user();
    expect(() => patchUser([{ op: 'replace', path: 'title', value: 'T' }, { op: 'replace', path: 'active', value: 'maybe' }], base)).toThrow(AppError);
    expect(base).toEqual(user());
  });
});

describe('PATCH on groups', () => {
  it('adds members given as {value, display} without type, without duplicates', () => {
    const r = patchGroup([{ op: 'add', path: 'members', value: [{ value: 'u3', display: 'Three' }, { value: 'u1' }] }]);
    expect(memberIds(r)).toEqual(['u1', 'u2', 'u3']);
    expect((r.members as object[])[2]).toEqual({ value: 'u3', display: 'Three' });
  });

  it('adds a member given as a bare string, and as {value, displayName}', () => {
    expect(memberIds(patchGroup([{ op: 'add', path: 'members', value: 'u9' }]))).toEqual(['u1', 'u2', 'u9']);
    expect((patchGroup([{ op: 'add', path: 'members', value: [{ value: 'u8', displayName: 'new User' }] }]).members as object[])[2]).toEqual({ value: 'u8', display: 'new User' });
  });

  it('removes members by filter path, by path "members" with a value list, or all', () => {
    expect(memberIds(patchGroup([{ op: 'remove', path: 'members[value eq "u1"]' }]))).toEqual(['u2']);
    expect(memberIds(patchGroup([{ op: 'Remove', path: 'members', value: [{ value: 'u2' }] }]))).toEqual(['u1']);
    expect(memberIds(patchGroup([{ op: 'remove', path: 'members' }]))).toEqual([]);
    expect(memberIds(patchGroup([{ op: 'remove', path: 'members[value eq "absent"]' }]))).toEqual(['u1', 'u2']);
  });

  it('replaces members wholesale, including with []', () => {
    expect(memberIds(patchGroup([{ op: 'replace', path: 'members', value: [{ value: 'u5' }] }]))).toEqual(['u5']);
    expect(memberIds(patchGroup([{ op: 'replace', path: 'members', value: [] }]))).toEqual([]);
  });

  it('Okta: path-less replace carrying id and displayName renames, ignoring id', () => {
    const r = patchGroup([{ op: 'replace', value: { id: 'g1', displayName: 'Engineering' } }]);
    expect(r.displayName).toBe('Engineering');
    expect(memberIds(r)).toEqual(['u1', 'u2']);
  });
});
