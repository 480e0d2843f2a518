/**
 * The JDL parser: DIRAC's subset of ClassAds, where every value is a literal.
 *
 * ```
 * [
 *   # a full-line comment
 *   Executable = "run.sh";            // strings in double quotes, \" and \\ escaped
 *   JobName = my_job;                 // or unquoted: a bare word (below)
 *   CPUTime = 3600;                   // integers and floats (-1, 0.5, 1e3)
 *   WholeNode = true;                 // booleans, case-insensitive
 *   InputSandbox = { "a", b.txt };    // lists, possibly empty or nested
 *   JobRequirements = [ Owner = "alice"; ];   // nested ads
 * ]
 * ```
 *
 * The surrounding `[ ]` is optional (DIRAC's job API writes none) and the `;` after the last
 * attribute too. Comments take a whole line (`#` or `//` as its first non-blank characters;
 * DIRAC's WMSClient drops `#` lines before it submits, its parser knows none); there are no
 * inline comments, so the trailing `//` notes above are only for this page.
 * Attribute names are case-sensitive, as in DIRAC, and start with a letter; `.` is allowed
 * inside them (`Parameters.x`).
 *
 * **Bare words.** DIRAC reads a value as the text between `=` and `;`, so its job API writes
 * values unquoted (`JobName = myjob;`, `Site = LCG.CERN.ch;`, `InputSandbox = { job.xml,
 * /home/u/run.sh };`, `InputData = %(InputData)s;`). A bare word is a run of non-blank
 * characters other than `; , { } [ ] "`; it may hold `=` but not start with one (DIRAC's API
 * writes `ExecutionEnvironment = { MYVAR=3 }`; a value starting with `=` is a typo such as
 * `A == 3`), and it cannot start with `#` or `//` (an inline comment). It reads as a boolean
 * when it is `true` or `false` in any case, as a number when it is entirely one (`3600`,
 * `-2.5e3`, `.5`), else as a string (`dirac-jobexec`, `LFN:/vo/x`, `%(x)s`, `1abc`, `0x10`).
 * A number too large for a double (`1e400`) is refused. A bare word must be the whole value:
 * `JobName = my job;` is refused with the quoted form to write instead (DIRAC would read
 * `my job`; we do not guess where an unquoted value with blanks ends).
 *
 * Every attribute read from text records `source`, the exact text of its value (a string with
 * its quotes), so a reader can tell `3600.0` or `1e3` from `3600`; `spellingOf` gives the
 * spelling of each element of a list value. `serializeJdl` writes canonical text: strings
 * always quoted, numbers as they were written when `source` still spells the value.
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
  /**
   * The exact text of the value as written (`3600.0`, `"a b"` with its quotes, a list over
   * several lines); absent when the attribute was made in code.
   */
  source?: string;
}

/** A ClassAd: attributes in the order they were written. Names are unique. */
export interface JdlAd {
  attributes: JdlAttribute[];
}

/**
 * How a value was written: the exact text of a scalar or of an ad (`1.0`, `"x"`, `x`), or for
 * a list the spelling of each element.
 */
export type JdlSpelling = string | JdlSpelling[];

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
 * it still point into the user's text), else 0. It has no `source`.
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
/**
 * A bare word: characters other than blanks (those of `WHITESPACE`) and ; , { } [ ] " (see the
 * top of the file).
 */
const BARE_WORD = /[^ \t\r\n\f\v\uFEFF;,{}[\]"]+/y;
const BARE_START = /[^ \t\r\n\f\v\uFEFF;,{}[\]"=]/;
/** A bare word that is entirely a number. */
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const BOOLEAN = /^(?:true|false)$/i;
const WHITESPACE = new Set([' ', '\t', '\r', '\n', '\f', '\v', '\uFEFF']);

/**
 * What a bare word reads as: a boolean (`true`/`false`, any case), a number when the word is
 * entirely one, else the word as a string. A number too large for a double stays a string here
 * (`parseJdl` refuses it in a JDL text).
 */
export function bareWordValue(word: string): string | number | boolean {
  if (BOOLEAN.test(word)) return word.toLowerCase() === 'true';
  if (NUMBER.test(word)) {
    const n = Number(word);
    if (Number.isFinite(n)) return n;
  }
  return word;
}

/** True when `text` can be written unquoted and reads back as the same string. */
export function isBareString(text: string): boolean {
  BARE_WORD.lastIndex = 0;
  const word = BARE_WORD.exec(text)?.[0];
  return (
    word === text && BARE_START.test(text) && !text.startsWith('#') && !text.startsWith('//') && typeof bareWordValue(text) === 'string'
  );
}

/** At most `max` characters of `text` for a message, `...` standing for the rest. */
export function shorten(text: string, max = 80): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

/** `text` in double quotes, with `"` and `\` escaped. */
export function quoteString(text: string): string {
  if (!text.includes('"') && !text.includes('\\')) return `"${text}"`;
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

interface Position {
  line: number;
  column: number;
}

/** Where a bare word stands: the value of an attribute, or an element of a list. */
interface BareContext {
  name: string;
  inList: boolean;
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

  /** The spelling of the one value that makes up the text (a `source`). */
  spellValue(): JdlSpelling {
    this.skipBlank();
    if (this.peek() !== '{') return this.text.trim();
    const spellings: JdlSpelling[] = [];
    this.parseList(0, '', spellings);
    return spellings;
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
        this.fail(`duplicate attribute ${shorten(name)} (already set at line ${previous.line})`, at);
      }
      const afterName = this.here();
      this.skipBlank();
      if (this.peek() !== '=') {
        this.fail(`missing '=' after the attribute name ${shorten(name)}`, afterName);
      }
      this.advance();
      const afterEquals = this.here();
      this.skipBlank();
      const valueAt = this.here();
      const valueStart = this.pos;
      const value = this.parseValue(name, afterEquals, depth);
      const afterValue = this.here();

      const attribute: JdlAttribute = {
        name,
        value,
        line: at.line,
        column: at.column,
        valueLine: valueAt.line,
        valueColumn: valueAt.column,
        source: this.text.slice(valueStart, this.pos),
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
        this.fail(`missing ';' after the value of ${shorten(name)}`, afterValue);
      } else if (next !== ']' && next !== undefined) {
        this.fail(`unexpected ${this.describeChar()} after the value of ${shorten(name)}`);
      }
      // `]` or the end of the text inside `[`: handled at the top of the loop
    }
    return { attributes };
  }

  /** One value, at its first character. `afterEquals` locates an empty value. */
  private parseValue(name: string, afterEquals: Position, depth: number): JdlValue {
    const c = this.peek();
    if (c === undefined || c === ';' || c === ']' || c === '}') {
      this.fail(`empty value for ${shorten(name)}`, afterEquals);
    }
    return this.parseLiteral(depth, { name, inList: false });
  }

  private parseLiteral(depth: number, context: BareContext): JdlValue {
    const c = this.peek();
    if (c === '"') return this.readString();
    if (c === '{') return this.parseList(depth, context.name);
    if (c === '[') return this.parseAd(depth);
    if (c !== undefined && BARE_START.test(c)) return this.readBareWord(context);
    if (c === '=') this.fail("unexpected '=': a value cannot start with '='");
    this.fail(`unexpected ${this.describeChar()}`);
  }

  /**
   * `{ v, v, ... }`, at the `{`. With `spellings`, also records how each element was written
   * (a nested list as its own array).
   */
  private parseList(depth: number, name: string, spellings?: JdlSpelling[]): JdlValue[] {
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
      if (c === ',') this.fail("empty element in list (two ',' in a row, or a ',' right after '{')");
      if (c === undefined || c === ';' || c === ']') this.fail("unclosed '{': missing '}'", open);
      const start = this.pos;
      if (spellings && c === '{') {
        const inner: JdlSpelling[] = [];
        items.push(this.parseList(depth + 1, name, inner));
        spellings.push(inner);
      } else {
        items.push(this.parseLiteral(depth + 1, { name, inList: true }));
        spellings?.push(this.text.slice(start, this.pos));
      }
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
    return c !== undefined && (c === '"' || c === '{' || c === '[' || BARE_START.test(c));
  }

  /**
   * A bare word, at its first character. It must be the whole value (or list element): what
   * follows it on the same line must end it (`;`, `,`, `}`, `]`, an inline comment, which
   * `skipBlank` refuses on its own). Else the value is refused with its quoted form.
   */
  private readBareWord(context: BareContext): string | number | boolean {
    const at = this.here();
    const word = this.match(BARE_WORD) ?? '';
    const start = this.pos;
    let after = start + word.length;
    while (after < this.text.length && ' \t\f\v\uFEFF'.includes(this.text[after] as string)) {
      after += 1;
    }
    const next = this.text[after];
    const ends = next === undefined || '\r\n;,}]#'.includes(next) || (next === '/' && this.text[after + 1] === '/');
    if (!ends) {
      const stop = context.inList ? /[,}\r\n]/g : /[;\r\n]/g;
      stop.lastIndex = after;
      const end = stop.exec(this.text)?.index ?? this.text.length;
      const whole = shorten(this.text.slice(start, end).trimEnd());
      const quoted = context.inList ? quoteString(whole) : `${shorten(context.name)} = ${quoteString(whole)};`;
      const blank = after > start + word.length;
      this.fail(
        blank
          ? `unquoted value with blanks: write it in double quotes, ${quoted}`
          : `unexpected character '${next}' after the unquoted value ${shorten(word)}: write the whole value in double quotes, ${quoted}`,
        at,
      );
    }
    const value = bareWordValue(word);
    if (typeof value === 'string' && NUMBER.test(word)) {
      this.fail(`the number ${shorten(word)} is too large: write it in double quotes if it is text`, at);
    }
    this.skip(word.length);
    return value;
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
        this.fail(
          `unexpected '${mark}': comments must take a whole line, starting with '${mark}' (a value that starts with '${mark}' must be in double quotes)`,
        );
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
 * How the attribute's value was written (from its `source`): the text of a scalar or ad, or the
 * spellings of a list's elements. Undefined for an attribute made in code.
 */
export function spellingOf(attribute: JdlAttribute): JdlSpelling | undefined {
  if (attribute.source === undefined) return undefined;
  try {
    return new Parser(attribute.source).spellValue();
  } catch {
    return undefined; // a source edited by hand into something that no longer parses
  }
}

/**
 * Writes an ad as canonical JDL text: `[`, one `Name = value;` per line indented by two spaces,
 * `]`. Strings are always quoted; a number attribute is written as it was read (`3600.0`, `1e3`)
 * while its `source` still spells its value. `parseJdl(serializeJdl(ad))` gives back the same
 * names and values.
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
  const lines = ad.attributes.map((a) => {
    const spelled =
      typeof a.value === 'number' && a.source !== undefined && NUMBER.test(a.source) && Number(a.source) === a.value ? a.source : undefined;
    return `${inner}${a.name} = ${spelled ?? writeValue(a.value, inner, a.name)};`;
  });
  return `[\n${lines.join('\n')}\n${indent}]`;
}

function writeValue(value: JdlValue, indent: string, name: string): string {
  if (typeof value === 'string') {
    if (/[\r\n]/.test(value)) unwritable(name, 'a line break inside a string');
    return quoteString(value);
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
