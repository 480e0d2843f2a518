import { describe, expect, it } from 'vitest';
import { isWmsError, type JdlProblem } from '../../core/errors.js';
import {
  getAttribute,
  isJdlAd,
  makeAttribute,
  parseJdl,
  serializeJdl,
  type JdlAd,
  type JdlValue,
} from '../../core/jdl/index.js';

/** Names and values only (positions dropped), for comparing ads. */
function plain(ad: JdlAd): Record<string, unknown> {
  const value = (v: JdlValue): unknown =>
    Array.isArray(v) ? v.map(value) : isJdlAd(v) ? plain(v) : v;
  return Object.fromEntries(ad.attributes.map((a) => [a.name, value(a.value)]));
}

/** The single problem of the syntax error that `text` must raise. */
function syntaxProblem(text: string): JdlProblem {
  try {
    parseJdl(text);
  } catch (e) {
    expect(isWmsError(e)).toBe(true);
    if (!isWmsError(e)) throw e;
    expect(e.code).toBe('WMS_JDL_SYNTAX');
    const problems = (e.details as { problems: JdlProblem[] }).problems;
    expect(problems).toHaveLength(1);
    return problems[0] as JdlProblem;
  }
  throw new Error(`no syntax error for ${JSON.stringify(text)}`);
}

describe('parseJdl: values', () => {
  it('reads the reference example with brackets', () => {
    const ad = parseJdl(`[
  Executable = "my_script.sh";
  Arguments = "-n 10";
  InputSandbox = { "my_script.sh", "LFN:/vo/user/a/alice/input.tgz" };
  CPUTime = 36000;
  Site = { "LCG.CERN.cern", "LCG.RAL.uk" };
  NumberOfProcessors = 4;
]`);
    expect(plain(ad)).toEqual({
      Executable: 'my_script.sh',
      Arguments: '-n 10',
      InputSandbox: ['my_script.sh', 'LFN:/vo/user/a/alice/input.tgz'],
      CPUTime: 36000,
      Site: ['LCG.CERN.cern', 'LCG.RAL.uk'],
      NumberOfProcessors: 4,
    });
    expect(ad.attributes.map((a) => a.name)).toEqual([
      'Executable',
      'Arguments',
      'InputSandbox',
      'CPUTime',
      'Site',
      'NumberOfProcessors',
    ]);
  });

  it('records 1-based positions of names and values', () => {
    const ad = parseJdl('[\n  Executable = "a";\n    CPUTime =\n 10;\n]');
    expect(getAttribute(ad, 'Executable')).toEqual({
      name: 'Executable',
      value: 'a',
      line: 2,
      column: 3,
      valueLine: 2,
      valueColumn: 16,
    });
    const cpu = getAttribute(ad, 'CPUTime');
    expect([cpu?.line, cpu?.column, cpu?.valueLine, cpu?.valueColumn]).toEqual([3, 5, 4, 2]);
  });

  it('accepts a body without brackets and without the last ;', () => {
    expect(plain(parseJdl('Executable = "a"; Arguments = "b"'))).toEqual({
      Executable: 'a',
      Arguments: 'b',
    });
    expect(plain(parseJdl('[ Executable = "a"; Arguments = "b" ]'))).toEqual({
      Executable: 'a',
      Arguments: 'b',
    });
  });

  it('reads numbers: negative, fractional, exponent', () => {
    expect(plain(parseJdl('A = -1; B = 0.5; C = 1e3; D = -2.5E-1; E = 0; F = +7;'))).toEqual({
      A: -1,
      B: 0.5,
      C: 1000,
      D: -0.25,
      E: 0,
      F: 7,
    });
  });

  it('reads booleans in any case', () => {
    expect(plain(parseJdl('A = true; B = FALSE; C = True;'))).toEqual({
      A: true,
      B: false,
      C: true,
    });
  });

  it('reads lists: empty, mixed, nested', () => {
    expect(plain(parseJdl('A = {}; B = { }; C = { 1, "x", 2.5 }; D = { { "a" }, {} };'))).toEqual({
      A: [],
      B: [],
      C: [1, 'x', 2.5],
      D: [['a'], []],
    });
  });

  it('reads nested ads', () => {
    const ad = parseJdl(`[
  Executable = "a";
  JobRequirements = [ Owner = "alice"; Sites = { "S1", "S2" }; Inner = [ X = 1 ] ];
]`);
    expect(plain(ad)).toEqual({
      Executable: 'a',
      JobRequirements: { Owner: 'alice', Sites: ['S1', 'S2'], Inner: { X: 1 } },
    });
    const req = getAttribute(ad, 'JobRequirements')?.value as JdlAd;
    expect(getAttribute(req, 'Sites')).toMatchObject({ line: 3, column: 40 });
  });

  it('unescapes \\" and \\\\ and keeps other backslashes', () => {
    const ad = parseJdl(String.raw`A = "say \"hi\" \\ end"; B = "\d+\.txt";`);
    expect(plain(ad)).toEqual({ A: 'say "hi" \\ end', B: String.raw`\d+\.txt` });
  });

  it('lets quotes protect ; = [ ] { } #', () => {
    const ad = parseJdl('[ Arguments = "a; b = [c] {d} # e // f"; X = "]"; ]');
    expect(plain(ad)).toEqual({ Arguments: 'a; b = [c] {d} # e // f', X: ']' });
  });

  it('skips full-line # and // comments, also indented and inside lists', () => {
    const ad = parseJdl(`# leading comment
[
  # Executable = "commented.sh";
  Executable = "a";   
    // another
  InputSandbox = {
    "x",
    # "skipped",
    "y"
  };
]
# trailing comment`);
    expect(plain(ad)).toEqual({ Executable: 'a', InputSandbox: ['x', 'y'] });
  });

  it('accepts names with digits, _ and .', () => {
    expect(plain(parseJdl('Parameters.x_1 = 3; A2 = 1;'))).toEqual({ 'Parameters.x_1': 3, A2: 1 });
  });

  it('matches attribute names case-sensitively', () => {
    const ad = parseJdl('Executable = "a"; executable = "b";');
    expect(getAttribute(ad, 'Executable')?.value).toBe('a');
    expect(getAttribute(ad, 'executable')?.value).toBe('b');
    expect(getAttribute(ad, 'EXECUTABLE')).toBeUndefined();
  });

  it('parses empty texts to an empty ad', () => {
    expect(parseJdl('').attributes).toEqual([]);
    expect(parseJdl('  [ ]  ').attributes).toEqual([]);
    expect(parseJdl('# only a comment\n').attributes).toEqual([]);
  });

  it('handles CRLF line ends', () => {
    const ad = parseJdl('[\r\n  A = 1;\r\n  B = "x";\r\n]\r\n');
    expect(plain(ad)).toEqual({ A: 1, B: 'x' });
    expect(getAttribute(ad, 'B')).toMatchObject({ line: 3, column: 3 });
  });
});

describe('parseJdl: syntax errors with their positions', () => {
  const cases: Array<[string, string, number, number, string]> = [
    [
      'unclosed string',
      '[\n  Executable = "run.sh;\n]',
      2,
      16,
      'unclosed string: missing closing "',
    ],
    ['unclosed string at the end', 'A = "x', 1, 5, 'unclosed string: missing closing "'],
    [
      'missing ; between attributes',
      '[\n  Executable = "a"\n  Arguments = "b";\n]',
      2,
      19,
      "missing ';' after the value of Executable",
    ],
    ['missing ; without brackets', 'A = 1\nB = 2', 1, 6, "missing ';' after the value of A"],
    [
      'missing =',
      '[\n  Executable "a";\n]',
      2,
      13,
      "missing '=' after the attribute name Executable",
    ],
    [
      'missing = at the end',
      'Executable',
      1,
      11,
      "missing '=' after the attribute name Executable",
    ],
    ['unclosed {', 'A = { "a", "b";\nB = 1;', 1, 5, "unclosed '{': missing '}'"],
    ['unclosed { at the end', 'A = {\n "a"', 1, 5, "unclosed '{': missing '}'"],
    ['missing comma', 'A = { "a" "b" };', 1, 10, "missing ',' between list elements"],
    ['missing comma between numbers', 'A = { 1\n 2 };', 1, 8, "missing ',' between list elements"],
    ['trailing comma', 'A = { "a", "b", };', 1, 15, "trailing ',' before the closing '}'"],
    ['empty element', 'A = { "a", , "b" };', 1, 12, 'empty element in list'],
    ['empty first element', 'A = { , "b" };', 1, 7, 'empty element in list'],
    ['unclosed [', '[\n  A = 1;\n', 1, 1, "unclosed '[': missing ']'"],
    ['unclosed nested [', '[ A = [ B = 1; ; ]', 1, 1, "unclosed '[': missing ']'"],
    ['unclosed nested [ inside', 'A = [ B = 1;', 1, 5, "unclosed '[': missing ']'"],
    ['unexpected character in a value', 'A = @;', 1, 5, "unexpected character '@'"],
    [
      'unexpected character after a value',
      'A = 1 ) ;',
      1,
      7,
      "unexpected character ')' after the value of A",
    ],
    ['unexpected ]', 'A = 1; ]', 1, 8, "unexpected ']' without a matching '['"],
    [
      'text after the closing ]',
      '[ A = 1; ] B = 2;',
      1,
      12,
      "unexpected character 'B' after the closing ']'",
    ],
    ['name starting with a digit', '1A = 2;', 1, 1, 'an attribute name must start with a letter'],
    ['empty value', 'Executable = ;', 1, 13, 'empty value for Executable'],
    ['empty value at the end', '[ A = ]', 1, 6, 'empty value for A'],
    [
      'duplicate attribute',
      'A = 1;\n  A = 2;',
      2,
      3,
      'duplicate attribute A (already set at line 1)',
    ],
    [
      'unquoted text',
      'Executable = run.sh;',
      1,
      14,
      'unquoted text run.sh: write text values in double quotes',
    ],
    ['invalid number', 'CPUTime = 12abc;', 1, 11, 'invalid number 12abc'],
    ['inline comment', 'A = 1; # note', 1, 8, "unexpected '#': comments must take a whole line"],
    ['inline // comment', 'A = 1;\nB = 2; // note', 2, 8, "unexpected '//': comments must take"],
  ];
  it.each(cases)('%s', (_label, text, line, column, message) => {
    const p = syntaxProblem(text);
    expect(p.message).toContain(message);
    expect([p.line, p.column]).toEqual([line, column]);
  });

  it('says where in the error message', () => {
    try {
      parseJdl('[\n  Executable = "a"\n  Arguments = "b";\n]');
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toBe(
        "missing ';' after the value of Executable at line 2, column 19",
      );
    }
  });

  it('throws only WmsError, even on deep nesting', () => {
    const p = syntaxProblem(`A = ${'{'.repeat(100_000)}`);
    expect(p.message).toContain('nested more than 64 levels deep');
    expect(syntaxProblem('A = ['.repeat(100_000)).message).toContain('nested more than 64 levels');
  });
});

describe('serializeJdl', () => {
  it('writes the canonical form', () => {
    const ad = parseJdl(
      'Executable="a";InputSandbox={"x","y"};Empty={};N=-1.5;B=TRUE;Req=[Owner="alice";Sites={"S"}];',
    );
    expect(serializeJdl(ad)).toBe(`[
  Executable = "a";
  InputSandbox = { "x", "y" };
  Empty = {};
  N = -1.5;
  B = true;
  Req = [
    Owner = "alice";
    Sites = { "S" };
  ];
]`);
  });

  it('escapes quotes and backslashes', () => {
    const ad: JdlAd = { attributes: [makeAttribute('A', 'say "hi" \\ \\d')] };
    expect(serializeJdl(ad)).toBe('[\n  A = "say \\"hi\\" \\\\ \\\\d";\n]');
  });

  it('round-trips every kind of value', () => {
    const text = `# comment
[
  Executable = "run \\"me\\".sh";
  Arguments = "a; b = [c] {d} # e";
  Numbers = { 1, -2, 0.25, 1e21, 3e-7 };
  Flags = { true, false };
  Nested = { { "a", { "b" } }, {} };
  Regex = "\\d+\\.txt";
  Empty = {};
  Sub = [ A = 1; B = [ C = "x"; D = {} ]; ];
  EmptySub = [];
  Hash = "#";
]`;
    const once = parseJdl(text);
    const written = serializeJdl(once);
    const twice = parseJdl(written);
    expect(plain(twice)).toEqual(plain(once));
    expect(serializeJdl(twice)).toBe(written);
  });

  it('writes an empty ad as []', () => {
    expect(serializeJdl({ attributes: [] })).toBe('[]');
    expect(parseJdl(serializeJdl({ attributes: [] })).attributes).toEqual([]);
  });

  it('refuses what JDL text cannot hold', () => {
    const bad = (value: JdlValue) => () =>
      serializeJdl({ attributes: [makeAttribute('A', value)] });
    expect(bad('line\nbreak')).toThrow(/line break/);
    expect(bad(Number.NaN)).toThrow(/NaN/);
  });
});
