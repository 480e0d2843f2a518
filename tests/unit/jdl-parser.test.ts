import { describe, expect, it } from 'vitest';
import { isWmsError, type JdlProblem } from '../../core/errors.js';
import { getAttribute, isJdlAd, makeAttribute, parseJdl, serializeJdl, type JdlAd, type JdlValue } from '../../core/jdl/index.js';
import { bareWordValue, spellingOf } from '../../core/jdl/parser.js';

/** Names and values only (positions dropped), for comparing ads. */
function plain(ad: JdlAd): Record<string, unknown> {
  const value = (v: JdlValue): unknown => (Array.isArray(v) ? v.map(value) : isJdlAd(v) ? plain(v) : v);
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
    expect(ad.attributes.map((a) => a.name)).toEqual(['Executable', 'Arguments', 'InputSandbox', 'CPUTime', 'Site', 'NumberOfProcessors']);
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
      source: '"a"',
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

describe("parseJdl: bare words (what DIRAC's job API writes)", () => {
  // The text Job._toJDL returns (src/DIRAC/Interfaces/API/Job.py) for a job with setName,
  // setExecutable, setInputSandbox, setDestination, setCPUTime, setLogLevel, setTag,
  // setExecutionEnv and setParameterSequence: ClassAd.asJDL without its [ ], values written by
  // insertAttributeInt (unquoted) and lists broken over lines at every comma.
  const API = ` 
    Arguments = "jobDescription.xml -o LogLevel=DEBUG -p JOB_ID=%(JOB_ID)s";
    CPUTime = 86400;
    ExecutionEnvironment = 
        {
            MYVAR=3,
            OTHER=x
        };
    Executable = dirac-jobexec;
    InputData = %(InputData)s;
    InputSandbox = 
        {
            /home/u/run.sh,
            LFN:/vo/user/u/lib.tgz
        };
    JobGroup = vo;
    JobName = my-job_%n;
    JobType = User;
    LogLevel = DEBUG;
    OutputSandbox = 
        {
            std.err,
            std.out
        };
    Parameters = 2;
    Parameters.InputData = 
        {
            {/vo/a,
            /vo/b},
            {/vo/c}
        };
    Parameters.JOB_ID = 
        {
            1,
            02
        };
    Priority = 1;
    Site = LCG.CERN.ch;
    StdError = std.err;
    StdOutput = std.out;
    Tags = 
        {
            GPU,
            8Processors
        }`;

  it("reads the text DIRAC's job API writes, without [ ]", () => {
    expect(plain(parseJdl(API))).toEqual({
      Arguments: 'jobDescription.xml -o LogLevel=DEBUG -p JOB_ID=%(JOB_ID)s',
      CPUTime: 86400,
      ExecutionEnvironment: ['MYVAR=3', 'OTHER=x'],
      Executable: 'dirac-jobexec',
      InputData: '%(InputData)s',
      InputSandbox: ['/home/u/run.sh', 'LFN:/vo/user/u/lib.tgz'],
      JobGroup: 'vo',
      JobName: 'my-job_%n',
      JobType: 'User',
      LogLevel: 'DEBUG',
      OutputSandbox: ['std.err', 'std.out'],
      Parameters: 2,
      'Parameters.InputData': [['/vo/a', '/vo/b'], ['/vo/c']],
      'Parameters.JOB_ID': [1, 2],
      Priority: 1,
      Site: 'LCG.CERN.ch',
      StdError: 'std.err',
      StdOutput: 'std.out',
      Tags: ['GPU', '8Processors'],
    });
  });

  it('reads the same text inside [ ], as DIRAC submits it', () => {
    expect(plain(parseJdl(`[${API}\n]`))).toEqual(plain(parseJdl(API)));
  });

  it.each([
    ['myjob', 'myjob'],
    ['dirac-jobexec', 'dirac-jobexec'],
    ['LFN:/vo/x', 'LFN:/vo/x'],
    ['%(x)s', '%(x)s'],
    ['1abc', '1abc'],
    ['0x10', '0x10'],
    ['Infinity', 'Infinity'],
    ['-', '-'],
    ['a=b', 'a=b'],
    ['x#y', 'x#y'],
    ['http://h/p', 'http://h/p'],
    ["it's", "it's"],
    ['true', true],
    ['FALSE', false],
    ['TrUe', true],
    ['3600', 3600],
    ['3600.0', 3600],
    ['-2.5e3', -2500],
    ['.5', 0.5],
    ['+7', 7],
    ['1.', 1],
    ['02', 2],
  ])('reads the bare word %s as %j', (word, expected) => {
    expect(getAttribute(parseJdl(`A = ${word};`), 'A')?.value).toBe(expected);
    expect(bareWordValue(word)).toBe(expected);
  });

  it('keeps the exact text of every value in source', () => {
    const ad = parseJdl('A = 3600.0; B = 1e3; C = "x \\" y"; D = {\n  1.0,\n  b\n}; E = [ F = 02 ];\nG = TRUE');
    expect(ad.attributes.map((a) => a.source)).toEqual(['3600.0', '1e3', '"x \\" y"', '{\n  1.0,\n  b\n}', '[ F = 02 ]', 'TRUE']);
    const e = getAttribute(ad, 'E')?.value as JdlAd;
    expect(getAttribute(e, 'F')?.source).toBe('02');
    expect(makeAttribute('X', 1).source).toBeUndefined();
  });

  it('gives the spelling of each element of a list', () => {
    const ad = parseJdl('A = { 1.0, "1.0", b, { 02, "c" }, {} }; B = 1.50; C = { [ X = 1 ] };');
    expect(spellingOf(getAttribute(ad, 'A')!)).toEqual(['1.0', '"1.0"', 'b', ['02', '"c"'], []]);
    expect(spellingOf(getAttribute(ad, 'B')!)).toBe('1.50');
    expect(spellingOf(getAttribute(ad, 'C')!)).toEqual(['[ X = 1 ]']);
    expect(spellingOf(makeAttribute('D', 1))).toBeUndefined();
  });

  it('ends a bare word at ; , } ] and line ends', () => {
    expect(plain(parseJdl('[ A = x; B = { y,z }; C = w ]'))).toEqual({
      A: 'x',
      B: ['y', 'z'],
      C: 'w',
    });
    expect(plain(parseJdl('A = x\t;\r\nB = { y\r\n, z }'))).toEqual({ A: 'x', B: ['y', 'z'] });
  });
});

describe('deliberate differences from DIRAC (core/jdl/README.md)', () => {
  it("difference: full-line # and // comments are skipped (DIRAC's parser has none)", () => {
    const ad = parseJdl('# job\n[\n  // a note\n  Executable = run.sh;\n]');
    expect(plain(ad)).toEqual({ Executable: 'run.sh' });
  });

  it('difference: ; and [ inside a quoted string are text (DIRAC splits or opens an ad there)', () => {
    const ad = parseJdl('[ Arguments = "a; b [c]"; JobName = x ]');
    expect(plain(ad)).toEqual({ Arguments: 'a; b [c]', JobName: 'x' });
  });

  it('difference: \\" is an escaped quote (DIRAC keeps the backslash and drops every ")', () => {
    expect(plain(parseJdl('A = "say \\"hi\\"";'))).toEqual({ A: 'say "hi"' });
  });

  it('difference: an unquoted value with blanks is refused with its quoted form (DIRAC reads the text)', () => {
    for (const [text, message] of [
      ['JobName = my job;', 'write it in double quotes, JobName = "my job";'],
      ['Arguments = -o LogLevel=INFO;', 'write it in double quotes, Arguments = "-o LogLevel=INFO";'],
      ["ExecutionEnvironment = { A=1, B='x y' };", `write it in double quotes, "B='x y'"`],
    ] as const) {
      expect(syntaxProblem(text).message).toContain(message);
    }
  });
});

describe('parseJdl: syntax errors with their positions', () => {
  const cases: Array<[string, string, number, number, string]> = [
    ['unclosed string', '[\n  Executable = "run.sh;\n]', 2, 16, 'unclosed string: missing closing "'],
    ['unclosed string at the end', 'A = "x', 1, 5, 'unclosed string: missing closing "'],
    ['missing ; between attributes', '[\n  Executable = "a"\n  Arguments = "b";\n]', 2, 19, "missing ';' after the value of Executable"],
    ['missing ; without brackets', 'A = 1\nB = 2', 1, 6, "missing ';' after the value of A"],
    ['missing =', '[\n  Executable "a";\n]', 2, 13, "missing '=' after the attribute name Executable"],
    ['missing = at the end', 'Executable', 1, 11, "missing '=' after the attribute name Executable"],
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
    ['unexpected character in a value', 'A = ,;', 1, 5, "unexpected character ','"],
    ['a value starting with =', 'A == 3;', 1, 4, "unexpected '=': a value cannot start with '='"],
    ['unexpected character after a value', 'A = "x" ) ;', 1, 9, "unexpected character ')' after the value of A"],
    ['unexpected ]', 'A = 1; ]', 1, 8, "unexpected ']' without a matching '['"],
    ['text after the closing ]', '[ A = 1; ] B = 2;', 1, 12, "unexpected character 'B' after the closing ']'"],
    ['name starting with a digit', '1A = 2;', 1, 1, 'an attribute name must start with a letter'],
    ['empty value', 'Executable = ;', 1, 13, 'empty value for Executable'],
    ['empty value at the end', '[ A = ]', 1, 6, 'empty value for A'],
    ['duplicate attribute', 'A = 1;\n  A = 2;', 2, 3, 'duplicate attribute A (already set at line 1)'],
    [
      'unquoted value with blanks',
      'JobName = my job;',
      1,
      11,
      'unquoted value with blanks: write it in double quotes, JobName = "my job";',
    ],
    [
      'unquoted arguments',
      '[\n  Arguments = -o LogLevel=INFO;\n]',
      2,
      15,
      'unquoted value with blanks: write it in double quotes, Arguments = "-o LogLevel=INFO";',
    ],
    [
      'unquoted list element with blanks',
      'InputSandbox = {\n  a.txt,\n  my file.txt\n};',
      3,
      3,
      'unquoted value with blanks: write it in double quotes, "my file.txt"',
    ],
    [
      'quote right after a bare word',
      'A = say"hi";',
      1,
      5,
      'unexpected character \'"\' after the unquoted value say: write the whole value in double quotes, A = "say\\"hi\\"";',
    ],
    [
      'brace right after a bare word',
      'A = {x{y}};',
      1,
      6,
      'unexpected character \'{\' after the unquoted value x: write the whole value in double quotes, "x{y"',
    ],
    ['number too large', 'CPUTime = 1e400;', 1, 11, 'the number 1e400 is too large: write it in double quotes if it is text'],
    ['missing ; after a bare word', 'JobName = a\nB = 1;', 1, 12, "missing ';' after the value of JobName"],
    ['missing comma between bare words', 'A = { a\n b };', 1, 8, "missing ',' between list elements"],
    ['inline comment', 'A = 1; # note', 1, 8, "unexpected '#': comments must take a whole line"],
    ['inline comment after a bare word', 'A = x # note', 1, 7, "unexpected '#': comments must take a whole line"],
    ['a value starting with #', 'A = #x;', 1, 5, "(a value that starts with '#' must be in double quotes)"],
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
      expect((e as Error).message).toBe("missing ';' after the value of Executable at line 2, column 19");
    }
  });

  it('keeps messages short when the text is huge', () => {
    const long = 'x'.repeat(100_000);
    for (const text of [`A = ${long} y;`, `A = { ${long}"y" };`, `A = 1${'0'.repeat(500)};`, `${long} 1;`]) {
      expect(syntaxProblem(text).message.length).toBeLessThan(300);
    }
    expect(syntaxProblem(`A = ${long} y;`).message).toContain('A = "xxxxx');
  });

  it('throws only WmsError, even on deep nesting', () => {
    const p = syntaxProblem(`A = ${'{'.repeat(100_000)}`);
    expect(p.message).toContain('nested more than 64 levels deep');
    expect(syntaxProblem('A = ['.repeat(100_000)).message).toContain('nested more than 64 levels');
  });
});

describe('serializeJdl', () => {
  it('writes the canonical form', () => {
    const ad = parseJdl('Executable="a";InputSandbox={"x","y"};Empty={};N=-1.5;B=TRUE;Req=[Owner="alice";Sites={"S"}];');
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

  it('quotes bare strings and writes numbers as they were read', () => {
    const ad = parseJdl('JobName = myjob; CPUTime = 3600.0; N = 1e3; M = 02; L = { 1.0, b }; B = TRUE;');
    const written = serializeJdl(ad);
    expect(written).toBe(`[
  JobName = "myjob";
  CPUTime = 3600.0;
  N = 1e3;
  M = 02;
  L = { 1, "b" };
  B = true;
]`);
    expect(plain(parseJdl(written))).toEqual(plain(ad));
  });

  it('writes a number canonically once its value no longer matches its source', () => {
    const a = { ...getAttribute(parseJdl('CPUTime = 3600.0;'), 'CPUTime')!, value: 7200 };
    expect(serializeJdl({ attributes: [a] })).toBe('[\n  CPUTime = 7200;\n]');
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
    const bad = (value: JdlValue) => () => serializeJdl({ attributes: [makeAttribute('A', value)] });
    expect(bad('line\nbreak')).toThrow(/line break/);
    expect(bad(Number.NaN)).toThrow(/NaN/);
  });
});
