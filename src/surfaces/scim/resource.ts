// Canonical SCIM JSON: what clients send, reduced to the schema's own attribute names and types.
// Names match case-insensitively (RFC 7643 §2.1), unknown attributes are ignored (§3.1, "Unknown
// attributes are ignored, not fatal"), read-only ones are dropped, "True"/"False" become booleans,
// and a complex attribute given as a bare string (`manager: "id"`, `members: "id"`) becomes {value}.
import { scimError } from './errors.ts';
import { findAttr, findSchemaUrn, resolveAttr, splitUrn, type AttrDef, type ResourceSchema } from './schemas.ts';
import { asBoolean, normaliseDate } from './filter/values.ts';

export type Json = Record<string, unknown>;

export const MAX_STRING = 8192;
export const MAX_VALUES = 100_000;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The value coerced to the attribute's type; undefined means "absent" (null clears, RFC 7644 §3.5.1). */
export function coerceValue(def: AttrDef, value: unknown, where = def.name): unknown {
  if (value === null || value === undefined) return undefined;
  if (def.multiValued) {
    const list = Array.isArray(value) ? value : [value];
    if (list.length > MAX_VALUES) throw scimError('invalidValue', `${where} has more than ${MAX_VALUES} values`);
    const single = { ...def, multiValued: false };
    const out = list.map((v) => coerceValue(single, v, where)).filter((v) => v !== undefined);
    return out;
  }
  switch (def.type) {
    case 'complex': {
      let obj: Json;
      if (isObject(value)) obj = value;
      else if ((typeof value === 'string' || typeof value === 'number') && def.subAttributes?.some((a) => a.name === 'value')) obj = { value: String(value) };
      else throw scimError('invalidValue', `${where} must be an object`);
      const out: Json = {};
      for (const [k, v] of Object.entries(obj)) {
        let sub = findAttr(def.subAttributes ?? [], k);
        // Microsoft's reference client sends members as {value, displayName}; display is meant.
        if (!sub && k.toLowerCase() === 'displayname') sub = findAttr(def.subAttributes ?? [], 'display');
        if (!sub || (sub.name in out && k.toLowerCase() !== sub.name.toLowerCase())) continue;
        const c = coerceValue(sub, v, `${where}.${sub.name}`);
        if (c !== undefined) out[sub.name] = c;
      }
      return out;
    }
    case 'boolean': {
      const b = asBoolean(value);
      if (b === undefined) throw scimError('invalidValue', `${where} must be true or false`);
      return b;
    }
    case 'integer':
    case 'decimal': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
      if (!Number.isFinite(n) || (def.type === 'integer' && !Number.isInteger(n))) throw scimError('invalidValue', `${where} must be a number`);
      return n;
    }
    case 'dateTime': {
      const d = typeof value === 'string' ? normaliseDate(value) : null;
      if (!d) throw scimError('invalidValue', `${where} must be an RFC 3339 date-time`);
      return d;
    }
    default: {
      if (typeof value === 'number' || typeof value === 'boolean') value = String(value);
      if (typeof value !== 'string') throw scimError('invalidValue', `${where} must be a string`);
      if (value.length > MAX_STRING) throw scimError('invalidValue', `${where} is longer than ${MAX_STRING} characters`);
      return value;
    }
  }
}

function setCanonical(out: Json, def: AttrDef, value: unknown, extension: string | null) {
  if (def.mutability === 'readOnly' || def.returned === 'never') return;
  const c = coerceValue(def, value);
  const target = extension ? ((out[extension] as Json | undefined) ?? (out[extension] = {})) as Json : out;
  if (c === undefined) delete target[def.name];
  else target[def.name] = c;
}

/** A request body (POST/PUT) in canonical form: schema names, coerced values, nothing unknown. */
export function canonicalise(schema: ResourceSchema, body: unknown): Json {
  if (!isObject(body)) throw scimError('invalidSyntax', 'the request body must be a JSON object');
  const out: Json = {};
  for (const [key, value] of Object.entries(body)) {
    const ext = findSchemaUrn(schema, key);
    if (ext?.extension) {
      if (value === null) continue;
      if (!isObject(value)) throw scimError('invalidValue', `${ext.urn} must be an object`);
      for (const [k, v] of Object.entries(value)) {
        const def = findAttr(ext.attrs, k);
        if (def) setCanonical(out, def, v, ext.urn);
      }
      continue;
    }
    const { urn, rest } = splitUrn(key);
    const r = resolveAttr(schema, urn, rest, null);
    if (!r || (r.def.name === 'id' && !r.extension) || r.def.name === 'meta') continue;
    setCanonical(out, r.def, value, r.extension);
  }
  for (const e of schema.extensions) if (isObject(out[e.urn]) && !Object.keys(out[e.urn] as Json).length) delete out[e.urn];
  return out;
}

/** Required attributes present (RFC 7643 §2.2): 400 invalidValue otherwise. */
export function checkRequired(schema: ResourceSchema, res: Json): void {
  for (const def of schema.core.attrs) {
    if (!def.required) continue;
    const v = res[def.name];
    if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) {
      throw scimError('invalidValue', `${def.name} is required`);
    }
  }
}

interface Selection {
  attrs: Set<string>;
}

/** Parses `attributes`/`excludedAttributes` (comma-separated, case-insensitive, URN-qualified or not). */
function parseSelection(schema: ResourceSchema, list: string | undefined): Selection | null {
  if (!list) return null;
  const attrs = new Set<string>();
  for (let raw of list.split(',')) {
    raw = raw.trim().replace(/\[.*$/, ''); // lenient: `emails[type eq "work"]` selects emails
    if (!raw) continue;
    const ext = findSchemaUrn(schema, raw);
    if (ext) {
      attrs.add(ext.urn.toLowerCase());
      continue;
    }
    const { urn, rest } = splitUrn(raw);
    const [name, sub] = rest.split('.');
    const r = resolveAttr(schema, urn, name ?? '', sub ?? null);
    if (!r) continue;
    const base = `${r.extension ? r.extension.toLowerCase() + ':' : ''}${r.def.name.toLowerCase()}`;
    attrs.add(r.sub ? `${base}.${r.sub.name.toLowerCase()}` : base);
  }
  return { attrs };
}

/**
 * Applies `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5) to a rendered resource. `id` and
 * `schemas` are always returned; other top-level keys and extension sub-keys are filtered.
 */
export function project(schema: ResourceSchema, resource: Json, attributes?: string, excluded?: string): Json {
  const inc = parseSelection(schema, attributes);
  const exc = inc ? null : parseSelection(schema, excluded);
  if (!inc && !exc) return resource;
  const keep = (key: string, value: unknown, prefix: string): unknown => {
    const k = prefix + key.toLowerCase();
    if (inc) {
      if (inc.attrs.has(k)) return value;
      const subs = [...inc.attrs].filter((a) => a.startsWith(k + '.') || a.startsWith(k + ':'));
      if (!subs.length || !isObject(value)) {
        if (!subs.length) return undefined;
        // multi-valued complex: keep the selected sub-attributes of each element
        if (Array.isArray(value)) return value.map((el) => (isObject(el) ? pick(el, subs, k) : el));
        return undefined;
      }
      return pick(value, subs, k);
    }
    if (exc!.attrs.has(k)) return undefined;
    return value;
  };
  const pick = (obj: Json, subs: string[], k: string): Json => {
    const out: Json = {};
    for (const [sk, sv] of Object.entries(obj)) {
      const full = `${k}.${sk.toLowerCase()}`;
      const fullExt = `${k}:${sk.toLowerCase()}`;
      if (subs.includes(full) || subs.includes(fullExt) || subs.some((s) => s.startsWith(fullExt + '.'))) {
        out[sk] = subs.some((s) => s.startsWith(fullExt + '.')) && isObject(sv) ? pick(sv, subs, fullExt) : sv;
      }
    }
    return out;
  };
  const out: Json = {};
  for (const [key, value] of Object.entries(resource)) {
    if (key === 'id' || key === 'schemas') {
      out[key] = value;
      continue;
    }
    const ext = schema.extensions.find((e) => e.urn === key);
    if (ext && exc && isObject(value)) {
      if (exc.attrs.has(ext.urn.toLowerCase())) continue;
      const kept: Json = {};
      for (const [sk, sv] of Object.entries(value)) if (!exc.attrs.has(`${ext.urn.toLowerCase()}:${sk.toLowerCase()}`)) kept[sk] = sv;
      out[key] = kept;
      continue;
    }
    const v = keep(key, value, '');
    if (v !== undefined) out[key] = v;
  }
  return out;
}

