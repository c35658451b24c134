// The filter grammar of RFC 7644 §3.4.2.2 (and the PATCH path grammar of §3.5.2), parsed by
// recursive descent into a small AST. Attribute names and operators are case-insensitive. Values may
// be JSON strings, numbers, true/false/null, or — because Entra ID sends `name.familyName eq Smith` —
// a bare word, read as a string where that is unambiguous. Limits keep hostile input a 400.
import { scimError } from '../errors.ts';

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
export type Literal = string | number | boolean | null;

export interface AttrPath {
  urn: string | null;
  name: string;
  sub: string | null;
}

export type Filter =
  | { kind: 'cmp'; path: AttrPath; op: CompareOp; value: Literal }
  | { kind: 'pr'; path: AttrPath }
  | { kind: 'and' | 'or'; left: Filter; right: Filter }
  | { kind: 'not'; filter: Filter }
  | { kind: 'valuePath'; path: AttrPath; filter: Filter };

export interface PatchPath {
  path: AttrPath;
  /** `emails[type eq "work"]` selects elements of a multi-valued attribute. */
  filter: Filter | null;
  /** `emails[type eq "work"].value` then addresses a sub-attribute of the selected elements. */
  subAfterFilter: string | null;
}

export const FILTER_LIMITS = { maxLength: 10_000, maxDepth: 32, maxTerms: 200 };

const OPS = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le', 'pr']);
const ATTR_CHARS = /[A-Za-z0-9:._$-]/;
const NAME = /^\$?[A-Za-z][A-Za-z0-9_-]*$/;
const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

class Parser {
  pos = 0;
  private depth = 0;
  private terms = 0;
  private readonly src: string;
  private readonly what: 'invalidFilter' | 'invalidPath';

  constructor(src: string, what: 'invalidFilter' | 'invalidPath') {
    this.src = src;
    this.what = what;
    if (src.length > FILTER_LIMITS.maxLength) throw scimError(what, `filter is longer than ${FILTER_LIMITS.maxLength} characters`);
  }

  fail(msg: string): never {
    throw scimError(this.what, `${msg} at position ${this.pos + 1}`);
  }

  ws(): boolean {
    const start = this.pos;
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos]!)) this.pos++;
    return this.pos > start;
  }

  peek(): string {
    return this.src[this.pos] ?? '';
  }

  atEnd(): boolean {
    return this.pos >= this.src.length;
  }

  /** Reads a case-insensitive keyword if it is next and followed by a delimiter. */
  keyword(word: string): boolean {
    const end = this.pos + word.length;
    if (this.src.slice(this.pos, end).toLowerCase() !== word) return false;
    const next = this.src[end] ?? '';
    if (next !== '' && !/[\s(]/.test(next)) return false;
    this.pos = end;
    return true;
  }

  enter() {
    if (++this.depth > FILTER_LIMITS.maxDepth) this.fail(`filter nests deeper than ${FILTER_LIMITS.maxDepth} levels`);
  }

  leave() {
    this.depth--;
  }

  parseFilter(inValuePath: boolean): Filter {
    this.enter();
    let left = this.parseAnd(inValuePath);
    for (;;) {
      const save = this.pos;
      if (!this.ws()) break;
      if (!this.keyword('or')) {
        this.pos = save;
        break;
      }
      this.ws();
      left = { kind: 'or', left, right: this.parseAnd(inValuePath) };
    }
    this.leave();
    return left;
  }

  parseAnd(inValuePath: boolean): Filter {
    let left = this.parseUnary(inValuePath);
    for (;;) {
      const save = this.pos;
      if (!this.ws()) break;
      if (!this.keyword('and')) {
        this.pos = save;
        break;
      }
      this.ws();
      left = { kind: 'and', left, right: this.parseUnary(inValuePath) };
    }
    return left;
  }

  parseUnary(inValuePath: boolean): Filter {
    this.ws();
    if (this.keyword('not')) {
      this.ws();
      if (this.peek() !== '(') this.fail('expected "(" after "not"');
      this.enter();
      const inner = this.parseParens(inValuePath);
      this.leave();
      return { kind: 'not', filter: inner };
    }
    if (this.peek() === '(') return this.parseParens(inValuePath);
    return this.parseAttrExp(inValuePath);
  }

  parseParens(inValuePath: boolean): Filter {
    this.pos++; // (
    this.ws();
    const inner = this.parseFilter(inValuePath);
    this.ws();
    if (this.peek() !== ')') this.fail('expected ")"');
    this.pos++;
    return inner;
  }

  parseAttrPath(): AttrPath {
    const start = this.pos;
    while (this.pos < this.src.length && ATTR_CHARS.test(this.src[this.pos]!)) this.pos++;
    const raw = this.src.slice(start, this.pos);
    if (!raw) this.fail('expected an attribute name');
    return this.splitPath(raw);
  }

  splitPath(raw: string): AttrPath {
    let urn: string | null = null;
    let rest = raw;
    if (/^urn:/i.test(raw)) {
      const i = raw.lastIndexOf(':');
      urn = raw.slice(0, i);
      rest = raw.slice(i + 1);
    }
    const parts = rest.split('.');
    if (parts.length > 2 || !parts.every((p) => NAME.test(p))) this.fail(`"${raw}" is not a valid attribute path`);
    return { urn, name: parts[0]!, sub: parts[1] ?? null };
  }

  parseAttrExp(inValuePath: boolean): Filter {
    if (++this.terms > FILTER_LIMITS.maxTerms) this.fail(`filter has more than ${FILTER_LIMITS.maxTerms} terms`);
    const path = this.parseAttrPath();
    if (this.peek() === '[') {
      if (inValuePath) this.fail('value filters cannot nest');
      if (path.sub) this.fail('a value filter applies to a multi-valued attribute, not a sub-attribute');
      return { kind: 'valuePath', path, filter: this.parseBracket() };
    }
    if (!this.ws()) this.fail('expected an operator after the attribute');
    const opStart = this.pos;
    while (/[A-Za-z]/.test(this.peek())) this.pos++;
    const op = this.src.slice(opStart, this.pos).toLowerCase();
    if (!OPS.has(op)) {
      this.pos = opStart;
      this.fail(`unknown operator "${this.src.slice(opStart, opStart + 10).split(/\s/)[0]}"`);
    }
    if (op === 'pr') return { kind: 'pr', path };
    if (!this.ws()) this.fail(`expected a value after "${op}"`);
    return { kind: 'cmp', path, op: op as CompareOp, value: this.parseValue() };
  }

  parseBracket(): Filter {
    this.pos++; // [
    this.enter();
    this.ws();
    const filter = this.parseFilter(true);
    this.ws();
    if (this.peek() !== ']') this.fail('expected "]"');
    this.pos++;
    this.leave();
    return filter;
  }

  parseValue(): Literal {
    if (this.peek() === '"') return this.parseString();
    const start = this.pos;
    while (this.pos < this.src.length && !/[\s)\]]/.test(this.src[this.pos]!)) this.pos++;
    const word = this.src.slice(start, this.pos);
    if (!word) this.fail('expected a value');
    const lower = word.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
    if (lower === 'null') return null;
    if (NUMBER.test(word)) return Number(word);
    if (word.includes('"') || word.includes('(') || word.includes('[')) {
      this.pos = start;
      this.fail('malformed value');
    }
    return word;
  }

  parseString(): string {
    // A JSON string (RFC 8259 §7): decode it with JSON.parse once its end is found.
    const start = this.pos;
    this.pos++;
    for (;;) {
      if (this.atEnd()) this.fail('unterminated string');
      const c = this.src[this.pos]!;
      if (c === '\\') {
        const e = this.src[this.pos + 1] ?? '';
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(this.src.slice(this.pos + 2, this.pos + 6))) this.fail('bad \\u escape in string');
          this.pos += 6;
        } else if ('"\\/bfnrt'.includes(e) && e !== '') {
          this.pos += 2;
        } else {
          this.fail(`bad escape "\\${e}" in string`);
        }
        continue;
      }
      if (c.charCodeAt(0) < 0x20) this.fail('control character in string');
      this.pos++;
      if (c === '"') break;
    }
    return JSON.parse(this.src.slice(start, this.pos)) as string;
  }
}

export function parseFilter(src: string): Filter {
  const p = new Parser(src, 'invalidFilter');
  p.ws();
  if (p.atEnd()) p.fail('filter is empty');
  const f = p.parseFilter(false);
  p.ws();
  if (!p.atEnd()) p.fail('unexpected text after the filter');
  return f;
}

/** PATCH path: attrPath, or valuePath optionally followed by ".subAttr" (RFC 7644 §3.5.2). */
export function parsePatchPath(src: string): PatchPath {
  const p = new Parser(src.trim(), 'invalidPath');
  const path = p.parseAttrPath();
  let filter: Filter | null = null;
  let subAfterFilter: string | null = null;
  if (p.peek() === '[') {
    if (path.sub) p.fail('a value filter applies to a multi-valued attribute, not a sub-attribute');
    filter = p.parseBracket();
    if (p.peek() === '.') {
      p.pos++;
      const sub = p.parseAttrPath();
      if (sub.urn || sub.sub) p.fail('expected a sub-attribute name');
      subAfterFilter = sub.name;
    }
  }
  if (!p.atEnd()) p.fail('unexpected text after the path');
  return { path, filter, subAfterFilter };
}
