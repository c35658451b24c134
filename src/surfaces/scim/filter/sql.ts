// Compiles a parsed filter into a parameterised SQL condition. Values are always bound parameters;
// the only text spliced into SQL comes from the resource mapping (column names and JSON paths built
// from schema-defined attribute names), never from the request.
import { scimError } from '../errors.ts';
import { resolveAttr, type AttrDef, type ResolvedAttr, type ResourceSchema } from '../schemas.ts';
import type { AttrPath, CompareOp, Filter, Literal } from './parser.ts';
import { coerceLiteral } from './values.ts';

export type Target =
  | { kind: 'scalar'; sql: string }
  /** A multi-valued attribute: rows `from` (which must mention no request text) and per-element SQL. */
  | { kind: 'multi'; from: string; element(sub: AttrDef | null): string | null };

/** Maps a resolved attribute to SQL; null when the attribute cannot be filtered on. */
export type SqlMapping = (attr: ResolvedAttr) => Target | null;

export interface SqlCondition {
  sql: string;
  params: unknown[];
}

const SAFE_NAME = /^[A-Za-z0-9:._$-]+$/;

/** A JSON path literal for json_extract/json_each, from schema names only. */
export function jsonPath(...parts: string[]): string {
  for (const p of parts) if (!SAFE_NAME.test(p)) throw new Error(`unsafe JSON path part ${p}`);
  return `'$${parts.map((p) => (/^[A-Za-z][A-Za-z0-9_]*$/.test(p) ? `.${p}` : `."${p}"`)).join('')}'`;
}

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => '\\' + c);
const globEscape = (s: string) => s.replace(/[*?[]/g, (c) => `[${c}]`);

function compare(expr: string, def: AttrDef, op: CompareOp, literal: Literal, params: unknown[]): string {
  const value = coerceLiteral(def, literal);
  const isString = def.type === 'string' || def.type === 'reference' || def.type === 'binary';
  const nocase = isString && !def.caseExact ? ' COLLATE NOCASE' : '';
  const bind = (v: unknown) => {
    params.push(typeof v === 'boolean' ? (v ? 1 : 0) : v);
    return '?';
  };
  if (value === null) {
    if (op === 'eq') return `${expr} IS NULL`;
    if (op === 'ne') return `${expr} IS NOT NULL`;
    throw scimError('invalidFilter', `"${op}" cannot compare with null`);
  }
  switch (op) {
    case 'eq':
      return `${expr} = ${bind(value)}${nocase}`;
    case 'ne':
      return `(${expr} IS NULL OR ${expr} <> ${bind(value)}${nocase})`;
    case 'co':
    case 'sw':
    case 'ew': {
      if (!isString) throw scimError('invalidFilter', `"${op}" applies to strings; ${def.name} is ${def.type}`);
      const v = String(value);
      if (def.caseExact) {
        return `${expr} GLOB ${bind(`${op === 'sw' ? '' : '*'}${globEscape(v)}${op === 'ew' ? '' : '*'}`)}`;
      }
      return `${expr} LIKE ${bind(`${op === 'sw' ? '' : '%'}${likeEscape(v)}${op === 'ew' ? '' : '%'}`)} ESCAPE '\\'`;
    }
    default: {
      if (def.type === 'boolean' || def.type === 'binary') throw scimError('invalidFilter', `"${op}" does not apply to ${def.type} ${def.name}`);
      const sym = { gt: '>', ge: '>=', lt: '<', le: '<=' }[op];
      return `${expr} ${sym} ${bind(value)}${nocase}`;
    }
  }
}

function present(expr: string, def: AttrDef): string {
  return def.type === 'string' || def.type === 'reference' ? `(${expr} IS NOT NULL AND ${expr} <> '')` : `${expr} IS NOT NULL`;
}

export function compileFilter(filter: Filter, schema: ResourceSchema, mapping: SqlMapping): SqlCondition {
  const params: unknown[] = [];

  const resolve = (path: AttrPath) => {
    const r = resolveAttr(schema, path.urn, path.name, path.sub);
    if (!r) throw scimError('invalidFilter', `unknown attribute "${[path.urn, path.name].filter(Boolean).join(':')}${path.sub ? '.' + path.sub : ''}"`);
    if (r.def.returned === 'never') throw scimError('invalidFilter', `${r.def.name} cannot be filtered on`);
    const target = mapping(r);
    if (!target) throw scimError('invalidFilter', `${r.def.name} cannot be filtered on`);
    return { r, target };
  };

  /** A comparison on one element of a multi-valued attribute (inside EXISTS). */
  const elementCond = (f: Filter, parent: AttrDef, target: Extract<Target, { kind: 'multi' }>): string => {
    switch (f.kind) {
      case 'and':
      case 'or':
        return `(${elementCond(f.left, parent, target)} ${f.kind.toUpperCase()} ${elementCond(f.right, parent, target)})`;
      case 'not':
        return `NOT (${elementCond(f.filter, parent, target)})`;
      case 'valuePath':
        throw scimError('invalidFilter', 'value filters cannot nest');
      default: {
        // Inside brackets paths are sub-attribute names (`type`, `primary`); `emails.type` also reads fine.
        const name = f.path.sub && f.path.name.toLowerCase() === parent.name.toLowerCase() ? f.path.sub : f.path.sub ? null : f.path.name;
        const sub = name && parent.subAttributes?.find((a) => a.name.toLowerCase() === name.toLowerCase());
        if (!sub) throw scimError('invalidFilter', `"${f.path.name}${f.path.sub ? '.' + f.path.sub : ''}" is not a sub-attribute of ${parent.name}`);
        const expr = target.element(sub);
        if (!expr) throw scimError('invalidFilter', `${parent.name}.${sub.name} cannot be filtered on`);
        return f.kind === 'pr' ? present(expr, sub) : compare(expr, sub, f.op, f.value, params);
      }
    }
  };

  const elementDef = (def: AttrDef, sub: AttrDef | null): AttrDef => {
    if (sub) return sub;
    if (def.type !== 'complex') return def;
    // RFC 7644 §3.4.2.2: a complex multi-valued attribute without a sub-attribute means its "value".
    const value = def.subAttributes?.find((a) => a.name === 'value');
    if (!value) throw scimError('invalidFilter', `${def.name} is complex; name a sub-attribute`);
    return value;
  };

  const walk = (f: Filter): string => {
    switch (f.kind) {
      case 'and':
      case 'or':
        return `(${walk(f.left)} ${f.kind.toUpperCase()} ${walk(f.right)})`;
      case 'not':
        return `NOT coalesce(${walk(f.filter)}, 0)`;
      case 'valuePath': {
        const { r, target } = resolve(f.path);
        if (target.kind !== 'multi' || r.def.type !== 'complex') throw scimError('invalidFilter', `${r.def.name} is not a multi-valued complex attribute`);
        return `EXISTS (SELECT 1 ${target.from} AND ${elementCond(f.filter, r.def, target)})`;
      }
      case 'pr':
      case 'cmp': {
        const { r, target } = resolve(f.path);
        if (target.kind === 'multi') {
          if (f.kind === 'pr' && !r.sub) return `EXISTS (SELECT 1 ${target.from})`;
          const def = elementDef(r.def, r.sub);
          const expr = target.element(r.def.type === 'complex' ? def : null);
          if (!expr) throw scimError('invalidFilter', `${r.def.name} cannot be filtered on`);
          const cond = f.kind === 'pr' ? present(expr, def) : compare(expr, def, f.op, f.value, params);
          return `EXISTS (SELECT 1 ${target.from} AND ${cond})`;
        }
        const def = r.sub ?? r.def;
        if (def.type === 'complex') throw scimError('invalidFilter', `${def.name} is complex; name a sub-attribute`);
        return f.kind === 'pr' ? present(target.sql, def) : compare(target.sql, def, f.op, f.value, params);
      }
    }
  };

  return { sql: walk(filter), params };
}
