// How a filter literal meets an attribute's type (RFC 7643 §2.3): shared by the SQL compiler and the
// in-memory matcher so both read "True", dates with any offset and numbers alike.
import { scimError } from '../errors.ts';
import type { AttrDef } from '../schemas.ts';
import type { Literal } from './parser.ts';

/** RFC 3339 date-time with any fractional precision and offset → ISO string (ms, UTC) or null. */
export function normaliseDate(value: string): string | null {
  const m = /^(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$/.exec(value.trim());
  if (!m) return null;
  const frac = m[3] ? m[3].slice(0, 4).padEnd(4, '0') : '';
  const zone = m[4] ? (m[4].toUpperCase() === 'Z' ? 'Z' : m[4].includes(':') ? m[4] : `${m[4].slice(0, 3)}:${m[4].slice(3)}`) : 'Z';
  const t = Date.parse(`${m[1]}T${m[2] ?? '00:00:00'}${m[2] && m[2].length === 5 ? ':00' : ''}${frac}${zone}`);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

export function asBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const l = value.trim().toLowerCase();
    if (l === 'true') return true;
    if (l === 'false') return false;
  }
  return undefined;
}

/** The filter literal converted to what the attribute holds; 400 invalidFilter when impossible. */
export function coerceLiteral(def: AttrDef, value: Literal): string | number | boolean | null {
  if (value === null) return null;
  switch (def.type) {
    case 'boolean': {
      const b = asBoolean(value);
      if (b === undefined) throw scimError('invalidFilter', `${def.name} is a boolean; compare it with true or false`);
      return b;
    }
    case 'dateTime': {
      const d = typeof value === 'string' ? normaliseDate(value) : null;
      if (!d) throw scimError('invalidFilter', `${def.name} is a dateTime; "${String(value)}" is not one`);
      return d;
    }
    case 'integer':
    case 'decimal': {
      const n = typeof value === 'number' ? value : Number(value);
      if (typeof value === 'boolean' || !Number.isFinite(n)) throw scimError('invalidFilter', `${def.name} is a number`);
      return n;
    }
    case 'complex':
      throw scimError('invalidFilter', `${def.name} is complex; filter on one of its sub-attributes`);
    default:
      return String(value);
  }
}
