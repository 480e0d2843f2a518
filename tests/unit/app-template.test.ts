/**
 * Application templates (core/app-template.ts): template problems with their paths, value
 * validation per parameter, rendering (numbers as numbers, strings escaped), injection attempts,
 * and the shipped apps/*.yaml.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { problemsByParameter, renderJdl, templateProblems, validateValues, type AppTemplate } from '../../core/app-template.js';
import { describeJobs, getAttribute, parseJdl } from '../../core/jdl/index.js';
import { DEFAULT_JOB_LIMITS } from '../../core/job-model.js';

const ID = { owner: 'alice', ownerGroup: 'vo_user', vo: 'vo' };

const T: AppTemplate = {
  name: 'greet',
  title: 'Greet',
  parameters: [
    { name: 'who', label: 'Who', type: 'string', pattern: '^[^\\n]*$', maxLength: 80, default: 'world' },
    { name: 'n', label: 'Count', type: 'number', integer: true, min: 1, max: 10, default: 3 },
    { name: 'x', label: 'Energy', type: 'number', min: 0, max: 5, step: 0.5, default: 1.5 },
    { name: 'mode', label: 'Mode', type: 'choice', options: ['fast', 'full'], default: 'fast' },
  ],
  resources: { cpuTime: 900, processors: 2, ramMb: 2048, tags: ['gpu-free'] },
  jdl: `# a comment with a " quote
[
  Executable = "/bin/echo";
  Arguments = "Hello {{who}} x={{x}}";
  JobName = {{who}};
  Mode = {{mode}};
  Count = {{n}};
  Energy = {{x}};
]
`,
};

describe('templateProblems', () => {
  it('accepts a valid template and the shipped apps', () => {
    expect(templateProblems(T)).toEqual([]);
    const dir = resolve(import.meta.dirname, '../../apps');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.sort()).toEqual(['hello.yaml', 'sweep.yaml']);
    for (const f of files) expect(templateProblems(parse(readFileSync(resolve(dir, f), 'utf8'))), f).toEqual([]);
  });

  it('names every problem with its path', () => {
    const bad = {
      name: 'Bad Name',
      title: '',
      extra: 1,
      parameters: [
        { name: 'a', label: 'A', type: 'number', min: 5, max: 1, step: 0 },
        { name: 'a', label: 'A2', type: 'string', pattern: '(' },
        { name: 'c', label: 'C', type: 'choice', options: [] },
        { name: 'd', label: 'D', type: 'color' },
        { name: 'e', label: 'E', type: 'number', max: 3, default: 7 },
      ],
      resources: { cpuTime: 0, ramMb: 10, gpus: 1 },
      jdl: '[ Executable = "x"; A = {{a}}; Z = {{zzz}}; ]',
    };
    const p = templateProblems(bad);
    for (const want of [
      '(top): unknown key(s) extra',
      'name: must match',
      'title: must be a non-empty string',
      'parameters[0].max: must not be below min (5)',
      'parameters[0].step: must be above 0',
      'parameters[1].name: "a" is declared twice',
      'parameters[1].pattern: not a valid regular expression',
      'parameters[2].options: must be a non-empty list',
      'parameters[3].type: must be one of number, string, choice, file',
      'parameters[4].default: must be at most 3',
      'resources: unknown key(s) gpus',
      'resources.cpuTime',
      'resources.ramMb',
      'jdl: {{zzz}} is not a parameter',
      'parameters[2]: "c" is not used in jdl',
    ]) {
      expect(
        p.some((l) => l.startsWith(want)),
        `${want}\n${p.join('\n')}`,
      ).toBe(true);
    }
    expect(templateProblems(null)).toEqual(['(top): must be an object']);
  });

  it('refuses a JDL template that does not render to a valid job, with the line', () => {
    const p = templateProblems({ ...T, parameters: [], jdl: '[\n  Executable = ;\n]' });
    expect(p.join('\n')).toMatch(/^jdl: line 2, column \d+: /);
  });
});

describe('validateValues', () => {
  it('accepts defaults and good values (numbers as numeric strings too)', () => {
    expect(validateValues(T, {})).toEqual([]);
    expect(validateValues(T, { who: 'Ann', n: '4', x: 2.5, mode: 'full' })).toEqual([]);
  });

  it('gives clear problems per parameter', () => {
    const p = validateValues(T, { who: 'x'.repeat(81), n: 11, x: 0.3, mode: 'slow', nope: 1 });
    expect(problemsByParameter(p)).toEqual({
      who: ['Who must be at most 80 characters'],
      n: ['Count must be at most 10'],
      x: ['Energy must be 0 plus a multiple of 0.5'],
      mode: ['Mode must be one of fast, full'],
      nope: ['nope is not a parameter of greet'],
    });
    expect(problemsByParameter(validateValues(T, { n: 'abc', x: -1 }))).toEqual({
      n: ['Count must be a number'],
      x: ['Energy must be at least 0'],
    });
    expect(validateValues(T, { n: 2.5 })).toEqual([{ parameter: 'n', message: 'Count must be a whole number' }]);
    const req: AppTemplate = { ...T, parameters: [{ name: 'who', label: 'Who', type: 'string' }], jdl: '[ Executable = {{who}}; ]' };
    expect(validateValues(req, { who: '' })).toEqual([{ parameter: 'who', message: 'Who is required' }]);
  });

  it('refuses line breaks and control characters in strings', () => {
    expect(validateValues(T, { who: 'a\nb' })).toEqual([
      { parameter: 'who', message: 'Who must not contain line breaks or control characters' },
    ]);
  });

  it('checks file parameters as sandbox references', () => {
    const f: AppTemplate = {
      ...T,
      parameters: [{ name: 'in', label: 'Input', type: 'file' }],
      jdl: '[ Executable = "x"; InputSandbox = { {{in}} }; ]',
    };
    expect(validateValues(f, {})).toEqual([{ parameter: 'in', message: 'Input is required' }]);
    expect(validateValues(f, { in: '/etc/passwd' })[0]?.message).toBe('Input must be an uploaded file (SB:<sha256>)');
    const jdl = renderJdl(f, { in: `SB:${'a'.repeat(64)}` });
    expect(describeJobs(jdl, ID, DEFAULT_JOB_LIMITS)[0]!.inputSandbox).toEqual([`SB:${'a'.repeat(64)}`]);
  });
});

describe('renderJdl', () => {
  it('renders numbers as numbers, strings quoted, and adds the resources', () => {
    const text = renderJdl(T, { who: 'Ann', n: '4', x: 2.5, mode: 'full' });
    const ad = parseJdl(text);
    expect(getAttribute(ad, 'Arguments')?.value).toBe('Hello Ann x=2.5');
    expect(getAttribute(ad, 'JobName')?.value).toBe('Ann');
    expect(getAttribute(ad, 'Mode')?.value).toBe('full');
    expect(getAttribute(ad, 'Count')?.value).toBe(4);
    expect(getAttribute(ad, 'Energy')?.value).toBe(2.5);
    expect(getAttribute(ad, 'CPUTime')?.value).toBe(900);
    expect(getAttribute(ad, 'NumberOfProcessors')?.value).toBe(2);
    expect(getAttribute(ad, 'MaxRAM')?.value).toBe(2048);
    expect(getAttribute(ad, 'Tags')?.value).toEqual(['gpu-free']);
    const [job] = describeJobs(text, ID, DEFAULT_JOB_LIMITS);
    expect(job!.requirements.ramMb).toBe(2048);
  });

  it('keeps a resource the template sets itself', () => {
    const t: AppTemplate = { ...T, jdl: T.jdl.replace('Count =', 'CPUTime = 60;\n  Count =') };
    expect(getAttribute(parseJdl(renderJdl(t, {})), 'CPUTime')?.value).toBe(60);
  });

  it('cannot be injected: quotes, brackets, semicolons and backslashes stay inside the string', () => {
    const attacks = ['x"; Owner = "mallory', 'x"]; [ Executable = "/bin/rm', 'a\\" ; CPUTime = 1; B = "', '\\', '{{n}}', '"]'];
    for (const who of attacks) {
      const text = renderJdl(T, { who });
      const ad = parseJdl(text);
      expect(getAttribute(ad, 'JobName')?.value, who).toBe(who);
      expect(getAttribute(ad, 'Arguments')?.value, who).toBe(`Hello ${who} x=1.5`);
      expect(ad.attributes.map((a) => a.name).sort()).toEqual([
        'Arguments',
        'CPUTime',
        'Count',
        'Energy',
        'Executable',
        'JobName',
        'MaxRAM',
        'Mode',
        'NumberOfProcessors',
        'Tags',
      ]);
      expect(describeJobs(text, ID, DEFAULT_JOB_LIMITS)[0]!.requirements.owner).toBe('alice');
    }
  });

  it('throws WMS_VALIDATION with a problem per parameter and renders nothing', () => {
    try {
      renderJdl(T, { n: 99, mode: 'x' });
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('WMS_VALIDATION');
      expect((e as { details: { problems: unknown[] } }).details.problems).toEqual([
        { message: 'Count must be at most 10', path: 'n' },
        { message: 'Mode must be one of fast, full', path: 'mode' },
      ]);
    }
  });

  it('renders the sweep as a parametric job of count jobs', () => {
    const sweep = parse(readFileSync(resolve(import.meta.dirname, '../../apps/sweep.yaml'), 'utf8')) as AppTemplate;
    const jobs = describeJobs(renderJdl(sweep, { start: 1, step: 0.5, count: 4, mode: 'full' }), ID, DEFAULT_JOB_LIMITS);
    expect(jobs.map((j) => j.jdl.match(/Arguments = "([^"]*)"/)?.[1])).toEqual([
      'energy=1.0 GeV mode=full (job %j)',
      'energy=1.5 GeV mode=full (job %j)',
      'energy=2.0 GeV mode=full (job %j)',
      'energy=2.5 GeV mode=full (job %j)',
    ]);
  });
});
