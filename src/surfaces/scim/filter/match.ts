// Evaluates a value filter (`members[value eq "…"]`, `emails[type eq "work" and primary eq true]`)
// against one element of a multi-valued attribute in memory — what PATCH paths select (RFC 7644 §3.5.2).
import { scimError } from '../errors.ts';
import type { AttrDef } from '../schemas.ts';
import type { CompareOp, Filter } from './parser.ts';
import { coerceLiteral, normaliseDate } from './values.ts';

type Element = Record<string, unknown>;

function subDef(parent: AttrDef, name: string): AttrDef {
  const def = parent.subAttributes?.find((a) => a.name.toLowerCase() === name.toLowerCase());
  if (!def) throw scimError('invalidPath', `"${name}" is not a sub-attribute of ${parent.name}`);
  return def;
}

function cmp(def: AttrDef, actual: unknown, op: CompareOp, expected: string | number | boolean | null): boolean {
  if (expected === null) return op === 'eq' ? actual == null : op === 'ne' ? actual != null : false;
  if (actual == null) return op === 'ne';
  let a: unknown = actual;
  let e: unknown = expected;
  if (def.type === 'dateTime') a = typeof actual === 'string' ? normaliseDate(actual) : null;
  if ((def.type === 'string' || def.type === 'reference') && !def.caseExact) {
    a = String(a).toLowerCase();
    e = String(e).toLowerCase();
  } else if (def.type === 'string' || def.type === 'reference') {
    a = String(a);
  }
  switch (op) {
    case 'eq':
      return a === e;
    case 'ne':
      return a !== e;
    case 'co':
      return String(a).includes(String(e));
    case 'sw':
      return String(a).startsWith(String(e));
    case 'ew':
      return String(a).endsWith(String(e));
    case 'gt':
      return (a as string) > (e as string);
    case 'ge':
      return (a as string) >= (e as string);
    case 'lt':
      return (a as string) < (e as string);
    case 'le':
      return (a as string) <= (e as string);
  }
}

export function matchElement(filter: Filter, element: Element, parent: AttrDef): boolean {
  switch (filter.kind) {
    case 'and':
      return matchElement(filter.left, element, parent) && matchElement(filter.right, element, parent);
    case 'or':
      return matchElement(filter.left, element, parent) || matchElement(filter.right, element, parent);
    case 'not':
      return !matchElement(filter.filter, element, parent);
    case 'valuePath':
      throw scimError('invalidPath', 'value filters cannot nest');
    default: {
      const name = filter.path.sub && filter.path.name.toLowerCase() === parent.name.toLowerCase() ? filter.path.sub : filter.path.name;
      const def = subDef(parent, name);
      const actual = element[def.name];
      if (filter.kind === 'pr') return actual != null && actual !== '';
      if (def.type === 'boolean') {
        const b = coerceLiteral(def, filter.value);
        return filter.op === 'ne' ? actual !== b : filter.op === 'eq' ? actual === b : false;
      }
      return cmp(def, actual, filter.op, coerceLiteral(def, filter.value));
    }
  }
}

/** For `replace emails[type eq "work"].value` with no such element: the element the filter describes. */
export function elementFromEquality(filter: Filter, parent: AttrDef): Element | null {
  if (filter.kind === 'and') {
    const l = elementFromEquality(filter.left, parent);
    const r = elementFromEquality(filter.right, parent);
    return l && r ? { ...l, ...r } : null;
  }
  if (filter.kind !== 'cmp' || filter.op !== 'eq' || filter.path.sub) return null;
  const def = parent.subAttributes?.find((a) => a.name.toLowerCase() === filter.path.name.toLowerCase());
  if (!def) return null;
  return { [def.name]: coerceLiteral(def, filter.value) };
}
