// PATCH (RFC 7644 §3.5.2) applied to a canonical resource in memory, with the habits of the identity
// providers that send it: op names in any case, "True"/"False" strings, path-less values whose keys
// are dotted (`name.givenName`) or URN-qualified, value-path targets, members removed by filter or by
// a value list, `replace` that creates the element an equality filter describes (Entra's
// `emails[type eq "work"].value` on a user without a work email), and Okta's path-less `{active:false}`.
import { scimError } from '../errors.ts';
import { elementFromEquality, matchElement } from '../filter/match.ts';
import { parsePatchPath, type PatchPath } from '../filter/parser.ts';
import { coerceValue, type Json } from '../resource.ts';
import { findSchemaUrn, resolveAttr, URN, type AttrDef, type ResourceSchema } from '../schemas.ts';

export type PatchOpName = 'add' | 'replace' | 'remove';

export interface PatchOp {
  op: PatchOpName;
  path: string | null;
  value: unknown;
}

export const MAX_OPERATIONS = 1000;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads a PatchOp request body; 400 invalidSyntax when it is not one. */
export function parsePatchRequest(body: unknown): PatchOp[] {
  if (!isObject(body)) throw scimError('invalidSyntax', 'the request body must be a PatchOp object');
  const schemas = body.schemas;
  if (schemas !== undefined && !(Array.isArray(schemas) && schemas.some((s) => typeof s === 'string' && s.toLowerCase() === URN.patch.toLowerCase()))) {
    throw scimError('invalidSyntax', `schemas must contain ${URN.patch}`);
  }
  const opsKey = Object.keys(body).find((k) => k.toLowerCase() === 'operations');
  const ops = opsKey ? body[opsKey] : undefined;
  if (!Array.isArray(ops) || ops.length === 0) throw scimError('invalidSyntax', 'Operations must be a non-empty array');
  if (ops.length > MAX_OPERATIONS) throw scimError('tooMany', `at most ${MAX_OPERATIONS} operations per request`);
  return ops.map((raw, i) => {
    if (!isObject(raw)) throw scimError('invalidSyntax', `Operations[${i}] must be an object`);
    const get = (name: string) => raw[Object.keys(raw).find((k) => k.toLowerCase() === name) ?? ''];
    const op = get('op');
    const name = typeof op === 'string' ? op.toLowerCase() : '';
    if (name !== 'add' && name !== 'replace' && name !== 'remove') throw scimError('invalidSyntax', `Operations[${i}].op must be add, replace or remove`);
    const path = get('path');
    if (path !== undefined && path !== null && typeof path !== 'string') throw scimError('invalidPath', `Operations[${i}].path must be a string`);
    const value = get('value');
    if (name !== 'remove' && value === undefined) throw scimError('invalidValue', `Operations[${i}] needs a value`);
    return { op: name, path: typeof path === 'string' && path.trim() !== '' ? path.trim() : null, value };
  });
}

/** Two values equal for de-duplication: members by id, other complex values by their "value". */
function sameElement(a: unknown, b: unknown): boolean {
  if (isObject(a) && isObject(b)) {
    if ('value' in a || 'value' in b) return a.value === b.value && (a.type ?? null) === (b.type ?? null);
    return JSON.stringify(a) === JSON.stringify(b);
  }
  return a === b;
}

function appendUnique(existing: unknown[], added: unknown[]): unknown[] {
  const out = [...existing];
  for (const v of added) {
    const i = out.findIndex((e) => sameElement(e, v));
    if (i === -1) out.push(v);
    else if (isObject(out[i]) && isObject(v)) out[i] = { ...(out[i] as Json), ...v };
  }
  return out;
}

/** RFC 7643 §2.4: at most one element has primary true; the one just written wins. */
function onePrimary(list: unknown[], winner: unknown): void {
  if (!isObject(winner) || winner.primary !== true) return;
  for (const el of list) if (el !== winner && isObject(el) && el.primary === true) el.primary = false;
}

class Patcher {
  readonly res: Json;
  private readonly schema: ResourceSchema;

  constructor(schema: ResourceSchema, resource: Json) {
    this.schema = schema;
    this.res = structuredClone(resource);
  }

  container(extension: string | null, create: boolean): Json | undefined {
    if (!extension) return this.res;
    if (!isObject(this.res[extension])) {
      if (!create) return undefined;
      this.res[extension] = {};
    }
    return this.res[extension] as Json;
  }

  apply(op: PatchOp): void {
    if (op.path === null) {
      if (op.op === 'remove') throw scimError('noTarget', 'remove needs a path');
      if (!isObject(op.value)) throw scimError('invalidValue', `${op.op} without a path needs an object value`);
      for (const [key, value] of Object.entries(op.value)) this.applyKey(op.op, key, value);
      return;
    }
    this.applyKey(op.op, op.path, op.value, true);
  }

  /** One key of a path-less value, or an explicit path. */
  applyKey(op: PatchOpName, key: string, value: unknown, explicit = false): void {
    const ext = findSchemaUrn(this.schema, key);
    if (ext) {
      if (!ext.extension) {
        // Path-less value nested under the core URN: apply its keys.
        if (isObject(value)) for (const [k, v] of Object.entries(value)) this.applyKey(op, k, v);
        return;
      }
      if (op === 'remove') {
        delete this.res[ext.urn];
        return;
      }
      if (!isObject(value)) throw scimError('invalidValue', `${ext.urn} must be an object`);
      for (const [k, v] of Object.entries(value)) this.applyKey(op, `${ext.urn}:${k}`, v);
      return;
    }
    if (!explicit && key.toLowerCase() === 'schemas') return;
    let parsed: PatchPath;
    try {
      parsed = parsePatchPath(key);
    } catch (err) {
      if (explicit) throw err;
      return; // an odd key in a path-less value is an unknown attribute: ignored
    }
    const r = resolveAttr(this.schema, parsed.path.urn, parsed.path.name, parsed.path.sub);
    // Unknown attributes are ignored: IdPs send extension attributes this server does not keep.
    if (!r) return;
    const def = r.def;
    if (def.mutability === 'readOnly' || (r.sub?.mutability === 'readOnly')) {
      if (explicit) throw scimError('mutability', `${def.name}${r.sub ? '.' + r.sub.name : ''} is read-only`);
      return;
    }
    if (def.returned === 'never') return; // password: not kept
    const box = this.container(r.extension, op !== 'remove');
    if (!box) return;

    if (parsed.filter) {
      this.applyFiltered(op, box, def, parsed, value);
      return;
    }
    if (r.sub) {
      this.applySub(op, box, def, r.sub, value);
      return;
    }
    this.applyWhole(op, box, def, value);
  }

  applyWhole(op: PatchOpName, box: Json, def: AttrDef, value: unknown): void {
    if (op === 'remove') {
      if (def.multiValued && value !== undefined && value !== null) {
        // Entra: {"op":"remove","path":"members","value":[{"value":"id"}]} removes just those.
        const gone = coerceValue(def, value) as unknown[];
        const current = Array.isArray(box[def.name]) ? (box[def.name] as unknown[]) : [];
        box[def.name] = current.filter((e) => !gone.some((g) => sameElement(e, g)));
      } else {
        delete box[def.name];
      }
      return;
    }
    const c = coerceValue(def, value);
    if (c === undefined) {
      delete box[def.name];
      return;
    }
    if (def.multiValued) {
      const current = Array.isArray(box[def.name]) ? (box[def.name] as unknown[]) : [];
      const list = op === 'add' ? appendUnique(current, c as unknown[]) : (c as unknown[]);
      for (const v of c as unknown[]) onePrimary(list, list.find((e) => sameElement(e, v)));
      box[def.name] = list;
    } else if (def.type === 'complex' && isObject(box[def.name])) {
      // §3.5.2.1/§3.5.2.3: sub-attributes not given are left unchanged.
      box[def.name] = { ...(box[def.name] as Json), ...(c as Json) };
    } else {
      box[def.name] = c;
    }
  }

  applySub(op: PatchOpName, box: Json, def: AttrDef, sub: AttrDef, value: unknown): void {
    if (def.multiValued) {
      // `emails.value` without a filter: every element (creating one if there is none).
      const list = Array.isArray(box[def.name]) ? (box[def.name] as Json[]) : [];
      if (op === 'remove') {
        for (const el of list) delete el[sub.name];
        return;
      }
      const c = coerceValue(sub, value);
      if (!list.length) list.push({});
      for (const el of list) if (c === undefined) delete el[sub.name];
      else el[sub.name] = c;
      box[def.name] = list;
      return;
    }
    const obj = isObject(box[def.name]) ? (box[def.name] as Json) : {};
    if (op === 'remove') delete obj[sub.name];
    else {
      const c = coerceValue(sub, value);
      if (c === undefined) delete obj[sub.name];
      else obj[sub.name] = c;
    }
    if (Object.keys(obj).length) box[def.name] = obj;
    else delete box[def.name];
  }

  applyFiltered(op: PatchOpName, box: Json, def: AttrDef, parsed: PatchPath, value: unknown): void {
    if (!def.multiValued || def.type !== 'complex') throw scimError('invalidPath', `${def.name} is not a multi-valued complex attribute`);
    const list = Array.isArray(box[def.name]) ? (box[def.name] as Json[]) : [];
    const filter = parsed.filter!;
    const hits = list.filter((el) => matchElement(filter, el, def));
    const sub = parsed.subAfterFilter ? def.subAttributes?.find((a) => a.name.toLowerCase() === parsed.subAfterFilter!.toLowerCase()) : null;
    if (parsed.subAfterFilter && !sub) throw scimError('invalidPath', `"${parsed.subAfterFilter}" is not a sub-attribute of ${def.name}`);

    if (op === 'remove') {
      if (sub) for (const el of hits) delete el[sub.name];
      else box[def.name] = list.filter((el) => !hits.includes(el));
      if (!(box[def.name] as unknown[]).length) delete box[def.name];
      return;
    }
    if (!hits.length) {
      // No element matches: create the one an equality filter describes, else there is no target.
      const seed = elementFromEquality(filter, def);
      if (!seed) throw scimError('noTarget', `no ${def.name} value matches the filter`);
      const el = sub ? { ...seed, [sub.name]: coerceValue(sub, value) } : { ...seed, ...((coerceValue({ ...def, multiValued: false }, value) as Json | undefined) ?? {}) };
      list.push(el);
      onePrimary(list, el);
      box[def.name] = list;
      return;
    }
    for (const el of hits) {
      if (sub) {
        const c = coerceValue(sub, value);
        if (c === undefined) delete el[sub.name];
        else el[sub.name] = c;
      } else {
        Object.assign(el, (coerceValue({ ...def, multiValued: false }, value) as Json | undefined) ?? {});
      }
      onePrimary(list, el);
    }
    box[def.name] = list;
  }
}

/** Applies the operations in order, atomically: any failure leaves the original untouched. */
export function applyPatch(schema: ResourceSchema, resource: Json, ops: PatchOp[]): Json {
  const p = new Patcher(schema, resource);
  for (const op of ops) p.apply(op);
  for (const e of schema.extensions) {
    const ext = p.res[e.urn];
    if (isObject(ext) && !Object.keys(ext).length) delete p.res[e.urn];
  }
  return p.res;
}
