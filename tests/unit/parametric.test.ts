import { describe, expect, it } from 'vitest';
import { isWmsError, type JdlProblem } from '../../core/errors.js';
import {
  expandParametric,
  getAttribute,
  isJdlAd,
  isParametric,
  parseJdl,
  resolvePlaceholders,
  serializeJdl,
  type ExpandedJob,
  type JdlAd,
  type JdlValue,
} from '../../core/jdl/index.js';
import { pythonFloatRepr } from '../../core/jdl/parametric.js';

const LIMITS = { maxParametricJobs: 10_000 };

function expand(text: string, limits = LIMITS): ExpandedJob[] {
  const jobs = expandParametric(parseJdl(text), limits);
  if (jobs === null) throw new Error('not parametric');
  return jobs;
}

function value(ad: JdlAd, name: string): JdlValue | undefined {
  return getAttribute(ad, name)?.value;
}

/** The values of one attribute across the jobs. */
function column(jobs: ExpandedJob[], name: string): (JdlValue | undefined)[] {
  return jobs.map((j) => value(j.ad, name));
}

/** The one problem of the WMS_JDL_PARAMETRIC error that `run` must throw. */
function parametricProblem(run: () => unknown): JdlProblem {
  try {
    run();
  } catch (e) {
    if (!isWmsError(e)) throw e;
    expect(e.code).toBe('WMS_JDL_PARAMETRIC');
    const problems = (e.details as { problems: JdlProblem[] }).problems;
    expect(problems).toHaveLength(1);
    return problems[0] as JdlProblem;
  }
  throw new Error('no error');
}

// DIRAC: src/DIRAC/WorkloadManagementSystem/Utilities/test/Test_ParametricJob.py
const TEST_JDL_NO_PARAMETERS = `
[
    Executable = "my_executable";
    Arguments = "%s";
    JobName = "Test_%n";
]
`;
const TEST_JDL_SIMPLE = `
[
    Executable = "my_executable";
    Arguments = "%s";
    JobName = "Test_%n";
    Parameters = { "a", "b", "c" }
]
`;
const TEST_JDL_SIMPLE_BUNCH = `
[
    Executable = "my_executable";
    Arguments = "%s";
    JobName = "Test_%n";
    Parameters = 3;
    ParameterStart = 5;
]
`;
const TEST_JDL_SIMPLE_PROGRESSION = `
[
    Executable = "my_executable";
    Arguments = "%s";
    JobName = "Test_%n";
    Parameters = 3;
    ParameterStart = 1;
    ParameterStep = 1;
    ParameterFactor = 2;
]
`;
const TEST_JDL_MULTI = `
[
    Executable = "my_executable";
    Arguments = "%(A)s %(B)s";
    JobName = "Test_%n";
    Parameters = 3;
    ParameterStart.A = 1;
    ParameterStep.A = 1;
    ParameterFactor.A = 2;
    Parameters.B = { "a","b","c" };
]
`;
const TEST_JDL_MULTI_BAD = `
[
    Executable = "my_executable";
    Arguments = "%(A)s %(B)s";
    JobName = "Test_%n";
    Parameters = 3;
    ParameterStart.A = 1;
    ParameterStep.A = 1;
    ParameterFactor.A = 2;
    Parameters.B = { "a","b","c","d" };
]
`;

describe("DIRAC's Test_ParametricJob.py cases", () => {
  it.each([
    ['TEST_JDL_SIMPLE', TEST_JDL_SIMPLE, ['a', 'b', 'c']],
    ['TEST_JDL_SIMPLE_BUNCH', TEST_JDL_SIMPLE_BUNCH, ['5', '5', '5']],
    ['TEST_JDL_SIMPLE_PROGRESSION', TEST_JDL_SIMPLE_PROGRESSION, ['1', '3', '7']],
    ['TEST_JDL_MULTI', TEST_JDL_MULTI, ['1 a', '3 b', '7 c']],
  ])('%s gives the documented Arguments and JobName Test_<n>', (_name, jdl, expected) => {
    const jobs = expand(jdl);
    expect(column(jobs, 'Arguments')).toEqual(expected);
    expect(column(jobs, 'JobName')).toEqual(expected.map((_v, i) => `Test_${i}`));
  });

  it('TEST_JDL_NO_PARAMETERS is not parametric and keeps %s and %n as written', () => {
    const ad = parseJdl(TEST_JDL_NO_PARAMETERS);
    expect(isParametric(ad)).toBe(false);
    expect(expandParametric(ad, LIMITS)).toBeNull();
    const plain = resolvePlaceholders(ad);
    expect(value(plain, 'Arguments')).toBe('%s');
    expect(value(plain, 'JobName')).toBe('Test_%n');
  });

  it('TEST_JDL_MULTI_BAD is refused: the vectors differ in length', () => {
    const p = parametricProblem(() => expand(TEST_JDL_MULTI_BAD));
    expect(p).toEqual({
      message: 'Different length of parameter vectors: Parameters has 3 values, Parameters.B has 4',
      line: 10,
      column: 5,
      attribute: 'Parameters.B',
    });
  });

  it('TEST_JDL_MULTI sets Parameter, Parameter.A, Parameter.B and ParameterNumber as DIRAC does', () => {
    // ParametricJob.generateParametricJobs: `Parameters = 3` is itself the sequence "0" (start
    // 1, step 0, factor 1), so every job also gets Parameter = "1"; values are inserted as
    // strings (insertAttributeString), the index as an integer.
    const jobs = expand(TEST_JDL_MULTI);
    expect(jobs[2]!.ad.attributes.map((a) => [a.name, a.value])).toEqual([
      ['Executable', 'my_executable'],
      ['Arguments', '7 c'],
      ['JobName', 'Test_2'],
      ['Parameter', '1'],
      ['Parameter.A', '7'],
      ['Parameter.B', 'c'],
      ['ParameterNumber', 2],
    ]);
    expect(jobs.map((j) => j.values)).toEqual([
      { Parameter: '1', 'Parameter.A': '1', 'Parameter.B': 'a' },
      { Parameter: '1', 'Parameter.A': '3', 'Parameter.B': 'b' },
      { Parameter: '1', 'Parameter.A': '7', 'Parameter.B': 'c' },
    ]);
  });
});

describe('sequences', () => {
  it('expands a list with %s and %n, and sets Parameter / ParameterNumber', () => {
    const jobs = expand(`[
  Executable = "run.sh";
  Arguments = "--file %s --index %n";
  Parameters = { "a.txt", "b.txt", "c.txt" };
]`);
    expect(jobs.map((j) => j.number)).toEqual([0, 1, 2]);
    expect(column(jobs, 'Arguments')).toEqual(['--file a.txt --index 0', '--file b.txt --index 1', '--file c.txt --index 2']);
    expect(jobs.map((j) => j.values)).toEqual([{ Parameter: 'a.txt' }, { Parameter: 'b.txt' }, { Parameter: 'c.txt' }]);
    expect(jobs[1]?.ad.attributes.map((a) => [a.name, a.value])).toEqual([
      ['Executable', 'run.sh'],
      ['Arguments', '--file b.txt --index 1'],
      ['Parameter', 'b.txt'],
      ['ParameterNumber', 1],
    ]);
  });

  it('generates an integer sequence from N with defaults (start 1, step 0, factor 1)', () => {
    const jobs = expand('Executable = "a"; Arguments = "%s"; Parameters = 3;');
    expect(jobs.map((j) => j.values.Parameter)).toEqual(['1', '1', '1']);
    expect(column(jobs, 'Arguments')).toEqual(['1', '1', '1']);
  });

  it('generates start, start*factor+step, ... with integers', () => {
    const jobs = expand('Executable = "a"; Parameters = 5; ParameterStart = 2; ParameterStep = 1; ParameterFactor = 3;');
    // 2, 2*3+1, 7*3+1, 22*3+1, 67*3+1 (Python: the same)
    expect(jobs.map((j) => j.values.Parameter)).toEqual(['2', '7', '22', '67', '202']);
    expect(jobs[0]?.ad.attributes.map((a) => a.name)).toEqual(['Executable', 'Parameter', 'ParameterNumber']);
  });

  it('computes integer sequences exactly, as Python ints', () => {
    const jobs = expand('Parameters = 40; ParameterStart = 3; ParameterFactor = 3; A = "%s";');
    expect(column(jobs, 'A').slice(-3)).toEqual(['1350851717672992089', '4052555153018976267', '12157665459056928801']);
  });

  // Expected values printed by Python 3 with DIRAC's __getParameterSequence.
  it.each([
    ['ParameterStep = 0.1', 4, ['1.0', '1.1', '1.2000000000000002', '1.3000000000000003']],
    ['ParameterStart = 0.5; ParameterFactor = 2', 3, ['0.5', '1.0', '2.0']],
    ['ParameterStart = 1.0; ParameterStep = 0.5', 3, ['1.0', '1.5', '2.0']],
    ['ParameterFactor = 2.0', 3, ['1.0', '2.0', '4.0']],
    ['ParameterStart = 1e16', 2, ['1e+16', '1e+16']],
    ['ParameterStart = 0.00001; ParameterFactor = 10', 5, ['1e-05', '0.0001', '0.001', '0.01', '0.1']],
    ['ParameterStep = 1e-5', 3, ['1.0', '1.00001', '1.0000200000000001']],
    ['ParameterStart = 0.1; ParameterStep = 0.2; ParameterFactor = 3', 6, ['0.1', '0.5', '1.7', '5.3', '16.099999999999998', '48.5']],
    ['ParameterStart = -1.5; ParameterStep = -0.25; ParameterFactor = -2', 3, ['-1.5', '2.75', '-5.75']],
  ])('a float anywhere makes every value a Python float: %s', (controls, count, expected) => {
    const jobs = expand(`Parameters = ${count}; ${controls}; Arguments = "x=%s";`);
    expect(jobs.map((j) => j.values.Parameter)).toEqual(expected);
    expect(column(jobs, 'Arguments')).toEqual(expected.map((v) => `x=${v}`));
    expect(column(jobs, 'Parameter')).toEqual(expected);
  });

  it('reads quoted start, step and factor, as DIRAC strips the quotes', () => {
    const ints = expand('Parameters = 3; ParameterStart = "1"; ParameterStep = " 1 "; ParameterFactor = "2"; A = "%s";');
    expect(column(ints, 'A')).toEqual(['1', '3', '7']);
    const floats = expand('Parameters = 2; ParameterStart = "1.5"; A = "%s";');
    expect(column(floats, 'A')).toEqual(['1.5', '1.5']);
    const python = expand('Parameters = 2; ParameterStart = "1_000"; A = "%s";');
    expect(column(python, 'A')).toEqual(['1000', '1000']);
  });

  it('reads a quoted number of jobs, as DIRAC does', () => {
    expect(expand('Parameters = "3"; A = "%n";')).toHaveLength(3);
  });

  it('keeps each list value as written: 1.0 stays "1.0", 02 stays "02", TRUE stays "TRUE"', () => {
    const jobs = expand('Parameters = { 1.0, 1.5, 2.0, 02, TRUE, "x y" }; A = "v=%s"; B = %s;');
    expect(jobs.map((j) => j.values.Parameter)).toEqual(['1.0', '1.5', '2.0', '02', 'TRUE', 'x y']);
    expect(column(jobs, 'A')).toEqual(['v=1.0', 'v=1.5', 'v=2.0', 'v=02', 'v=TRUE', 'v=x y']);
    // a bare placeholder is read again as a bare word, as DIRAC's plain-text substitution does
    expect(column(jobs, 'B')).toEqual([1, 1.5, 2, 2, true, 'x y']);
    expect(jobs.map((j) => getAttribute(j.ad, 'B')?.source)).toEqual(['1.0', '1.5', '2.0', '02', 'TRUE', '"x y"']);
    expect(serializeJdl(jobs[0]!.ad)).toContain('B = 1.0;');
  });

  it('expands named sequences with %(name)s, each with its own Start/Step/Factor', () => {
    const jobs = expand(`
Executable = "a";
Arguments = "%(energy)s GeV, seed %(seed)s, %s";
Parameters = { "p", "q" };
Parameters.energy = { 10, 20 };
ParameterStart.seed = 100;
ParameterStep.seed = 5;
`);
    expect(column(jobs, 'Arguments')).toEqual(['10 GeV, seed 100, p', '20 GeV, seed 105, q']);
    expect(jobs[1]?.values).toEqual({
      Parameter: 'q',
      'Parameter.energy': '20',
      'Parameter.seed': '105',
    });
    expect(jobs[1]?.ad.attributes.map((a) => [a.name, a.value])).toEqual([
      ['Executable', 'a'],
      ['Arguments', '20 GeV, seed 105, q'],
      ['Parameter', 'q'],
      ['Parameter.energy', '20'],
      ['Parameter.seed', '105'],
      ['ParameterNumber', 1],
    ]);
  });

  it('ignores ParameterStart/Step/Factor of a sequence given as a list, as DIRAC does', () => {
    const jobs = expand('Parameters = { "a", "b" }; ParameterStart = 7; ParameterStep = 1; A = "%s";');
    expect(column(jobs, 'A')).toEqual(['a', 'b']);
  });

  it('pads %n to the width of the last index', () => {
    const ten = expand('Executable = "a"; JobName = "j%n"; Parameters = 10;');
    expect(column(ten, 'JobName')).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'].map((n) => `j${n}`));
    const eleven = expand('Executable = "a"; JobName = "j%n"; Parameters = 11;');
    expect(column(eleven, 'JobName')).toEqual('j00 j01 j02 j03 j04 j05 j06 j07 j08 j09 j10'.split(' '));
    const one = expand('Executable = "a"; JobName = "j%n"; Parameters = { "x" };');
    expect(value(one[0]!.ad, 'JobName')).toBe('j0');
  });

  it('substitutes bare words too: the text DIRAC substitutes, read again as a bare word', () => {
    const jobs = expand('Parameters = 11; JobName = job_%n; Index = %n; CPUTime = %s00;');
    expect(value(jobs[7]!.ad, 'JobName')).toBe('job_07');
    expect(getAttribute(jobs[7]!.ad, 'Index')).toMatchObject({ value: 7, source: '07' });
    expect(value(jobs[7]!.ad, 'CPUTime')).toBe(100);
  });

  it('substitutes inside lists and nested ads, and leaves non-strings alone', () => {
    const jobs = expand(`
Executable = "a";
OutputSandbox = { "out_%s.root", log_%n.txt, 3 };
Extra = [ Path = "/data/%s"; Deep = { [ X = "%(k)s" ] }; Flag = true ];
Parameters = { "A", "B" };
Parameters.k = { 1, 2 };
`);
    const second = jobs[1]!.ad;
    expect(value(second, 'OutputSandbox')).toEqual(['out_B.root', 'log_1.txt', 3]);
    const extra = value(second, 'Extra') as JdlAd;
    expect(value(extra, 'Path')).toBe('/data/B');
    const deep = value(extra, 'Deep') as JdlValue[];
    expect(isJdlAd(deep[0]!) && value(deep[0], 'X')).toBe('2');
    expect(value(extra, 'Flag')).toBe(true);
    // the source of a substituted attribute is its new text
    expect(getAttribute(second, 'OutputSandbox')?.source).toBe('{ "out_B.root", log_1.txt, 3 }');
    expect(serializeJdl(parseJdl(serializeJdl(second)))).toBe(serializeJdl(second));
  });

  it('removes every Parameters*/ParameterStart*/ParameterStep*/ParameterFactor* attribute', () => {
    const jobs = expand(`
Executable = "a";
Parameters = 2; ParameterStart = 1; ParameterStep = 1; ParameterFactor = 1;
Parameters.x = 2; ParameterStart.x = 0; ParameterStep.x = 2; ParameterFactor.x = 1;
Parameter = "user"; ParameterNumber = 99; Parameter.y = 1;
Other = 1;
`);
    expect(jobs[1]!.ad.attributes.map((a) => [a.name, a.value])).toEqual([
      ['Executable', 'a'],
      ['Other', 1],
      ['Parameter', '2'],
      ['Parameter.x', '2'],
      ['ParameterNumber', 1],
    ]);
  });

  it('keeps the source positions of the attributes it copies', () => {
    const jobs = expand('[\n  Executable = "a";\n  Arguments = "%s";\n  Parameters = { 1 };\n]');
    expect(getAttribute(jobs[0]!.ad, 'Arguments')).toMatchObject({ line: 3, valueColumn: 15 });
    expect(getAttribute(jobs[0]!.ad, 'Parameter')).toMatchObject({ line: 4, valueColumn: 16 });
  });

  it('expands 10,000 jobs', () => {
    const jobs = expand(
      'Executable = "run.sh"; Arguments = "--seed %s --out %n"; OutputSandbox = { "out_%n.root" }; Parameters = 10000; ParameterStep = 1;',
    );
    expect(jobs).toHaveLength(10_000);
    expect(value(jobs[9999]!.ad, 'Arguments')).toBe('--seed 10000 --out 9999');
    expect(value(jobs[42]!.ad, 'OutputSandbox')).toEqual(['out_0042.root']);
  });
});

describe('list-valued parameters', () => {
  // What DIRAC's Job API writes for setParameterSequence('InputData', [[...], [...]]) with
  // setInputData: Job._handleParameterSequences makes InputData a bare %(InputData)s and
  // ClassAd.insertAttributeVectorStringList writes the lists unquoted; asJDL breaks them over
  // lines at every comma.
  const API = `
    Arguments = "jobDescription.xml -o LogLevel=INFO -p InputData=%(InputData)s";
    Executable = dirac-jobexec;
    InputData = %(InputData)s;
    InputSandbox = 
        {
            jobDescription.xml,
            %(InputData)s
        };
    JobName = Name;
    Parameters = 2;
    Parameters.InputData = 
        {
            {/vo/user/a/f1,
            /vo/user/a/f2},
            {/vo/user/a/f3}
        };
    StdOutput = std.out;`;

  it("expands the form DIRAC's job API writes: whole value, list element, inside a string", () => {
    const jobs = expand(API);
    expect(column(jobs, 'InputData')).toEqual([['/vo/user/a/f1', '/vo/user/a/f2'], ['/vo/user/a/f3']]);
    expect(column(jobs, 'InputSandbox')).toEqual([
      ['jobDescription.xml', '/vo/user/a/f1', '/vo/user/a/f2'],
      ['jobDescription.xml', '/vo/user/a/f3'],
    ]);
    expect(column(jobs, 'Arguments')).toEqual([
      'jobDescription.xml -o LogLevel=INFO -p InputData={/vo/user/a/f1,/vo/user/a/f2}',
      'jobDescription.xml -o LogLevel=INFO -p InputData={/vo/user/a/f3}',
    ]);
    expect(column(jobs, 'Parameter.InputData')).toEqual([['/vo/user/a/f1', '/vo/user/a/f2'], ['/vo/user/a/f3']]);
    expect(jobs[1]!.values).toEqual({ Parameter: '1', 'Parameter.InputData': '{/vo/user/a/f3}' });
    expect(column(jobs, 'StdOutput')).toEqual(['std.out', 'std.out']);
  });

  it('expands the quoted form the same way', () => {
    const jobs = expand(
      'Parameters.InputData = {{"/vo/a","/vo/b"},{"/vo/c"}}; InputData = %(InputData)s; Extra = { "/vo/x", %(InputData)s };',
    );
    expect(column(jobs, 'InputData')).toEqual([['/vo/a', '/vo/b'], ['/vo/c']]);
    expect(column(jobs, 'Extra')).toEqual([
      ['/vo/x', '/vo/a', '/vo/b'],
      ['/vo/x', '/vo/c'],
    ]);
  });

  it('writes a list as {a,b} text inside a quoted string or a longer bare word', () => {
    const jobs = expand('Parameters = {{"/vo/a", 1.0}, {}}; A = "%s"; B = files=%s; C = { "%s" };');
    expect(column(jobs, 'A')).toEqual(['{/vo/a,1.0}', '{}']);
    expect(column(jobs, 'B')).toEqual(['files={/vo/a,1.0}', 'files={}']);
    expect(column(jobs, 'C')).toEqual([['{/vo/a,1.0}'], ['{}']]);
  });
});

describe("the job of DIRAC's Test_JDL.py, as Job._toJDL writes it", () => {
  // src/DIRAC/Core/Utilities/test/Test_JDL.py test_jdlToBaseJobDescriptionModel_valid: a job
  // with every setter and three sequences (setParameterSequence IntSequence [1, 2, 3],
  // StrSequence ["a", "b", "c"], FloatSequence [1.0, 2.0, 3.0]), written by Job._toJDL
  // (src/DIRAC/Interfaces/API/Job.py) through ClassAd.asJDL: names sorted, values unquoted
  // (insertAttributeInt), lists over lines, and the [ ] the test puts around it.
  const JDL = `[ 
    Arguments = "jobDescription.xml -o LogLevel=DEBUG --cfg configArgs";
    CPUTime = 3600;
    ExecutionEnvironment = 
        {
            INTVAR=1,
            STRVAR=a
        };
    Executable = dirac-jobexec;
    ExtraFloat = 1.0;
    ExtraInt = 1;
    ExtraString = test;
    FloatSequence = %(FloatSequence)s;
    GridCE = some.ce.IN2P3.fr;
    InputData = /lhcb/production/DC04/v2/DST/00000742_00003493_10.dst;
    InputDataPolicy = DIRAC.WorkloadManagementSystem.Client.DownloadInputData;
    InputSandbox = inputfile.opts;
    IntSequence = %(IntSequence)s;
    JobConfigArgs = configArgs;
    JobGroup = 1234abcd;
    JobName = JobName;
    JobType = Test;
    LogLevel = DEBUG;
    NumberOfProcessors = 3;
    OutputData = outputfile.root;
    OutputPath = /myjobs/1234;
    OutputSE = IN2P3-disk;
    OutputSandbox = 
        {
            inputfile.opts,
            std.err,
            std.out
        };
    Parameters = 3;
    Parameters.FloatSequence = 
        {
            1.0,
            2.0,
            3.0
        };
    Parameters.IntSequence = 
        {
            1,
            2,
            3
        };
    Parameters.StrSequence = 
        {
            a,
            b,
            c
        };
    Platform = x86_64-slc6-gcc49-opt;
    Priority = 10;
    Site = LCG.IN2P3.fr;
    StdError = std.err;
    StdOutput = std.out;
    StrSequence = %(StrSequence)s;
    Tags = 
        {
            WholeNode,
            8GBMemory
        };
]`;

  it('expands into three jobs whose sequence attributes read as DIRAC reads them', () => {
    const jobs = expand(JDL);
    expect(jobs).toHaveLength(3);
    expect(column(jobs, 'IntSequence')).toEqual([1, 2, 3]);
    expect(column(jobs, 'StrSequence')).toEqual(['a', 'b', 'c']);
    expect(column(jobs, 'FloatSequence')).toEqual([1, 2, 3]);
    expect(jobs.map((j) => getAttribute(j.ad, 'FloatSequence')?.source)).toEqual(['1.0', '2.0', '3.0']);
    expect(jobs[1]!.values).toEqual({
      Parameter: '1',
      'Parameter.FloatSequence': '2.0',
      'Parameter.IntSequence': '2',
      'Parameter.StrSequence': 'b',
    });
    const second = serializeJdl(jobs[1]!.ad);
    expect(second).toContain('  FloatSequence = 2.0;\n');
    expect(second).toContain('  StrSequence = "b";\n');
    expect(second).toContain('  Parameter.FloatSequence = "2.0";\n');
    expect(second).toContain('  ParameterNumber = 1;\n');
    expect(second).not.toContain('Parameters');
    const ad = jobs[0]!.ad;
    expect(value(ad, 'ExecutionEnvironment')).toEqual(['INTVAR=1', 'STRVAR=a']);
    expect(value(ad, 'InputDataPolicy')).toBe('DIRAC.WorkloadManagementSystem.Client.DownloadInputData');
    expect(value(ad, 'Tags')).toEqual(['WholeNode', '8GBMemory']);
    expect(getAttribute(ad, 'ExtraFloat')).toMatchObject({ value: 1, source: '1.0' });
  });
});

describe('placeholders', () => {
  it('leaves %j, %%, %Y and a lone % as written in parametric JDLs', () => {
    const jobs = expand('Executable = "a"; Arguments = "%j %% 50% %s% date +%Y-%m-%d printf %d"; Parameters = { "v" };');
    expect(value(jobs[0]!.ad, 'Arguments')).toBe('%j %% 50% v% date +%Y-%m-%d printf %d');
  });

  it('keeps %s as text when there is no unnamed sequence', () => {
    const jobs = expand('Executable = "a"; Arguments = "printf %s %(x)s"; Parameters.x = { 1 };');
    expect(value(jobs[0]!.ad, 'Arguments')).toBe('printf %s 1');
  });

  it('keeps what only looks like a named placeholder: %(y, %()s, %(a b)s, %(x)d', () => {
    const jobs = expand('Parameters.x = { 1 }; A = "%(y %()s %(a b)s %(x)d";');
    expect(value(jobs[0]!.ad, 'A')).toBe('%(y %()s %(a b)s %(x)d');
  });

  it('does not substitute inside substituted values', () => {
    const jobs = expand('Parameters = { "%(x)s %n" }; Parameters.x = { "X" }; A = "%s";');
    expect(value(jobs[0]!.ad, 'A')).toBe('%(x)s %n');
  });
});

describe('resolvePlaceholders (plain JDLs)', () => {
  it('leaves every % as written: %Y, printf %s, %n, %(x)s, %%; %j is for the database', () => {
    const text = 'Executable = "a"; Arguments = "date +%Y-%m-%d; printf %s %n %(x)s %% %j"; JobName = job_%n;';
    const ad = resolvePlaceholders(parseJdl(text));
    expect(value(ad, 'Arguments')).toBe('date +%Y-%m-%d; printf %s %n %(x)s %% %j');
    expect(value(ad, 'JobName')).toBe('job_%n');
  });
});

describe('parametric errors', () => {
  it('refuses lists of different lengths, at the second attribute', () => {
    const p = parametricProblem(() => expand('[\n  Executable = "a";\n  Parameters = { 1, 2, 3 };\n    Parameters.x = { "a", "b" };\n]'));
    expect(p).toEqual({
      message: 'Different length of parameter vectors: Parameters has 3 values, Parameters.x has 2',
      line: 4,
      column: 5,
      attribute: 'Parameters.x',
    });
  });

  it('compares a numeric N with list lengths', () => {
    const p = parametricProblem(() => expand('Executable = "a"; Parameters.x = { 1 }; Parameters = 2;'));
    expect(p.message).toBe('Different length of parameter vectors: Parameters.x has 1 values, Parameters has 2');
  });

  it.each([
    ['zero', 'Parameters = 0;', 'Parameters = 0 is not allowed'],
    ['negative', 'Parameters = -3;', 'Parameters = -3 is not allowed'],
    ['fractional', 'Parameters = 2.5;', 'Parameters = 2.5 is not allowed'],
    ['empty list', 'Parameters = {};', 'Parameters is an empty list'],
    ['a text', 'Parameters = "three";', 'Parameters must be a list of values'],
    ['a bare word', 'Parameters = three;', 'Parameters must be a list of values'],
    ['a boolean', 'Parameters = true;', 'Parameters must be a list of values'],
    ['infinity', 'Parameters = "inf";', 'Parameters must be a list of values'],
    ['an ad in the list', 'Parameters = { [ A = 1 ] };', 'Parameters may list only texts, numbers'],
    ['lists of lists', 'Parameters = { { { 1 } } };', 'Parameters may list only texts, numbers'],
    ['a bad name', 'ParametersX = { 1 };', 'ParametersX is not a parametric attribute'],
  ])('refuses %s, at the value', (_label, body, message) => {
    const p = parametricProblem(() => expand(`Executable = "a";\n${body}`));
    expect(p.message).toContain(message);
    expect(p.line).toBe(2);
    expect(p.column).toBe(body.indexOf('=') + 3);
  });

  it.each([
    ['"x"', 'ParameterStep must be a number, not "x"'],
    ['x', 'ParameterStep must be a number, not x'],
    ['"inf"', 'ParameterStep must be a number, not "inf"'],
    ['"nan"', 'ParameterStep must be a number, not "nan"'],
    ['{ 1 }', 'ParameterStep must be a number, not { 1 }'],
    ['"1e999"', 'ParameterStep = 1e999 is too large'],
  ])('refuses ParameterStep = %s', (step, message) => {
    const p = parametricProblem(() => expand(`Parameters = 2; ParameterStep = ${step};`));
    expect(p).toMatchObject({ message, line: 1, column: 33, attribute: 'ParameterStep' });
  });

  it('refuses a bad named control at its own value', () => {
    const p = parametricProblem(() => expand('Parameters = 2;\nParameterFactor.A = two;'));
    expect(p).toMatchObject({ line: 2, column: 21, attribute: 'ParameterFactor.A' });
  });

  it('refuses sequences that overflow, float or integer', () => {
    const floats = parametricProblem(() => expand('Parameters = 1000; ParameterFactor = 1e300;'));
    expect(floats.message).toContain('the values of Parameters grow beyond the largest number');
    const ints = parametricProblem(() => expand('Parameters = 1000; ParameterStart.k = 2; ParameterFactor.k = 1000;'));
    expect(ints.message).toContain('the values of sequence k grow beyond the largest number');
    expect(ints).toMatchObject({ line: 1, column: 39, attribute: 'ParameterStart.k' });
  });

  it('accepts exactly the cap and refuses one more, naming the limit', () => {
    expect(expand('Executable = "a"; Parameters = 10000;')).toHaveLength(10_000);
    const p = parametricProblem(() => expand('Executable = "a"; Parameters = 10001;'));
    expect(p).toEqual({
      message: 'Parameters would make 10001 jobs, more than the limit of 10000 jobs per submission',
      line: 1,
      column: 32,
      attribute: 'Parameters',
    });
    const small = parametricProblem(() => expand('Parameters = { 1, 2, 3 };', { maxParametricJobs: 2 }));
    expect(small.message).toContain('more than the limit of 2 jobs');
    const huge = parametricProblem(() => expand('Parameters = 1e300;'));
    expect(huge.message).toContain('more than the limit');
  });

  it('refuses an expansion that would produce too much text, before building it', () => {
    const long = 'x'.repeat(1024 * 1024);
    const text = `Executable = "a";\nParameters = { "${long}" };\nA = "${'%s'.repeat(100)}";`;
    const p = parametricProblem(() => expand(text));
    expect(p).toMatchObject({ line: 2, column: 14, attribute: 'Parameters' });
    expect(p.message).toContain('would hold more than 64 MB of substituted text');
    // the same value used a few times is fine
    expect(value(expand(text.replace('%s'.repeat(100), '%s%s'))[0]!.ad, 'A')).toHaveLength(2 * long.length);
  });

  it('refuses splicing a long list into many placeholders, before building it', () => {
    const list = `{ {${'a,'.repeat(200_000)}b} }`;
    const text = `Parameters = ${list};\nX = { ${'%s, '.repeat(400)}%s };`;
    const p = parametricProblem(() => expand(text));
    expect(p).toMatchObject({ line: 1, column: 14, attribute: 'Parameters' });
    expect(p.message).toContain('substituted text');
  });

  it('refuses a %(y)s that names no sequence, at the value', () => {
    const p = parametricProblem(() => expand('[\n  Executable = "a";\n  Arguments = "x %(y)s";\n  Parameters.x = { 1 };\n]'));
    expect(p).toEqual({
      message: "unknown placeholder %(y)s in Arguments: no sequence is named y (the sequences here: %(x)s; %n is the job's index)",
      line: 3,
      column: 15,
      attribute: 'Arguments',
    });
  });

  it('refuses an unknown %(y)s in a bare word, a list and a nested ad, each at its own value', () => {
    const bare = parametricProblem(() => expand('Parameters = 2;\nInputData = %(InputData)s;'));
    expect(bare).toMatchObject({ line: 2, column: 13, attribute: 'InputData' });
    const list = parametricProblem(() => expand('Parameters = 2; OutputSandbox = { "ok", "f_%(z)s" };'));
    expect(list).toMatchObject({ line: 1, column: 33, attribute: 'OutputSandbox' });
    const nested = parametricProblem(() => expand('Parameters = { 1 };\nExtra = [\n  Path = "%(z)s" ];'));
    expect(nested).toMatchObject({ line: 3, column: 10, attribute: 'Path' });
  });
});

describe('deliberate differences from DIRAC (core/jdl/README.md)', () => {
  it('difference: named sequences alone are expanded (DIRAC needs Parameters)', () => {
    const jobs = expand('Executable = "a"; Arguments = "%(x)s-%n"; Parameters.x = { "u", "v" };');
    expect(column(jobs, 'Arguments')).toEqual(['u-0', 'v-1']);
    expect(getAttribute(jobs[0]!.ad, 'Parameter')).toBeUndefined();
    expect(column(jobs, 'Parameter.x')).toEqual(['u', 'v']);
  });

  it('difference: Parameters = 1e1 makes 10 jobs (DIRAC cannot read the count: one job, unexpanded)', () => {
    expect(expand('Parameters = 1e1; A = "%n";')).toHaveLength(10);
    expect(expand('Parameters = 3.0; A = "%n";')).toHaveLength(3);
  });

  it('difference: Parameters.x = 3 is a numeric named sequence (DIRAC refuses it)', () => {
    const jobs = expand('Parameters.x = 3; ParameterStart.x = 10; ParameterStep.x = 10; A = "%(x)s";');
    expect(column(jobs, 'A')).toEqual(['10', '20', '30']);
  });

  it('difference: an unknown %(x)s is refused (DIRAC leaves it in the job)', () => {
    const p = parametricProblem(() => expand('Parameters = 2; Arguments = "%(typo)s";'));
    expect(p.message).toContain('unknown placeholder %(typo)s in Arguments');
  });

  it('difference: %%s, %%n and %%(x)s stay as written (DIRAC substitutes after the first %)', () => {
    const jobs = expand('Parameters = { "v" }; Parameters.x = { "w" }; A = "%%s %%n %%(x)s %%%s";');
    expect(value(jobs[0]!.ad, 'A')).toBe('%%s %%n %%(x)s %%v');
  });

  it('difference: a sequence that overflows is refused (Python would print inf)', () => {
    const p = parametricProblem(() => expand('Parameters = 3; ParameterStart = 1e300; ParameterFactor = 1e10;'));
    expect(p.message).toContain('grow beyond the largest number');
  });
});

describe('pythonFloatRepr', () => {
  // Each expected text is Python 3's repr() of the same double.
  it.each([
    [1, '1.0'],
    [-1, '-1.0'],
    [0, '0.0'],
    [-0, '-0.0'],
    [0.1, '0.1'],
    [1 / 3, '0.3333333333333333'],
    [1 + 0.1 + 0.1, '1.2000000000000002'],
    [100, '100.0'],
    [1234.5, '1234.5'],
    [1e15, '1000000000000000.0'],
    [9007199254740992, '9007199254740992.0'],
    [1e16, '1e+16'],
    [1.2345678901234568e17, '1.2345678901234568e+17'],
    [2 ** 70, '1.1805916207174113e+21'],
    [1e21, '1e+21'],
    [1e22, '1e+22'],
    [1e23, '1e+23'],
    [0.0001, '0.0001'],
    [0.000123, '0.000123'],
    [0.00001, '1e-05'],
    [1e-7, '1e-07'],
    [-2.5e-5, '-2.5e-05'],
    [1.23e-18, '1.23e-18'],
    [1.5e300, '1.5e+300'],
    [5e-324, '5e-324'],
    [Number.MAX_VALUE, '1.7976931348623157e+308'],
    [Number.POSITIVE_INFINITY, 'inf'],
    [Number.NEGATIVE_INFINITY, '-inf'],
    [Number.NaN, 'nan'],
  ])('repr(%s) is %s', (x, expected) => {
    expect(pythonFloatRepr(x)).toBe(expected);
  });

  it('reads back as the same number for many values', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 20_000; i += 1) {
      const x = (random() - 0.5) * 10 ** Math.floor(random() * 60 - 30);
      const text = pythonFloatRepr(x);
      expect(Number(text)).toBe(x);
      expect(text).toMatch(/^-?(?:\d+\.\d+|\d(?:\.\d+)?e[+-]\d{2,3})$/);
    }
  });
});
