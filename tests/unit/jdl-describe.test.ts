import { describe, expect, it } from 'vitest';
import { isWmsError, type ErrorCode, type JdlProblem } from '../../core/errors.js';
import { DEFAULT_JOB_LIMITS, type Identity, type JobLimits } from '../../core/job-model.js';
import {
  describeJobList,
  describeJobs,
  getAttribute,
  parseJdl,
  type JdlAd,
} from '../../core/jdl/index.js';

const ALICE: Identity = { owner: 'alice', ownerGroup: 'lhcb_user', vo: 'lhcb' };
const LIMITS: JobLimits = DEFAULT_JOB_LIMITS;

function one(text: string, limits: JobLimits = LIMITS) {
  const jobs = describeJobs(text, ALICE, limits);
  expect(jobs).toHaveLength(1);
  return jobs[0]!;
}

/** The error `run` must throw: its code and problems. */
function failure(run: () => unknown): { code: ErrorCode; problems: JdlProblem[]; message: string } {
  try {
    run();
  } catch (e) {
    if (!isWmsError(e)) throw e;
    return {
      code: e.code,
      problems: (e.details as { problems: JdlProblem[] }).problems,
      message: e.message,
    };
  }
  throw new Error('no error');
}

function invalid(text: string, limits: JobLimits = LIMITS): JdlProblem[] {
  const f = failure(() => describeJobs(text, ALICE, limits));
  expect(f.code).toBe('WMS_JDL_INVALID');
  return f.problems;
}

describe('describeJobs: a plain job', () => {
  it('fills in defaults and computes requirements', () => {
    const job = one('Executable = "bin/run.sh";');
    expect({ ...job, jdl: undefined }).toEqual({
      jdl: undefined,
      executable: 'bin/run.sh',
      arguments: null,
      jobName: 'run.sh',
      jobGroup: 'lhcb',
      jobType: 'User',
      cpuTime: 86_400,
      priority: 1,
      site: 'ANY',
      inputSandbox: [],
      outputSandbox: [],
      inputData: [],
      requirements: {
        owner: 'alice',
        ownerGroup: 'lhcb_user',
        vo: 'lhcb',
        cpuTime: 86_400,
        priority: 1,
        sites: [],
        bannedSites: [],
        gridCEs: [],
        platforms: [],
        jobTypes: ['User'],
        tags: [],
        processors: 1,
        ramMb: 0,
        gpus: 0,
      },
      parametric: null,
    });
  });

  it('writes the canonical JDL with identity, defaults and JobRequirements', () => {
    const job = one(`[
  # analysis job
  Executable = "run.sh";
  Arguments = 42;
  DIRACSetup = "Production";
  OwnerDN = "/DC=ch/CN=alice";
  MyVOField = { "kept", 1 };
  Owner = "alice";
  CPUTime = "36000";
  Site = { "LCG.CERN.cern", "LCG.RAL.uk" };
  BannedSites = "LCG.RAL.uk";
  JobRequirements = [ Owner = "mallory" ];
  Tags = { "GPU", "GPU" };
  Platform = "x86_64-el9";
  GridCE = "ce1.cern.ch";
  LogLevel = "debug";
]`);
    expect(job.jdl).toBe(`[
  Executable = "run.sh";
  Arguments = "42";
  MyVOField = { "kept", 1 };
  Owner = "alice";
  CPUTime = 36000;
  Site = { "LCG.CERN.cern", "LCG.RAL.uk" };
  BannedSites = "LCG.RAL.uk";
  Tags = { "GPU", "GPU" };
  Platform = "x86_64-el9";
  GridCE = "ce1.cern.ch";
  LogLevel = "DEBUG";
  StdOutput = "std.out";
  StdError = "std.err";
  Priority = 1;
  JobType = "User";
  JobGroup = "lhcb";
  JobName = "run.sh";
  OwnerGroup = "lhcb_user";
  VirtualOrganization = "lhcb";
  JobRequirements = [
    OwnerGroup = "lhcb_user";
    Owner = "alice";
    VirtualOrganization = "lhcb";
    CPUTime = 43200;
    UserPriority = 1;
    Sites = { "LCG.CERN.cern" };
    BannedSites = { "LCG.RAL.uk" };
    GridCEs = { "ce1.cern.ch" };
    Platforms = { "x86_64-el9" };
    JobTypes = { "User" };
    Tags = { "GPU" };
  ];
]`);
    expect(job.arguments).toBe('42');
    expect(job.cpuTime).toBe(36_000);
    expect(job.site).toBe('LCG.CERN.cern');
    expect(job.requirements).toMatchObject({
      cpuTime: 43_200,
      sites: ['LCG.CERN.cern'],
      bannedSites: ['LCG.RAL.uk'],
      gridCEs: ['ce1.cern.ch'],
      platforms: ['x86_64-el9'],
      tags: ['GPU'],
    });
    // the stored JDL parses back
    const stored = parseJdl(job.jdl);
    expect(getAttribute(stored, 'DIRACSetup')).toBeUndefined();
    expect(getAttribute(stored, 'OwnerDN')).toBeUndefined();
  });

  it('keeps the given values of the defaulted attributes', () => {
    const job = one(`Executable = "a"; StdOutput = "o.txt"; StdError = "e.txt"; Priority = 7;
JobType = "Test"; JobGroup = "g1"; JobName = "my job";`);
    expect([job.priority, job.jobType, job.jobGroup, job.jobName]).toEqual([
      7,
      'Test',
      'g1',
      'my job',
    ]);
    expect(job.requirements.jobTypes).toEqual(['Test']);
    const stored = parseJdl(job.jdl);
    expect(getAttribute(stored, 'StdOutput')?.value).toBe('o.txt');
    expect(getAttribute(stored, 'StdError')?.value).toBe('e.txt');
  });

  it('keeps %j for the database', () => {
    const job = one('Executable = "a"; OutputSandbox = { "job_%j.log" };');
    expect(job.outputSandbox).toEqual(['job_%j.log']);
    expect(job.jdl).toContain('OutputSandbox = { "job_%j.log" };');
  });
});

describe('describeJobs: validation rules', () => {
  it('requires Executable, at line 1 column 1', () => {
    expect(invalid('Arguments = "x";')).toEqual([
      {
        message: 'Executable is required: name the program or script the job runs',
        line: 1,
        column: 1,
        attribute: 'Executable',
      },
    ]);
  });

  it('refuses an empty or non-text Executable, at the value', () => {
    expect(invalid('Executable = " ";')).toEqual([
      { message: 'Executable must not be empty', line: 1, column: 14, attribute: 'Executable' },
    ]);
    expect(invalid('Executable = { "a" };')[0]?.message).toBe(
      'Executable must be a text in double quotes, not a list',
    );
  });

  it('refuses CPUTime out of range, at the value', () => {
    expect(invalid('Executable = "a";\nCPUTime = 50;')).toEqual([
      {
        message: 'CPUTime 50 is out of range: it must be between 100 and 500000',
        line: 2,
        column: 11,
        attribute: 'CPUTime',
      },
    ]);
    expect(invalid('Executable = "a"; CPUTime = 500001;')[0]?.message).toBe(
      'CPUTime 500001 is out of range: it must be between 100 and 500000',
    );
    expect(invalid('Executable = "a"; CPUTime = 3600.5;')[0]?.message).toBe(
      'CPUTime must be a whole number, not 3600.5',
    );
    expect(invalid('Executable = "a"; CPUTime = "lots";')[0]?.message).toBe(
      'CPUTime must be a whole number, not "lots"',
    );
  });

  it('checks Priority, JobType and LogLevel', () => {
    const problems = invalid(
      'Executable = "a"; Priority = 11; JobType = "Analysis"; LogLevel = "LOUD";',
    );
    expect(problems.map((p) => p.message)).toEqual([
      'Priority 11 is out of range: it must be between 0 and 10',
      'JobType Analysis is not allowed: use one of User, Test, Hospital',
      'LogLevel LOUD is not allowed: use one of DEBUG, VERBOSE, INFO, WARN, WARNING, ERROR, FATAL, ALWAYS, NOTICE',
    ]);
  });

  it('collects every problem at once, in text order', () => {
    const problems = invalid('[\n  CPUTime = 1;\n  Owner = "bob";\n  InputData = { "x" };\n]');
    expect(problems.map((p) => [p.attribute, p.line, p.column])).toEqual([
      ['Executable', 1, 1],
      ['CPUTime', 2, 13],
      ['Owner', 3, 11],
      ['InputData', 4, 15],
    ]);
    const f = failure(() => describeJobs('CPUTime = 1;', ALICE, LIMITS));
    expect(f.message).toBe(
      'Executable is required: name the program or script the job runs at line 1, column 1 (and 1 more)',
    );
  });

  it('refuses an Owner, OwnerGroup or VirtualOrganization other than the submitter', () => {
    const problems = invalid(
      'Executable = "a"; Owner = "bob"; OwnerGroup = "lhcb_prod"; VirtualOrganization = "atlas";',
    );
    expect(problems.map((p) => p.message)).toEqual([
      'Owner in the JDL (bob) differs from the submitter (alice)',
      'OwnerGroup in the JDL (lhcb_prod) differs from the submitter (lhcb_user)',
      'VirtualOrganization in the JDL (atlas) differs from the submitter (lhcb)',
    ]);
    expect(problems[0]).toMatchObject({ line: 1, column: 27, attribute: 'Owner' });
  });

  it('accepts the identity when the JDL repeats it', () => {
    const job = one(
      'Executable = "a"; Owner = "alice"; OwnerGroup = "lhcb_user"; VirtualOrganization = "lhcb";',
    );
    expect(job.requirements.owner).toBe('alice');
  });

  describe('sandboxes and input data', () => {
    it('accepts a single string as a one-element list and drops empty entries', () => {
      const job = one('Executable = "a"; InputSandbox = "a.sh"; OutputSandbox = { "out", "" };');
      expect(job.inputSandbox).toEqual(['a.sh']);
      expect(job.outputSandbox).toEqual(['out']);
      expect(job.jdl).toContain('InputSandbox = { "a.sh" };');
    });

    it('refuses LFN: entries without a leading /', () => {
      expect(invalid('Executable = "a"; InputSandbox = { "ok.sh", "LFN:vo/x.tgz" };')).toEqual([
        {
          message: 'InputSandbox entry LFN:vo/x.tgz is not a valid LFN: write it as LFN:/<path>',
          line: 1,
          column: 34,
          attribute: 'InputSandbox',
        },
      ]);
      expect(invalid('Executable = "a"; OutputSandbox = "LFN:x";')[0]?.attribute).toBe(
        'OutputSandbox',
      );
    });

    it('refuses a list holding something other than texts', () => {
      expect(invalid('Executable = "a"; InputSandbox = { "a", { "b" } };')[0]?.message).toBe(
        'InputSandbox must be a list of texts, e.g. { "a", "b" }, but holds a list',
      );
    });

    it('prefixes /paths with LFN: in InputData', () => {
      const job = one('Executable = "a"; InputData = { "/lhcb/data/f1", "LFN:/lhcb/data/f2" };');
      expect(job.inputData).toEqual(['LFN:/lhcb/data/f1', 'LFN:/lhcb/data/f2']);
      expect(job.jdl).toContain('InputData = { "LFN:/lhcb/data/f1", "LFN:/lhcb/data/f2" };');
    });

    it('refuses InputData that is not an LFN, or contains //', () => {
      expect(
        invalid('Executable = "a"; InputData = { "f1", "LFN:/lhcb//f2", "LFN:x" };').map(
          (p) => p.message,
        ),
      ).toEqual([
        'InputData entry f1 is not a logical file name: it must start with LFN:/ or /',
        "InputData entry LFN:/lhcb//f2 contains '//'",
        'InputData entry LFN:x is not a logical file name: it must start with LFN:/ or /',
      ]);
    });

    it('refuses more than maxInputData files', () => {
      const files = (n: number) => Array.from({ length: n }, (_, i) => `"/lhcb/f${i}"`).join(', ');
      expect(one(`Executable = "a"; InputData = { ${files(500)} };`).inputData).toHaveLength(500);
      expect(invalid(`Executable = "a"; InputData = { ${files(501)} };`)[0]?.message).toBe(
        'InputData lists 501 files, more than the limit of 500',
      );
    });
  });

  describe('sites', () => {
    it('sets site to ANY, the one site, or Multiple', () => {
      expect(one('Executable = "a";').site).toBe('ANY');
      expect(one('Executable = "a"; Site = "LCG.CERN.cern";').site).toBe('LCG.CERN.cern');
      const multi = one('Executable = "a"; Site = { "B.site", "A.site", "B.site" };');
      expect(multi.site).toBe('Multiple');
      expect(multi.requirements.sites).toEqual(['A.site', 'B.site']);
    });

    it('reads ANY as no restriction', () => {
      const job = one('Executable = "a"; Site = { "ANY", "LCG.CERN.cern" };');
      expect([job.site, job.requirements.sites]).toEqual(['ANY', []]);
      expect(one('Executable = "a"; Site = "any";').site).toBe('ANY');
    });

    it('splits comma-separated names in a single string', () => {
      const job = one('Executable = "a"; Site = "S1, S2"; Tags = "b,a";');
      expect(job.requirements.sites).toEqual(['S1', 'S2']);
      expect(job.requirements.tags).toEqual(['a', 'b']);
    });

    it('removes BannedSites from Site', () => {
      const job = one(
        'Executable = "a"; Site = { "S1", "S2", "S3" }; BannedSites = { "S2", "S3", "S9" };',
      );
      expect(job.site).toBe('S1');
      expect(job.requirements.sites).toEqual(['S1']);
      expect(job.requirements.bannedSites).toEqual(['S2', 'S3', 'S9']);
    });

    it('refuses a Site list that BannedSites empties', () => {
      expect(
        invalid('Executable = "a";\nSite = { "S1", "S2" };\nBannedSites = { "S2", "S1" };'),
      ).toEqual([
        {
          message: 'every site in Site is also in BannedSites: the job could run nowhere',
          line: 2,
          column: 8,
          attribute: 'Site',
        },
      ]);
    });

    it('keeps BannedSites alone when no Site is given', () => {
      const job = one('Executable = "a"; BannedSites = "S2";');
      expect([job.site, job.requirements.sites, job.requirements.bannedSites]).toEqual([
        'ANY',
        [],
        ['S2'],
      ]);
    });

    it('merges Tags and Tag', () => {
      const job = one('Executable = "a"; Tags = { "GPU" }; Tag = "cvmfs";');
      expect(job.requirements.tags).toEqual(['GPU', 'cvmfs']);
    });
  });

  describe('processors', () => {
    const req = (body: string) => one(`Executable = "a"; ${body}`).requirements;

    it('defaults to one processor and no tag', () => {
      expect(req('')).toMatchObject({ processors: 1, tags: [] });
      expect(req('NumberOfProcessors = 1;')).toMatchObject({ processors: 1, tags: [] });
    });

    it('tags an exact count above 1', () => {
      expect(req('NumberOfProcessors = 8;')).toMatchObject({
        processors: 8,
        tags: ['8Processors', 'MultiProcessor'],
      });
    });

    it('reads min == max as an exact count', () => {
      expect(req('MinNumberOfProcessors = 4; MaxNumberOfProcessors = 4;')).toMatchObject({
        processors: 4,
        tags: ['4Processors', 'MultiProcessor'],
      });
    });

    it('accepts NumberOfProcessors with an equal Max, as DIRAC writes it', () => {
      expect(req('NumberOfProcessors = 4; MaxNumberOfProcessors = 4;')).toMatchObject({
        processors: 4,
        tags: ['4Processors', 'MultiProcessor'],
      });
    });

    it('tags ranges MultiProcessor', () => {
      expect(req('MinNumberOfProcessors = 2; MaxNumberOfProcessors = 8;')).toMatchObject({
        processors: 2,
        tags: ['MultiProcessor'],
      });
      expect(req('MaxNumberOfProcessors = 8;')).toMatchObject({
        processors: 1,
        tags: ['MultiProcessor'],
      });
      // min without max: "at least min, use everything available"
      expect(req('MinNumberOfProcessors = 1;')).toMatchObject({
        processors: 1,
        tags: ['MultiProcessor'],
      });
      expect(req('MinNumberOfProcessors = 1; MaxNumberOfProcessors = 1;')).toMatchObject({
        processors: 1,
        tags: [],
      });
    });

    it('tags WholeNode for yes-like values only', () => {
      for (const v of ['true', '1', '"yes"', '"Y"', '"TRUE"', '"1"']) {
        expect(req(`WholeNode = ${v};`).tags).toEqual(['MultiProcessor', 'WholeNode']);
      }
      for (const v of ['false', '0', '"no"', '"n"']) {
        expect(req(`WholeNode = ${v};`).tags).toEqual([]);
      }
      expect(invalid('Executable = "a"; WholeNode = "maybe";')[0]?.message).toBe(
        'WholeNode must be yes or no (true/false, 1/0)',
      );
    });

    it('refuses counts out of range, max below min, and exact with a different min or max', () => {
      const problems = invalid(
        'Executable = "a"; NumberOfProcessors = 2000; MinNumberOfProcessors = 0;',
      );
      expect(problems.map((p) => p.message)).toEqual([
        'NumberOfProcessors 2000 is out of range: it must be between 1 and 1024',
        'MinNumberOfProcessors 0 is out of range: it must be between 1 and 1024',
      ]);
      expect(
        invalid('Executable = "a"; MinNumberOfProcessors = 8; MaxNumberOfProcessors = 2;'),
      ).toEqual([
        {
          message: 'MaxNumberOfProcessors 2 is smaller than MinNumberOfProcessors 8',
          line: 1,
          column: 70,
          attribute: 'MaxNumberOfProcessors',
        },
      ]);
      expect(
        invalid(
          'Executable = "a"; NumberOfProcessors = 4; MinNumberOfProcessors = 2; MaxNumberOfProcessors = 8;',
        ).map((p) => p.message),
      ).toEqual([
        'NumberOfProcessors 4 conflicts with MinNumberOfProcessors 2: give either an exact number or a range',
        'NumberOfProcessors 4 conflicts with MaxNumberOfProcessors 8: give either an exact number or a range',
      ]);
    });
  });

  describe('memory and GPUs', () => {
    const req = (body: string) => one(`Executable = "a"; ${body}`).requirements;

    it('reads MaxRAM below 256 as GB and from 256 as MB, with no tag', () => {
      expect(req('MaxRAM = 4;')).toMatchObject({ ramMb: 4096, tags: [] });
      expect(req('MaxRAM = 255;').ramMb).toBe(255 * 1024);
      expect(req('MaxRAM = 256;').ramMb).toBe(256);
      expect(req('MaxRAM = 8000;').ramMb).toBe(8000);
      expect(req('').ramMb).toBe(0);
      expect(invalid('Executable = "a"; MaxRAM = -1;')[0]?.message).toBe(
        'MaxRAM -1 must not be negative',
      );
    });

    it('reads NumberOfGPUs or GPUs', () => {
      expect(req('').gpus).toBe(0);
      expect(req('NumberOfGPUs = 2;').gpus).toBe(2);
      expect(req('GPUs = 1;').gpus).toBe(1);
      expect(invalid('Executable = "a"; NumberOfGPUs = -1;')[0]?.message).toBe(
        'NumberOfGPUs -1 must not be negative',
      );
      expect(invalid('Executable = "a"; NumberOfGPUs = 1; GPUs = 2;')[0]?.message).toBe(
        'GPUs 2 differs from NumberOfGPUs 1: give only one',
      );
    });
  });

  it('passes syntax and placeholder errors through', () => {
    expect(failure(() => describeJobs('Executable = "a', ALICE, LIMITS)).code).toBe(
      'WMS_JDL_SYNTAX',
    );
    const f = failure(() => describeJobs('Executable = "a"; Arguments = "%s";', ALICE, LIMITS));
    expect(f.code).toBe('WMS_JDL_PARAMETRIC');
    expect(f.problems[0]).toMatchObject({ line: 1, column: 31, attribute: 'Arguments' });
  });
});

describe('describeJobs: parametric', () => {
  it('describes each job with its values', () => {
    const jobs = describeJobs(
      'Executable = "run.sh"; Arguments = "%s"; JobName = "scan_%n"; Parameters = 3; ParameterStart = 10; ParameterStep = 5;',
      ALICE,
      LIMITS,
    );
    expect(jobs.map((j) => [j.arguments, j.jobName, j.parametric])).toEqual([
      ['10', 'scan_0', { number: 0, values: { Parameter: 10 } }],
      ['15', 'scan_1', { number: 1, values: { Parameter: 15 } }],
      ['20', 'scan_2', { number: 2, values: { Parameter: 20 } }],
    ]);
    const stored = parseJdl(jobs[2]!.jdl);
    expect(getAttribute(stored, 'Parameters')).toBeUndefined();
    expect(getAttribute(stored, 'ParameterStart')).toBeUndefined();
    expect(getAttribute(stored, 'Parameter')?.value).toBe(20);
    expect(getAttribute(stored, 'ParameterNumber')?.value).toBe(2);
    expect(
      getAttribute(getAttribute(stored, 'JobRequirements')?.value as JdlAd, 'Owner')?.value,
    ).toBe('alice');
  });

  it('lists a problem shared by every job once, and names the jobs of the others', () => {
    const problems = invalid(
      'Executable = "a";\nCPUTime = "%s";\nPriority = 20;\nParameters = { 50, 1000, 50, 60 };',
    );
    const cpu = { line: 2, column: 11, attribute: 'CPUTime' };
    expect(problems).toEqual([
      {
        ...cpu,
        message:
          'parametric jobs 0, 2: CPUTime 50 is out of range: it must be between 100 and 500000',
      },
      {
        ...cpu,
        message: 'parametric job 3: CPUTime 60 is out of range: it must be between 100 and 500000',
      },
      {
        message: 'Priority 20 is out of range: it must be between 0 and 10',
        line: 3,
        column: 12,
        attribute: 'Priority',
      },
    ]);
  });

  it('describes 10,000 jobs and refuses 10,001', () => {
    const started = performance.now();
    const jobs = describeJobs(
      'Executable = "a"; Arguments = "%n"; Parameters = 10000;',
      ALICE,
      LIMITS,
    );
    expect(performance.now() - started).toBeLessThan(2000);
    expect(jobs).toHaveLength(10_000);
    expect(jobs[9999]!.arguments).toBe('9999');
    const f = failure(() => describeJobs('Executable = "a"; Parameters = 10001;', ALICE, LIMITS));
    expect(f.code).toBe('WMS_JDL_PARAMETRIC');
    expect(f.problems[0]?.message).toContain('more than the limit of 10000 jobs');
  });

  it('also caps a parametric JDL at maxJobsPerSubmission', () => {
    const limits = { ...LIMITS, maxJobsPerSubmission: 5 };
    expect(
      failure(() => describeJobs('Executable = "a"; Parameters = 6;', ALICE, limits)).problems[0]
        ?.message,
    ).toBe('Parameters would make 6 jobs, more than the limit of 5 jobs per submission');
  });
});

describe('describeJobList', () => {
  it('describes every plain JDL', () => {
    const jobs = describeJobList(
      ['Executable = "a";', 'Executable = "b"; CPUTime = 100;'],
      ALICE,
      LIMITS,
    );
    expect(jobs.map((j) => [j.executable, j.cpuTime, j.parametric])).toEqual([
      ['a', 86_400, null],
      ['b', 100, null],
    ]);
  });

  it('refuses a parametric JDL in the list, naming it', () => {
    const f = failure(() =>
      describeJobList(
        ['Executable = "a";', 'Executable = "b";', 'Executable = "c";\nParameters = 3;'],
        ALICE,
        LIMITS,
      ),
    );
    expect(f.code).toBe('WMS_JDL_PARAMETRIC');
    expect(f.problems).toEqual([
      {
        message:
          'JDL #3: parametric JDLs cannot be part of a list: submit this one on its own (Parameters makes it parametric)',
        line: 2,
        column: 1,
        attribute: 'Parameters',
      },
    ]);
  });

  it('collects the problems of every JDL, numbered from 1', () => {
    const f = failure(() =>
      describeJobList(
        ['Executable = "a"; CPUTime = 1;', 'Executable = "ok";', 'Arguments = "x";'],
        ALICE,
        LIMITS,
      ),
    );
    expect(f.code).toBe('WMS_JDL_INVALID');
    expect(f.problems).toEqual([
      {
        message: 'JDL #1: CPUTime 1 is out of range: it must be between 100 and 500000',
        line: 1,
        column: 29,
        attribute: 'CPUTime',
      },
      {
        message: 'JDL #3: Executable is required: name the program or script the job runs',
        line: 1,
        column: 1,
        attribute: 'Executable',
      },
    ]);
  });

  it('reports syntax errors with the gravest code', () => {
    const f = failure(() =>
      describeJobList(['Arguments = "x";', 'Executable = "b'], ALICE, LIMITS),
    );
    expect(f.code).toBe('WMS_JDL_SYNTAX');
    expect(f.problems.map((p) => p.message)).toEqual([
      'JDL #1: Executable is required: name the program or script the job runs',
      'JDL #2: unclosed string: missing closing "',
    ]);
    expect(f.problems[1]).toMatchObject({ line: 1, column: 14 });
  });

  it('refuses plain JDLs with parametric placeholders', () => {
    const f = failure(() =>
      describeJobList(['Executable = "a"; Arguments = "%n";'], ALICE, LIMITS),
    );
    expect(f.code).toBe('WMS_JDL_PARAMETRIC');
    expect(f.problems[0]?.message).toMatch(/^JDL #1: unknown placeholder %n in Arguments/);
  });

  it('refuses an empty list and more JDLs than maxJobsPerSubmission', () => {
    expect(failure(() => describeJobList([], ALICE, LIMITS)).problems[0]?.message).toBe(
      'the list of JDLs is empty',
    );
    const limits = { ...LIMITS, maxJobsPerSubmission: 2 };
    expect(describeJobList(['Executable = "a";', 'Executable = "b";'], ALICE, limits)).toHaveLength(
      2,
    );
    const f = failure(() =>
      describeJobList(
        ['Executable = "a";', 'Executable = "b";', 'Executable = "c";'],
        ALICE,
        limits,
      ),
    );
    expect(f.code).toBe('WMS_JDL_INVALID');
    expect(f.problems[0]?.message).toBe('3 JDLs in one submission, more than the limit of 2');
  });
});
