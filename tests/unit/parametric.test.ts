import { describe, expect, it } from 'vitest';
import { isWmsError, type JdlProblem } from '../../core/errors.js';
import {
  expandParametric,
  getAttribute,
  isJdlAd,
  isParametric,
  parseJdl,
  resolvePlaceholders,
  type ExpandedJob,
  type JdlAd,
  type JdlValue,
} from '../../core/jdl/index.js';

const LIMITS = { maxParametricJobs: 10_000 };

function expand(text: string, limits = LIMITS): ExpandedJob[] {
  const jobs = expandParametric(parseJdl(text), limits);
  if (jobs === null) throw new Error('not parametric');
  return jobs;
}

function value(ad: JdlAd, name: string): JdlValue | undefined {
  return getAttribute(ad, name)?.value;
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

describe('isParametric / expandParametric', () => {
  it('returns null for a plain JDL', () => {
    const ad = parseJdl('Executable = "a"; ParameterStart = 3;');
    expect(isParametric(ad)).toBe(false);
    expect(expandParametric(ad, LIMITS)).toBeNull();
  });

  it('expands a list with %s and %n, and sets Parameter / ParameterNumber', () => {
    const jobs = expand(`[
  Executable = "run.sh";
  Arguments = "--file %s --index %n";
  Parameters = { "a.txt", "b.txt", "c.txt" };
]`);
    expect(jobs.map((j) => j.number)).toEqual([0, 1, 2]);
    expect(jobs.map((j) => value(j.ad, 'Arguments'))).toEqual([
      '--file a.txt --index 0',
      '--file b.txt --index 1',
      '--file c.txt --index 2',
    ]);
    expect(jobs.map((j) => j.values)).toEqual([
      { Parameter: 'a.txt' },
      { Parameter: 'b.txt' },
      { Parameter: 'c.txt' },
    ]);
    expect(jobs[1]?.ad.attributes.map((a) => [a.name, a.value])).toEqual([
      ['Executable', 'run.sh'],
      ['Arguments', '--file b.txt --index 1'],
      ['Parameter', 'b.txt'],
      ['ParameterNumber', 1],
    ]);
  });

  it('generates an integer sequence from N with defaults (start 1, step 0, factor 1)', () => {
    const jobs = expand('Executable = "a"; Arguments = "%s"; Parameters = 3;');
    expect(jobs.map((j) => j.values.Parameter)).toEqual([1, 1, 1]);
    expect(jobs.map((j) => value(j.ad, 'Arguments'))).toEqual(['1', '1', '1']);
  });

  it('generates start, start*factor+step, ... with integers', () => {
    const jobs = expand(
      'Executable = "a"; Parameters = 5; ParameterStart = 2; ParameterStep = 1; ParameterFactor = 3;',
    );
    // 2, 2*3+1, 7*3+1, 22*3+1, 67*3+1
    expect(jobs.map((j) => j.values.Parameter)).toEqual([2, 7, 22, 67, 202]);
    expect(jobs[0]?.ad.attributes.map((a) => a.name)).toEqual([
      'Executable',
      'Parameter',
      'ParameterNumber',
    ]);
  });

  it('generates floats when start, step or factor are fractional, without rounding noise', () => {
    const step = expand(
      'Executable = "a"; Arguments = "x=%s"; Parameters = 4; ParameterStep = 0.1;',
    );
    expect(step.map((j) => j.values.Parameter)).toEqual([1, 1.1, 1.2, 1.3]);
    expect(step.map((j) => value(j.ad, 'Arguments'))).toEqual(['x=1', 'x=1.1', 'x=1.2', 'x=1.3']);
    const factor = expand(
      'Executable = "a"; Parameters = 3; ParameterStart = 0.5; ParameterFactor = 2;',
    );
    expect(factor.map((j) => j.values.Parameter)).toEqual([0.5, 1, 2]);
  });

  it('expands named sequences with %(name)s, each with its own Start/Step/Factor', () => {
    const jobs = expand(`
Executable = "a";
Arguments = "%(energy)s GeV, seed %(seed)s, %s";
Parameters = { "p", "q" };
Parameters.energy = { 10, 20 };
Parameters.seed = 2;
ParameterStart.seed = 100;
ParameterStep.seed = 5;
`);
    expect(jobs.map((j) => value(j.ad, 'Arguments'))).toEqual([
      '10 GeV, seed 100, p',
      '20 GeV, seed 105, q',
    ]);
    expect(jobs[1]?.values).toEqual({
      Parameter: 'q',
      'Parameter.energy': 20,
      'Parameter.seed': 105,
    });
    expect(jobs[1]?.ad.attributes.map((a) => [a.name, a.value])).toEqual([
      ['Executable', 'a'],
      ['Arguments', '20 GeV, seed 105, q'],
      ['Parameter', 'q'],
      ['Parameter.energy', 20],
      ['Parameter.seed', 105],
      ['ParameterNumber', 1],
    ]);
  });

  it('works with only named sequences', () => {
    const jobs = expand('Executable = "a"; Arguments = "%(x)s-%n"; Parameters.x = { "u", "v" };');
    expect(jobs.map((j) => value(j.ad, 'Arguments'))).toEqual(['u-0', 'v-1']);
    expect(getAttribute(jobs[0]!.ad, 'Parameter')).toBeUndefined();
  });

  it('pads %n to the width of the last index', () => {
    const ten = expand('Executable = "a"; JobName = "j%n"; Parameters = 10;');
    expect(ten.map((j) => value(j.ad, 'JobName'))).toEqual(
      ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'].map((n) => `j${n}`),
    );
    const eleven = expand('Executable = "a"; JobName = "j%n"; Parameters = 11;');
    expect(eleven.map((j) => value(j.ad, 'JobName'))).toEqual(
      'j00 j01 j02 j03 j04 j05 j06 j07 j08 j09 j10'.split(' '),
    );
    const one = expand('Executable = "a"; JobName = "j%n"; Parameters = { "x" };');
    expect(value(one[0]!.ad, 'JobName')).toBe('j0');
  });

  it('keeps %j, turns %% into %, and keeps a % that starts no placeholder', () => {
    const jobs = expand('Executable = "a"; Arguments = "%j %% %%s 50% %s%"; Parameters = { "v" };');
    expect(value(jobs[0]!.ad, 'Arguments')).toBe('%j % %s 50% v%');
  });

  it('substitutes inside lists and nested ads, and leaves non-strings alone', () => {
    const jobs = expand(`
Executable = "a";
OutputSandbox = { "out_%s.root", "log_%n.txt", 3 };
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
  });

  it('removes every Parameters*/ParameterStart*/ParameterStep*/ParameterFactor* attribute', () => {
    const jobs = expand(`
Executable = "a";
Parameters = 2; ParameterStart = 1; ParameterStep = 1; ParameterFactor = 1;
Parameters.x = 2; ParameterStart.x = 0; ParameterStep.x = 2; ParameterFactor.x = 1;
Parameter = "user"; ParameterNumber = 99;
Other = 1;
`);
    expect(jobs[1]!.ad.attributes.map((a) => [a.name, a.value])).toEqual([
      ['Executable', 'a'],
      ['Other', 1],
      ['Parameter', 2],
      ['Parameter.x', 2],
      ['ParameterNumber', 1],
    ]);
  });

  it('keeps the source positions of the attributes it copies', () => {
    const jobs = expand('[\n  Executable = "a";\n  Arguments = "%s";\n  Parameters = { 1 };\n]');
    expect(getAttribute(jobs[0]!.ad, 'Arguments')).toMatchObject({ line: 3, valueColumn: 15 });
  });

  it('expands 10,000 jobs well under a second', () => {
    const started = performance.now();
    const jobs = expand(
      'Executable = "run.sh"; Arguments = "--seed %s --out %n"; OutputSandbox = { "out_%n.root" }; Parameters = 10000; ParameterStep = 1;',
    );
    const elapsed = performance.now() - started;
    expect(jobs).toHaveLength(10_000);
    expect(value(jobs[9999]!.ad, 'Arguments')).toBe('--seed 10000 --out 9999');
    expect(value(jobs[42]!.ad, 'OutputSandbox')).toEqual(['out_0042.root']);
    expect(elapsed).toBeLessThan(1000);
  });
});

describe('parametric errors', () => {
  it('refuses lists of different lengths, at the second attribute', () => {
    const p = parametricProblem(() =>
      expand(
        '[\n  Executable = "a";\n  Parameters = { 1, 2, 3 };\n    Parameters.x = { "a", "b" };\n]',
      ),
    );
    expect(p).toEqual({
      message: 'Different length of parameter vectors: Parameters has 3 values, Parameters.x has 2',
      line: 4,
      column: 5,
      attribute: 'Parameters.x',
    });
  });

  it('compares a numeric N with list lengths', () => {
    const p = parametricProblem(() =>
      expand('Executable = "a"; Parameters.x = { 1 }; Parameters = 2;'),
    );
    expect(p.message).toBe(
      'Different length of parameter vectors: Parameters.x has 1 values, Parameters has 2',
    );
  });

  it.each([
    ['zero', 'Parameters = 0;', 'Parameters = 0 is not allowed'],
    ['negative', 'Parameters = -3;', 'Parameters = -3 is not allowed'],
    ['fractional', 'Parameters = 2.5;', 'Parameters = 2.5 is not allowed'],
    ['empty list', 'Parameters = {};', 'Parameters is an empty list'],
    ['a string', 'Parameters = "3";', 'Parameters must be a list of values'],
    ['nested list', 'Parameters = { { 1 } };', 'Parameters may list only texts and numbers'],
    ['a bad name', 'ParametersX = { 1 };', 'ParametersX is not a parametric attribute'],
  ])('refuses %s, at the value', (_label, body, message) => {
    const p = parametricProblem(() => expand(`Executable = "a";\n${body}`));
    expect(p.message).toContain(message);
    expect(p.line).toBe(2);
    expect(p.column).toBe(body.indexOf('=') + 3);
  });

  it('refuses a non-numeric ParameterStep', () => {
    const p = parametricProblem(() => expand('Parameters = 2; ParameterStep = "x";'));
    expect(p).toMatchObject({ message: 'ParameterStep must be a number', line: 1, column: 33 });
  });

  it('refuses sequences that overflow', () => {
    const p = parametricProblem(() => expand('Parameters = 1000; ParameterFactor = 1e300;'));
    expect(p.message).toContain('grow beyond the largest number');
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
    const small = parametricProblem(() =>
      expand('Parameters = { 1, 2, 3 };', { maxParametricJobs: 2 }),
    );
    expect(small.message).toContain('more than the limit of 2 jobs');
  });

  it.each([
    ['%q', 'a %q b', '%q'],
    ['unknown name', 'x %(y)s', '%(y)s'],
    ['unclosed name', 'x %(y', '%(y'],
    ['empty name', 'x %()s', '%()s'],
  ])('refuses an unknown placeholder: %s, at the value', (_label, args, placeholder) => {
    const p = parametricProblem(() =>
      expand(`[\n  Executable = "a";\n  Arguments = "${args}";\n  Parameters.x = { 1 };\n]`),
    );
    expect(p.message).toContain(`unknown placeholder ${placeholder} in Arguments`);
    expect(p.message).toContain('known here: %(x)s, %n, %j, %%');
    expect(p).toMatchObject({ line: 3, column: 15, attribute: 'Arguments' });
  });

  it('refuses %s when there is no unnamed sequence', () => {
    const p = parametricProblem(() =>
      expand('Executable = "a"; OutputSandbox = { "ok", "f_%s" }; Parameters.x = { 1 };'),
    );
    expect(p.message).toContain('unknown placeholder %s in OutputSandbox');
    expect(p.column).toBe(35);
  });

  it('locates a placeholder inside a nested ad at its own value', () => {
    const p = parametricProblem(() => expand('Parameters = { 1 };\nExtra = [\n  Path = "%z" ];'));
    expect(p).toMatchObject({ line: 3, column: 10, attribute: 'Path' });
  });
});

describe('resolvePlaceholders (plain JDLs)', () => {
  it('keeps %j and turns %% into %', () => {
    const ad = resolvePlaceholders(parseJdl('Executable = "a"; Arguments = "%j %% 100%";'));
    expect(value(ad, 'Arguments')).toBe('%j % 100%');
  });

  it.each(['%s', '%n', '%(x)s'])('refuses %s outside a parametric JDL', (placeholder) => {
    const p = parametricProblem(() =>
      resolvePlaceholders(parseJdl(`Executable = "a";\nJobName = "job ${placeholder}";`)),
    );
    expect(p.message).toBe(
      `unknown placeholder ${placeholder} in JobName (this JDL is not parametric, so only %j (the job ID) and %% (a literal %) can be used)`,
    );
    expect(p).toMatchObject({ line: 2, column: 11, attribute: 'JobName' });
  });
});
