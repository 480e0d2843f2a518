/**
 * The JDL parser: DIRAC's subset of ClassAds, where every value is a literal.
 *
 * ```
 * [
 *   # a full-line comment
 *   Executable = "run.sh";            // strings in double quotes, \" and \\ escaped
 *   CPUTime = 3600;                   // integers and floats (-1, 0.5, 1e3)
 *   WholeNode = true;                 // booleans, case-insensitive
 *   InputSandbox = { "a", "b" };      // lists, possibly empty or nested
 *   JobRequirements = [ Owner = "alice"; ];   // nested ads
 * ]
 * ```
 *
 * The surrounding `[ ]` is optional and the `;` after the last attribute too. Comments take a
 * whole line (`#` or `//` as its first non-blank characters); there are no inline comments, so
 * the trailing `//` notes above are only for this page. Attribute names are case-sensitive, as
 * in DIRAC, and start with a letter; `.` is allowed inside them (`Parameters.x`).
 *
 * Errors stop at the first problem and always throw `WmsError` (`WMS_JDL_SYNTAX`) with a 1-based
 * line and column. A token that is there but wrong (an unclosed string, a stray comma) is
 * reported where it starts; a token that is missing (`=`, `;`, a value) is reported right after
 * the token before it, where it was expected.
 */

import { jdlError } from '../errors.js';

/** A literal JDL value. Numbers are JS numbers: `1.0` and `1` are the same value. */
export type JdlValue = string | number | boolean | JdlValue[] | JdlAd;

/** One `Name = value;` pair, with where its name and its value start in the text (1-based). */
export interface JdlAttribute {
  name: string;
  value: JdlValue;
  /** Position of the name; 0 when the attribute was made in code rather than read from text. */
  line: number;
  column: number;
  /** Position of the value's first character; 0 when made in code. */
  valueLine: number;
  valueColumn: number;
}

/** A ClassAd: attributes in the order they were written. Names are unique. */
export interface JdlAd {
  attributes: JdlAttribute[];
}

/** True when the value is a (nested) ad rather than a scalar or a list. */
export function isJdlAd(value: JdlValue): value is JdlAd {
  return typeof value === 'object' && !Array.isArray(value);
}

/** The attribute called exactly `name` (case-sensitive, as DIRAC), or undefined. */
export function getAttribute(ad: JdlAd, name: string): JdlAttribute | undefined {
  return ad.attributes.find((a) => a.name === name);
}

/**
 * An attribute made in code. Its position is copied from `at` when given (so problems found on
 * it still point into the user's text), else 0.
 */
export function makeAttribute(
  name: string,
  value: JdlValue,
  at?: Pick<JdlAttribute, 'line' | 'column' | 'valueLine' | 'valueColumn'>,
): JdlAttribute {
  return {
    name,
    value,
    line: at?.line ?? 0,
    column: at?.column ?? 0,
    valueLine: at?.valueLine ?? 0,
    valueColumn: at?.valueColumn ?? 0,
  };
}

/** Nesting of lists and ads deeper than this is refused (it would only exhaust the stack). */
const MAX_DEPTH = 64;

const NAME_START = /[A-Za-z]/;
const NAME_CHAR = /[A-Za-z0-9_.]/;
const NUMBER = /[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const WORD = /[A-Za-z_][A-Za-z0-9_.]*/y;
const WHITESPACE = new Set([' ', '\t', '\r', '\n', '\f', '\v', '\uFEFF']);

interface Position {
  line: number;
  column: number;
}

class Parser {
  private pos = 0;
  private line = 1;
  private column = 1;
  /** Index in the text where the current line starts (to recognise full-line comments). */
  private lineStart = 0;

  constructor(private readonly text: string) {}

  parseDocument(): JdlAd {
    this.skipBlank();
    let ad: JdlAd;
    if (this.peek() === '[') {
      ad = this.parseAd(0);
      this.skipBlank();
      if (!this.atEnd()) {
        this.fail(`unexpected ${this.describeChar()} after the closing ']'`);
      }
    } else {
      ad = this.parseBody(null, 0);
    }
    return ad;
  }

  /** `[ body ]`, at the `[`. */
  private parseAd(depth: number): JdlAd {
    const open = this.here();
    this.advance();
    return this.parseBody(open, depth + 1);
  }

  /**
   * `Name = value; ...` up to the `]` that matches `open`, or up to the end of the text when
   * `open` is null (a JDL without brackets). Consumes the closing `]`.
   */
  private parseBody(open: Position | null, depth: number): JdlAd {
    if (depth > MAX_DEPTH) this.fail(`nested more than ${MAX_DEPTH} levels deep`);
    const attributes: JdlAttribute[] = [];
    const seen = new Map<string, JdlAttribute>();
    for (;;) {
      this.skipBlank();
      const c = this.peek();
      if (c === undefined) {
        if (open) this.fail("unclosed '[': missing ']'", open);
        break;
      }
      if (c === ']') {
        if (!open) this.fail("unexpected ']' without a matching '['");
        this.advance();
        break;
      }
      if (c === ';') {
        this.advance(); // a stray ';' (as in `A = 1;;`) is harmless
        continue;
      }
      if (!NAME_START.test(c)) {
        this.fail(`unexpected ${this.describeChar()}: an attribute name must start with a letter`);
      }

      const at = this.here();
      const name = this.readName();
      const previous = seen.get(name);
      if (previous) {
        this.fail(`duplicate attribute ${name} (already set at line ${previous.line})`, at);
      }
      const afterName = this.here();
      this.skipBlank();
      if (this.peek() !== '=') this.fail(`missing '=' after the attribute name ${name}`, afterName);
      this.advance();
      const afterEquals = this.here();
      this.skipBlank();
      const valueAt = this.here();
      const value = this.parseValue(name, afterEquals, depth);
      const afterValue = this.here();

      const attribute: JdlAttribute = {
        name,
        value,
        line: at.line,
        column: at.column,
        valueLine: valueAt.line,
        valueColumn: valueAt.column,
      };
      attributes.push(attribute);
      seen.set(name, attribute);

      this.skipBlank();
      const next = this.peek();
      if (next === ';') {
        this.advance();
      } else if (next === undefined && !open) {
        break;
      } else if (next !== undefined && NAME_START.test(next)) {
        this.fail(`missing ';' after the value of ${name}`, afterValue);
      } else if (next !== ']' && next !== undefined) {
        this.fail(`unexpected ${this.describeChar()} after the value of ${name}`);
      }
      // `]` or the end of the text inside `[`: handled at the top of the loop
    }
    return { attributes };
  }

  /** One value, at its first character. `afterEquals` locates an empty value. */
  private parseValue(name: string, afterEquals: Position, depth: number): JdlValue {
    const c = this.peek();
    if (c === undefined || c === ';' || c === ']' || c === '}') {
      this.fail(`empty value for ${name}`, afterEquals);
    }
    return this.parseLiteral(depth);
  }

  private parseLiteral(depth: number): JdlValue {
    const c = this.peek();
    if (c === '"') return this.readString();
    if (c === '{') return this.parseList(depth);
    if (c === '[') return this.parseAd(depth);
    if (c !== undefined && /[0-9+\-.]/.test(c)) return this.readNumber();
    if (c !== undefined && /[A-Za-z_]/.test(c)) {
      const at = this.here();
      const word = this.match(WORD) ?? '';
      const lower = word.toLowerCase();
      if (lower === 'true' || lower === 'false') {
        this.skip(word.length);
        return lower === 'true';
      }
      this.fail(`unquoted text ${word}: write text values in double quotes, e.g. "${word}"`, at);
    }
    this.fail(`unexpected ${this.describeChar()}`);
  }

  /** `{ v, v, ... }`, at the `{`. */
  private parseList(depth: number): JdlValue[] {
    if (depth + 1 > MAX_DEPTH) this.fail(`nested more than ${MAX_DEPTH} levels deep`);
    const open = this.here();
    this.advance();
    const items: JdlValue[] = [];
    this.skipBlank();
    if (this.peek() === '}') {
      this.advance();
      return items;
    }
    for (;;) {
      this.skipBlank();
      const c = this.peek();
      if (c === ',')
        this.fail("empty element in list (two ',' in a row, or a ',' right after '{')");
      if (c === undefined || c === ';' || c === ']') this.fail("unclosed '{': missing '}'", open);
      items.push(this.parseLiteral(depth + 1));
      const afterItem = this.here();
      this.skipBlank();
      const next = this.peek();
      if (next === '}') {
        this.advance();
        return items;
      }
      if (next === ',') {
        const comma = this.here();
        this.advance();
        this.skipBlank();
        if (this.peek() === '}') this.fail("trailing ',' before the closing '}'", comma);
        continue;
      }
      if (next !== undefined && this.startsValue()) {
        this.fail("missing ',' between list elements", afterItem);
      }
      this.fail("unclosed '{': missing '}'", open);
    }
  }

  /** Whether the text here looks like the start of a list element (for "missing ','"). */
  private startsValue(): boolean {
    const c = this.peek();
    if (c === undefined) return false;
    if (/["{[0-9+\-.]/.test(c)) return true;
    const word = this.match(WORD);
    return word !== undefined && /^(true|false)$/i.test(word);
  }

  private readString(): string {
    const open = this.here();
    this.advance();
    let out = '';
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === '\n' || c === '\r') {
        this.fail('unclosed string: missing closing "', open);
      }
      this.advance();
      if (c === '"') return out;
      if (c === '\\') {
        const escaped = this.peek();
        if (escaped === '"' || escaped === '\\') {
          this.advance();
          out += escaped;
          continue;
        }
        // any other backslash is kept as written (regular expressions, Windows paths)
      }
      out += c;
    }
  }

  private readNumber(): number {
    const at = this.here();
    const raw = this.match(NUMBER);
    if (raw === undefined) this.fail(`unexpected ${this.describeChar()}`);
    const after = this.text[this.pos + raw.length];
    if (after !== undefined && NAME_CHAR.test(after)) {
      const bad = this.match(/[+\-A-Za-z0-9_.]+/y) ?? raw;
      this.fail(`invalid number ${bad}`, at);
    }
    this.skip(raw.length);
    return Number(raw);
  }

  private readName(): string {
    const start = this.pos;
    while (this.pos < this.text.length && NAME_CHAR.test(this.text[this.pos] as string)) {
      this.advance();
    }
    return this.text.slice(start, this.pos);
  }

  /** Skips whitespace and full-line comments. */
  private skipBlank(): void {
    for (;;) {
      const c = this.peek();
      if (c === undefined) return;
      if (WHITESPACE.has(c)) {
        this.advance();
        continue;
      }
      const isComment = c === '#' || (c === '/' && this.text[this.pos + 1] === '/');
      if (isComment && this.text.slice(this.lineStart, this.pos).trim() === '') {
        while (this.peek() !== undefined && this.peek() !== '\n') this.advance();
        continue;
      }
      if (isComment) {
        const mark = c === '#' ? '#' : '//';
        this.fail(`unexpected '${mark}': comments must take a whole line, starting with '${mark}'`);
      }
      return;
    }
  }

  private match(re: RegExp): string | undefined {
    re.lastIndex = this.pos;
    return re.exec(this.text)?.[0];
  }

  private peek(): string | undefined {
    return this.text[this.pos];
  }

  private atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  private advance(): void {
    const c = this.text[this.pos];
    this.pos += 1;
    if (c === '\n') {
      this.line += 1;
      this.column = 1;
      this.lineStart = this.pos;
    } else {
      this.column += 1;
    }
  }

  private skip(n: number): void {
    for (let i = 0; i < n; i += 1) this.advance();
  }

  private here(): Position {
    return { line: this.line, column: this.column };
  }

  private describeChar(): string {
    const c = this.peek();
    return c === undefined ? 'end of text' : `character '${c}'`;
  }

  private fail(message: string, at: Position = this.here()): never {
    throw jdlError('WMS_JDL_SYNTAX', [{ message, line: at.line, column: at.column }]);
  }
}

/**
 * Parses a JDL text into an ad. Throws `WmsError` `WMS_JDL_SYNTAX` (details: one problem with
 * line and column) on the first syntax error, and never anything else.
 */
export function parseJdl(text: string): JdlAd {
  return new Parser(text).parseDocument();
}

/**
 * Writes an ad as canonical JDL text: `[`, one `Name = value;` per line indented by two spaces,
 * `]`. `parseJdl(serializeJdl(ad))` gives back the same names and values.
 *
 * Throws `WmsError` `WMS_JDL_INVALID` for what JDL text cannot hold: a line break inside a
 * string, or a number that is not finite (neither can come out of `parseJdl`).
 */
export function serializeJdl(ad: JdlAd): string {
  return writeAd(ad, '');
}

function writeAd(ad: JdlAd, indent: string): string {
  if (ad.attributes.length === 0) return '[]';
  const inner = `${indent}  `;
  const lines = ad.attributes.map(
    (a) => `${inner}${a.name} = ${writeValue(a.value, inner, a.name)};`,
  );
  return `[\n${lines.join('\n')}\n${indent}]`;
}

function writeValue(value: JdlValue, indent: string, name: string): string {
  if (typeof value === 'string') {
    if (/[\r\n]/.test(value)) unwritable(name, 'a line break inside a string');
    return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) unwritable(name, `the number ${value}`);
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) {
    if (value.length === 0) return '{}';
    return `{ ${value.map((v) => writeValue(v, indent, name)).join(', ')} }`;
  }
  return writeAd(value, indent);
}

function unwritable(name: string, what: string): never {
  throw jdlError('WMS_JDL_INVALID', [
    {
      message: `${name} holds ${what}, which JDL text cannot represent`,
      line: 1,
      column: 1,
      attribute: name,
    },
  ]);
}
