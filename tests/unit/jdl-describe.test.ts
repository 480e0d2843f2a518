import { describe, expect, it } from 'vitest';
import { isWmsError, type ErrorCode, type JdlProblem } from '../../core/errors.js';
import { DEFAULT_JOB_LIMITS, type Identity, type JobLimits } from '../../core/job-model.js';
import { describeJobList, describeJobs, getAttribute, parseJdl, type JdlAd } from '../../core/jdl/index.js';

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
    expect([job.priority, job.jobType, job.jobGroup, job.jobName]).toEqual([7, 'Test', 'g1', 'my job']);
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
    expect(invalid('Executable = { "a" };')[0]?.message).toBe('Executable must be a text in double quotes, not a list');
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
    expect(invalid('Executable = "a"; CPUTime = 3600.5;')[0]?.message).toBe('CPUTime must be a whole number, not 3600.5');
    expect(invalid('Executable = "a"; CPUTime = "lots";')[0]?.message).toBe('CPUTime must be a whole number, not "lots"');
  });

  it('checks Priority, JobType and LogLevel', () => {
    const problems = invalid('Executable = "a"; Priority = 11; JobType = "Analysis"; LogLevel = "LOUD";');
    expect(problems.map((p) => p.message)).toEqual([
      'Priority 11 is out of range: it must be between 0 and 10',
      'JobType Analysis is not allowed: use one of User, Test, Hospital',
      'LogLevel LOUD is not allowed: use one of DEBUG, VERBOSE, INFO, WARN, NOTICE, ERROR, ALWAYS, FATAL',
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
    expect(f.message).toBe('Executable is required: name the program or script the job runs at line 1, column 1 (and 1 more)');
  });

  it('refuses an Owner, OwnerGroup or VirtualOrganization other than the submitter', () => {
    const problems = invalid('Executable = "a"; Owner = "bob"; OwnerGroup = "lhcb_prod"; VirtualOrganization = "atlas";');
    expect(problems.map((p) => p.message)).toEqual([
      'Owner in the JDL (bob) differs from the submitter (alice)',
      'OwnerGroup in the JDL (lhcb_prod) differs from the submitter (lhcb_user)',
      'VirtualOrganization in the JDL (atlas) differs from the submitter (lhcb)',
    ]);
    expect(problems[0]).toMatchObject({ line: 1, column: 27, attribute: 'Owner' });
  });

  it('accepts the identity when the JDL repeats it', () => {
    const job = one('Executable = "a"; Owner = "alice"; OwnerGroup = "lhcb_user"; VirtualOrganization = "lhcb";');
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
      expect(invalid('Executable = "a"; OutputSandbox = "LFN:x";')[0]?.attribute).toBe('OutputSandbox');
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
      expect(invalid('Executable = "a"; InputData = { "f1", "LFN:/lhcb//f2", "LFN:x" };').map((p) => p.message)).toEqual([
        "InputData entry LFN:/lhcb//f2 contains '//'",
        'InputData entry f1 is not a logical file name: it must start with LFN:/ or /',
        'InputData entry LFN:x is not a logical file name: it must start with LFN:/ or /',
      ]);
    });

    // DIRAC JobModel.checkNumberOfInputDataFiles: len >= MaxInputData (500) for User jobs only;
    // Test_JobModel.py: 1000 files of a Test job are valid, of a User job invalid.
    it('refuses 500 files for a User job, as DIRAC does, and no count for other job types', () => {
      const files = (n: number) => Array.from({ length: n }, (_, i) => `"/lhcb/f${i}"`).join(', ');
      expect(one(`Executable = "a"; InputData = { ${files(499)} };`).inputData).toHaveLength(499);
      expect(invalid(`Executable = "a";\nInputData = { ${files(500)} };`)).toEqual([
        {
          message: 'InputData lists 500 files: a User job may list at most 499',
          line: 2,
          column: 13,
          attribute: 'InputData',
        },
      ]);
      expect(one(`Executable = "a"; JobType = "Test"; InputData = { ${files(1000)} };`).inputData).toHaveLength(1000);
      // counted once each, as DIRAC's set does
      const twice = `${files(499)}, ${files(499)}`;
      expect(one(`Executable = "a"; InputData = { ${twice} };`).inputData).toHaveLength(499);
      const limits = { ...LIMITS, maxInputData: 3 };
      expect(one('Executable = "a"; InputData = { "/lhcb/1", "/lhcb/2" };', limits).inputData).toHaveLength(2);
      expect(invalid('Executable = "a"; InputData = { "/lhcb/1", "/lhcb/2", "/lhcb/3" };', limits)[0]?.message).toBe(
        'InputData lists 3 files: a User job may list at most 2',
      );
    });

    // DIRAC JobModel.checkLFNMatchesREGEX; Test_JobModel.py test_rootInputDataValidator_*.
    it("refuses InputData outside LFN:/<vo>/ of the submitter's VO, naming each file", () => {
      const job = one('Executable = "a"; InputData = { "  /lhcb/1", "LFN:/lhcb/2", "   " };');
      expect(job.inputData).toEqual(['LFN:/lhcb/1', 'LFN:/lhcb/2']);
      expect(invalid('Executable = "a";\nInputData = { "/lhcb/1", "LFN:/atlas/2", "/lhcb", "LFN:/lhcbx/3" };')).toEqual(
        ['LFN:/atlas/2', 'LFN:/lhcb', 'LFN:/lhcbx/3'].map((lfn) => ({
          message: `InputData entry ${lfn} is outside the files of VO lhcb: it must start with LFN:/lhcb/`,
          line: 2,
          column: 13,
          attribute: 'InputData',
        })),
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

    // JobScheduling.__getSitesRequired drops ANY (any case) and empty entries.
    it('drops ANY from a list with real sites; only ANY alone leaves the job open', () => {
      const job = one('Executable = "a"; Site = { "LCG.CERN.cern", "ANY" };');
      expect([job.site, job.requirements.sites]).toEqual(['LCG.CERN.cern', ['LCG.CERN.cern']]);
      expect(job.requirements.tags).toEqual([]);
      const two = one('Executable = "a"; Site = { "any", "", "S1", "Any", "S2" };');
      expect([two.site, two.requirements.sites]).toEqual(['Multiple', ['S1', 'S2']]);
      expect(one('Executable = "a"; Site = "S1, ANY";').requirements.sites).toEqual(['S1']);
      for (const open of ['"any"', '"ANY"', '{ "ANY", "" }', '{ "Any", "aNy" }', '""']) {
        const free = one(`Executable = "a"; Site = ${open};`);
        expect([free.site, free.requirements.sites], open).toEqual(['ANY', []]);
      }
    });

    it('refuses a Site whose only real site is banned, even with ANY beside it', () => {
      expect(invalid('Executable = "a";\nSite = { "LCG.CERN.cern", "ANY" };\nBannedSites = "LCG.CERN.cern";')).toEqual([
        {
          message: 'every site in Site is also in BannedSites: the job could run nowhere',
          line: 2,
          column: 8,
          attribute: 'Site',
        },
      ]);
      // BannedSite (singular) as JobScheduling reads it when BannedSites is absent
      expect(invalid('Executable = "a"; Site = "S1"; BannedSite = "S1";')[0]?.message).toBe(
        'every site in Site is also in BannedSite: the job could run nowhere',
      );
      expect(one('Executable = "a"; Site = { "S1", "S2" }; BannedSite = "S1";').requirements).toMatchObject({
        sites: ['S2'],
        bannedSites: ['S1'],
      });
      // banning is exact in case, as DIRAC's set difference
      expect(one('Executable = "a"; Site = "S1"; BannedSites = "s1";').requirements.sites).toEqual(['S1']);
    });

    it('splits comma-separated names in a single string', () => {
      const job = one('Executable = "a"; Site = "S1, S2"; Tags = "b,a";');
      expect(job.requirements.sites).toEqual(['S1', 'S2']);
      expect(job.requirements.tags).toEqual(['a', 'b']);
    });

    it('removes BannedSites from Site', () => {
      const job = one('Executable = "a"; Site = { "S1", "S2", "S3" }; BannedSites = { "S2", "S3", "S9" };');
      expect(job.site).toBe('S1');
      expect(job.requirements.sites).toEqual(['S1']);
      expect(job.requirements.bannedSites).toEqual(['S2', 'S3', 'S9']);
    });

    it('refuses a Site list that BannedSites empties', () => {
      expect(invalid('Executable = "a";\nSite = { "S1", "S2" };\nBannedSites = { "S2", "S1" };')).toEqual([
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
      expect([job.site, job.requirements.sites, job.requirements.bannedSites]).toEqual(['ANY', [], ['S2']]);
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

    // JobScheduling._getTagsFromManifest; Test_Executor.py test__getTagsFromManifest.
    it('tags ranges and minimums as JobScheduling does', () => {
      expect(req('MinNumberOfProcessors = 2; MaxNumberOfProcessors = 8;')).toMatchObject({
        processors: 2,
        tags: ['2Processors', 'MultiProcessor'],
      });
      expect(req('MinNumberOfProcessors = 4; MaxNumberOfProcessors = 12;')).toMatchObject({
        processors: 4,
        tags: ['4Processors', 'MultiProcessor'],
      });
      expect(req('MinNumberOfProcessors = 4;')).toMatchObject({
        processors: 4,
        tags: ['4Processors', 'MultiProcessor'],
      });
      // a maximum alone is minimum 1 (DIRAC's API: setNumberOfProcessors(maxNumberOfProcessors=8)
      // writes Min 1 and Max 8); DIRAC's JobScheduling gives a hand-written Max alone no tag
      expect(req('MaxNumberOfProcessors = 8;')).toMatchObject({
        processors: 1,
        tags: ['MultiProcessor'],
      });
      expect(req('MaxNumberOfProcessors = 8;')).toEqual(req('MinNumberOfProcessors = 1; MaxNumberOfProcessors = 8;'));
      expect(req('MaxNumberOfProcessors = 1;')).toMatchObject({ processors: 1, tags: [] });
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
      expect(invalid('Executable = "a"; WholeNode = "maybe";')[0]?.message).toBe('WholeNode must be yes or no (true/false, 1/0)');
    });

    it('refuses counts out of range and max below min', () => {
      expect(invalid('Executable = "a"; NumberOfProcessors = 2000;').map((p) => p.message)).toEqual([
        'NumberOfProcessors 2000 is out of range: it must be between 1 and 1024',
      ]);
      expect(invalid('Executable = "a"; MinNumberOfProcessors = 0; MaxNumberOfProcessors = 1025;').map((p) => p.message)).toEqual([
        'MinNumberOfProcessors 0 is out of range: it must be between 1 and 1024',
        'MaxNumberOfProcessors 1025 is out of range: it must be between 1 and 1024',
      ]);
      expect(invalid('Executable = "a"; NumberOfProcessors = 0;')[0]?.message).toBe(
        'NumberOfProcessors 0 is out of range: it must be between 1 and 1024',
      );
      expect(invalid('Executable = "a"; MinNumberOfProcessors = 8; MaxNumberOfProcessors = 2;')).toEqual([
        {
          message: 'MaxNumberOfProcessors 2 is smaller than MinNumberOfProcessors 8',
          line: 1,
          column: 70,
          attribute: 'MaxNumberOfProcessors',
        },
      ]);
      expect(invalid('Executable = "a"; MaxNumberOfProcessors = 1; MinNumberOfProcessors = 2;')[0]?.message).toBe(
        'MaxNumberOfProcessors 1 is smaller than MinNumberOfProcessors 2',
      );
    });

    // JDL.py jdlToBaseJobDescriptionModel: NumberOfProcessors sets min and max and removes the
    // other two unread; Test_Executor.py: {NumberOfProcessors 4, MinNumberOfProcessors 2} and
    // {NumberOfProcessors 4, MaxNumberOfProcessors 12} both give 4Processors and MultiProcessor.
    it('lets NumberOfProcessors win over Min and Max, which are then not read', () => {
      for (const rest of [
        'MinNumberOfProcessors = 2;',
        'MaxNumberOfProcessors = 12;',
        'MinNumberOfProcessors = 2; MaxNumberOfProcessors = 8;',
        'MinNumberOfProcessors = 8; MaxNumberOfProcessors = 2;',
        'MinNumberOfProcessors = "junk"; MaxNumberOfProcessors = 5000;',
      ]) {
        expect(req(`NumberOfProcessors = 4; ${rest}`), rest).toMatchObject({
          processors: 4,
          tags: ['4Processors', 'MultiProcessor'],
        });
      }
      expect(req('NumberOfProcessors = 1; MinNumberOfProcessors = 4;')).toMatchObject({ processors: 1, tags: [] });
    });
  });

  describe('memory and GPUs', () => {
    const req = (body: string) => one(`Executable = "a"; ${body}`).requirements;

    // JobScheduling: tag "%dGB" % MaxRAM (Test_Executor.py: MaxRAM 2 gives 2GB); Matcher: a
    // resource of R MB offers 2GB .. int(R / 1000)GB.
    it('reads MaxRAM below 256 as GB of 1000 MB and from 256 as MB, with the GB tag', () => {
      expect(req('MaxRAM = 2;')).toMatchObject({ ramMb: 2000, tags: ['2GB'] });
      expect(req('MaxRAM = 4;')).toMatchObject({ ramMb: 4000, tags: ['4GB'] });
      expect(req('MaxRAM = 255;')).toMatchObject({ ramMb: 255_000, tags: ['255GB'] });
      expect(req('MaxRAM = 256;')).toMatchObject({ ramMb: 256, tags: [] });
      expect(req('MaxRAM = 8000;')).toMatchObject({ ramMb: 8000, tags: ['8GB'] });
      expect(req('MaxRAM = 2500;')).toMatchObject({ ramMb: 2500, tags: ['2GB'] });
      expect(req('MaxRAM = 1999;')).toMatchObject({ ramMb: 1999, tags: [] });
      // DIRAC makes a 1GB tag no resource offers: such a job would never run
      expect(req('MaxRAM = 1;')).toMatchObject({ ramMb: 1000, tags: [] });
      expect(req('MaxRAM = 0;')).toMatchObject({ ramMb: 0, tags: [] });
      // the ladder stops at 1024 GB: above, the number alone decides
      expect(req('MaxRAM = 1024999;')).toMatchObject({ ramMb: 1_024_999, tags: ['1024GB'] });
      expect(req('MaxRAM = 1025000;')).toMatchObject({ ramMb: 1_025_000, tags: [] });
      expect(req('MaxRAM = 16000; NumberOfProcessors = 8; Tags = "GPU";').tags).toEqual(['16GB', '8Processors', 'GPU', 'MultiProcessor']);
      expect(req('').ramMb).toBe(0);
      expect(invalid('Executable = "a"; MaxRAM = -1;')[0]?.message).toBe('MaxRAM -1 must not be negative');
    });

    it('reads NumberOfGPUs or GPUs', () => {
      expect(req('').gpus).toBe(0);
      expect(req('NumberOfGPUs = 2;').gpus).toBe(2);
      expect(req('GPUs = 1;').gpus).toBe(1);
      expect(invalid('Executable = "a"; NumberOfGPUs = -1;')[0]?.message).toBe('NumberOfGPUs -1 must not be negative');
      expect(invalid('Executable = "a"; NumberOfGPUs = 1; GPUs = 2;')[0]?.message).toBe(
        'GPUs 2 differs from NumberOfGPUs 1: give only one',
      );
    });
  });

  it('passes syntax and placeholder errors through', () => {
    expect(failure(() => describeJobs('Executable = "a', ALICE, LIMITS)).code).toBe('WMS_JDL_SYNTAX');
    const f = failure(() => describeJobs('Executable = "a";\nParameters = { 1, 2 };\nParameters.x = { 1 };', ALICE, LIMITS));
    expect(f.code).toBe('WMS_JDL_PARAMETRIC');
    expect(f.problems[0]?.line).toBeGreaterThan(1);
    // % in a JDL that is not parametric is text
    expect(one('Executable = "a"; Arguments = "date +%Y %s";').arguments).toBe('date +%Y %s');
  });
});

describe('describeJobs: parametric', () => {
  it('describes each job with its values', () => {
    const jobs = describeJobs(
      'Executable = "run.sh"; Arguments = "%s"; JobName = "scan_%n"; Parameters = 3; ParameterStart = 10; ParameterStep = 5;',
      ALICE,
      LIMITS,
    );
    expect(jobs.map((j) => [j.arguments, j.jobName, j.parametric?.number, String(j.parametric?.values['Parameter'])])).toEqual([
      ['10', 'scan_0', 0, '10'],
      ['15', 'scan_1', 1, '15'],
      ['20', 'scan_2', 2, '20'],
    ]);
    const stored = parseJdl(jobs[2]!.jdl);
    expect(getAttribute(stored, 'Parameters')).toBeUndefined();
    expect(getAttribute(stored, 'ParameterStart')).toBeUndefined();
    expect(String(getAttribute(stored, 'Parameter')?.value)).toBe('20');
    expect(getAttribute(stored, 'ParameterNumber')?.value).toBe(2);
    expect(getAttribute(getAttribute(stored, 'JobRequirements')?.value as JdlAd, 'Owner')?.value).toBe('alice');
  });

  it('lists a problem shared by every job once, and names the jobs of the others', () => {
    const problems = invalid('Executable = "a";\nCPUTime = "%s";\nPriority = 20;\nParameters = { 50, 1000, 50, 60 };');
    const cpu = { line: 2, column: 11, attribute: 'CPUTime' };
    expect(problems).toEqual([
      {
        ...cpu,
        message: 'parametric jobs 0, 2: CPUTime 50 is out of range: it must be between 100 and 500000',
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
    const jobs = describeJobs('Executable = "a"; Arguments = "%n"; Parameters = 10000;', ALICE, LIMITS);
    expect(jobs).toHaveLength(10_000);
    expect(jobs[9999]!.arguments).toBe('9999');
    const f = failure(() => describeJobs('Executable = "a"; Parameters = 10001;', ALICE, LIMITS));
    expect(f.code).toBe('WMS_JDL_PARAMETRIC');
    expect(f.problems[0]?.message).toContain('more than the limit of 10000 jobs');
  });

  it('also caps a parametric JDL at maxJobsPerSubmission', () => {
    const limits = { ...LIMITS, maxJobsPerSubmission: 5 };
    expect(failure(() => describeJobs('Executable = "a"; Parameters = 6;', ALICE, limits)).problems[0]?.message).toBe(
      'Parameters would make 6 jobs, more than the limit of 5 jobs per submission',
    );
  });
});

describe('describeJobList', () => {
  it('describes every plain JDL', () => {
    const jobs = describeJobList(['Executable = "a";', 'Executable = "b"; CPUTime = 100;'], ALICE, LIMITS);
    expect(jobs.map((j) => [j.executable, j.cpuTime, j.parametric])).toEqual([
      ['a', 86_400, null],
      ['b', 100, null],
    ]);
  });

  it('expands parametric JDLs in the list, in order', () => {
    const jobs = describeJobList(
      [
        'Executable = "a";',
        'Executable = "b"; Arguments = "%s"; Parameters = { "x", "y" };',
        'Executable = "c"; Arguments = "%n"; Parameters = 3;',
      ],
      ALICE,
      LIMITS,
    );
    expect(jobs.map((j) => [j.executable, j.arguments, j.parametric?.number ?? null])).toEqual([
      ['a', null, null],
      ['b', 'x', 0],
      ['b', 'y', 1],
      ['c', '0', 0],
      ['c', '1', 1],
      ['c', '2', 2],
    ]);
  });

  it('labels problems of parametric JDLs with the JDL and the job numbers', () => {
    const f = failure(() =>
      describeJobList(
        [
          'Executable = "a";',
          'Executable = "b";\nCPUTime = "%s";\nParameters = { 50, 1000, 50 };',
          'Executable = "c";\nPriority = 20;\nParameters = 2;',
        ],
        ALICE,
        LIMITS,
      ),
    );
    expect(f.code).toBe('WMS_JDL_INVALID');
    expect(f.problems).toEqual([
      {
        message: 'JDL #2: parametric jobs 0, 2: CPUTime 50 is out of range: it must be between 100 and 500000',
        line: 2,
        column: 11,
        attribute: 'CPUTime',
      },
      {
        message: 'JDL #3: Priority 20 is out of range: it must be between 0 and 10',
        line: 2,
        column: 12,
        attribute: 'Priority',
      },
    ]);
    expect(f.problems.length).toBe(2);
  });

  it('bounds the jobs of the whole list by maxJobsPerSubmission', () => {
    const limits = { ...LIMITS, maxJobsPerSubmission: 5 };
    expect(describeJobList(['Executable = "a"; Parameters = 3;', 'Executable = "b"; Parameters = 2;'], ALICE, limits)).toHaveLength(5);
    const f = failure(() =>
      describeJobList(
        ['Executable = "a"; Parameters = 3;', 'Executable = "b";\nParameters = 3;', 'Executable = "c"; Parameters = 4;', 'Executable = "d'],
        ALICE,
        limits,
      ),
    );
    expect(f.problems).toEqual([
      {
        message: 'JDL #2: the JDLs up to this one make 6 jobs, more than the limit of 5 jobs per submission',
        line: 2,
        column: 14,
        attribute: 'Parameters',
      },
      // the JDLs after the limit are still parsed
      { message: 'JDL #4: unclosed string: missing closing "', line: 1, column: 14 },
    ]);
    expect(f.code).toBe('WMS_JDL_SYNTAX');
    // one parametric JDL over the limit is refused by its own expansion
    expect(failure(() => describeJobList(['Executable = "a"; Parameters = 6;'], ALICE, limits)).problems[0]?.message).toBe(
      'JDL #1: Parameters would make 6 jobs, more than the limit of 5 jobs per submission',
    );
    // plain JDLs count one each
    expect(
      failure(() => describeJobList(['Executable = "a"; Parameters = 5;', 'Executable = "b";'], ALICE, limits)).problems[0],
    ).toMatchObject({
      message: 'JDL #2: the JDLs up to this one make 6 jobs, more than the limit of 5 jobs per submission',
      line: 1,
      column: 1,
    });
  });

  it('reports a parametric error of one JDL with its label and the gravest code', () => {
    const f = failure(() =>
      describeJobList(['Executable = "a"; CPUTime = 1;', 'Executable = "b"; Parameters = { 1 }; Parameters.x = { 1, 2 };'], ALICE, LIMITS),
    );
    expect(f.code).toBe('WMS_JDL_PARAMETRIC');
    expect(f.problems[0]?.message).toBe('JDL #1: CPUTime 1 is out of range: it must be between 100 and 500000');
    expect(f.problems[1]?.message).toMatch(/^JDL #2: /);
  });

  it('collects the problems of every JDL, numbered from 1', () => {
    const f = failure(() => describeJobList(['Executable = "a"; CPUTime = 1;', 'Executable = "ok";', 'Arguments = "x";'], ALICE, LIMITS));
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
    const f = failure(() => describeJobList(['Arguments = "x";', 'Executable = "b'], ALICE, LIMITS));
    expect(f.code).toBe('WMS_JDL_SYNTAX');
    expect(f.problems.map((p) => p.message)).toEqual([
      'JDL #1: Executable is required: name the program or script the job runs',
      'JDL #2: unclosed string: missing closing "',
    ]);
    expect(f.problems[1]).toMatchObject({ line: 1, column: 14 });
  });

  it('keeps % as text in the plain JDLs of a list', () => {
    expect(describeJobList(['Executable = "a"; Arguments = "%n";'], ALICE, LIMITS)[0]?.arguments).toBe('%n');
  });

  it('refuses an empty list and more JDLs than maxJobsPerSubmission', () => {
    expect(failure(() => describeJobList([], ALICE, LIMITS)).problems[0]?.message).toBe('the list of JDLs is empty');
    const limits = { ...LIMITS, maxJobsPerSubmission: 2 };
    expect(describeJobList(['Executable = "a";', 'Executable = "b";'], ALICE, limits)).toHaveLength(2);
    const f = failure(() => describeJobList(['Executable = "a";', 'Executable = "b";', 'Executable = "c";'], ALICE, limits));
    expect(f.code).toBe('WMS_JDL_INVALID');
    expect(f.problems[0]?.message).toBe('3 JDLs in one submission, more than the limit of 2');
  });
});

// DIRAC reads CPUTime, Priority and the processor counts with ClassAd.getAttributeInt
// (ClassAdLight.py: int() of the text with its quotes removed; None when int() fails), then
// JobDescriptionModel refuses None and values out of bounds (JobModel.py, Test_JobModel.py).
describe('whole numbers as DIRAC reads them', () => {
  const cpu = (spelled: string) => describeJobs(`Executable = "a";\nCPUTime = ${spelled};`, ALICE, LIMITS)[0]!.cpuTime;

  it('accepts digits, quoted or not, with blanks around, a sign, or _ between digits', () => {
    expect(cpu('3600')).toBe(3600);
    expect(cpu('"3600"')).toBe(3600);
    expect(cpu('" 3600 "')).toBe(3600);
    expect(cpu('+3600')).toBe(3600);
    expect(cpu('"3_600"')).toBe(3600);
    expect(one('Executable = "a"; Priority = "-0";').priority).toBe(0);
    // stored as the number it is
    expect(one('Executable = "a"; CPUTime = " 3600 ";').jdl).toContain('  CPUTime = 3600;\n');
  });

  it('refuses a decimal point, an exponent or a fraction, at the value, with the digits to write', () => {
    for (const [spelled, message] of [
      ['3600.0', 'CPUTime must be a whole number, not 3600.0: write 3600 (digits only, as DIRAC reads it)'],
      ['1e3', 'CPUTime must be a whole number, not 1e3: write 1000 (digits only, as DIRAC reads it)'],
      ['1E3', 'CPUTime must be a whole number, not 1E3: write 1000 (digits only, as DIRAC reads it)'],
      ['3600.5', 'CPUTime must be a whole number, not 3600.5'],
      ['"3600.0"', 'CPUTime must be a whole number, not "3600.0"'],
      ['"1e3"', 'CPUTime must be a whole number, not "1e3"'],
      ['"36 00"', 'CPUTime must be a whole number, not "36 00"'],
      ['"3__600"', 'CPUTime must be a whole number, not "3__600"'],
      ['""', 'CPUTime must be a whole number, not ""'],
      ['true', 'CPUTime must be a whole number, not true/false'],
      ['{ 3600 }', 'CPUTime must be a whole number, not a list'],
    ]) {
      expect(invalid(`Executable = "a";\nCPUTime = ${spelled};`), spelled).toEqual([
        { message, line: 2, column: 11, attribute: 'CPUTime' },
      ]);
    }
  });

  it('refuses -1 by the bounds, not by the reading', () => {
    expect(invalid('Executable = "a"; CPUTime = -1;')[0]?.message).toBe('CPUTime -1 is out of range: it must be between 100 and 500000');
    expect(invalid('Executable = "a"; Priority = -1;')[0]?.message).toBe('Priority -1 is out of range: it must be between 0 and 10');
    expect(invalid('Executable = "a"; NumberOfProcessors = -1;')[0]?.message).toBe(
      'NumberOfProcessors -1 is out of range: it must be between 1 and 1024',
    );
  });

  it('reads Priority, the processor counts and MaxRAM the same way', () => {
    expect(one('Executable = "a"; Priority = "5";').priority).toBe(5);
    expect(invalid('Executable = "a"; Priority = 5.0;')[0]?.message).toBe(
      'Priority must be a whole number, not 5.0: write 5 (digits only, as DIRAC reads it)',
    );
    expect(one('Executable = "a"; NumberOfProcessors = "4";').requirements.processors).toBe(4);
    expect(invalid('Executable = "a"; NumberOfProcessors = 4.0;')[0]).toMatchObject({
      message: 'NumberOfProcessors must be a whole number, not 4.0: write 4 (digits only, as DIRAC reads it)',
      column: 40,
    });
    expect(invalid('Executable = "a"; MinNumberOfProcessors = 2e0;')[0]?.attribute).toBe('MinNumberOfProcessors');
    expect(invalid('Executable = "a"; MaxRAM = 2.0;')[0]?.message).toBe(
      'MaxRAM must be a whole number, not 2.0: write 2 (digits only, as DIRAC reads it)',
    );
  });

  it('reads the substituted value of a parametric job, not the placeholder', () => {
    const jobs = describeJobs('Executable = "a"; CPUTime = %s; Parameters = { 3600, 7200 };', ALICE, LIMITS);
    expect(jobs.map((j) => j.cpuTime)).toEqual([3600, 7200]);
  });
});

// JobDescriptionModel.checkLogLevelIsValid: upper-cased, must be one of
// gLogger.getAllPossibleLevels() (LogLevels.py); Test_JobModel.py: "debug" is DEBUG, "DEBUGGG" invalid.
describe('LogLevel as JobDescriptionModel reads it', () => {
  const stored = (spelled: string) => getAttribute(parseJdl(one(`Executable = "a"; LogLevel = ${spelled};`).jdl), 'LogLevel')?.value;

  it("accepts DIRAC's levels in any case and stores them in upper case", () => {
    expect(stored('"debug"')).toBe('DEBUG');
    expect(stored('"Notice"')).toBe('NOTICE');
    expect(stored('verbose')).toBe('VERBOSE');
    expect(stored('"ALWAYS"')).toBe('ALWAYS');
    expect(getAttribute(parseJdl(one('Executable = "a";').jdl), 'LogLevel')?.value).toBe('INFO');
  });

  it('refuses anything else at the value, WARNING and blanks included', () => {
    for (const spelled of ['"DEBUGGG"', '"WARNING"', '" DEBUG "', '""', '3', '"CRITICAL"']) {
      const problems = invalid(`Executable = "a";\nLogLevel = ${spelled};`);
      expect(problems, spelled).toHaveLength(1);
      expect(problems[0], spelled).toMatchObject({ line: 2, column: 12, attribute: 'LogLevel' });
      expect(problems[0]?.message, spelled).toMatch(
        /^LogLevel .* is not allowed: use one of DEBUG, VERBOSE, INFO, WARN, NOTICE, ERROR, ALWAYS, FATAL$/,
      );
    }
  });
});

// JobDescriptionModel.checkSites: Site entries must be known to the configuration (plus ANY).
describe('sites checked against the registry (options.knownSites)', () => {
  const KNOWN = ['LCG.CERN.ch', 'LCG.RAL.uk', 'DIRAC.Local.local'];
  const withSites = (text: string, knownSites: readonly string[] = KNOWN) =>
    failure(() => describeJobs(text, ALICE, LIMITS, { knownSites }));

  it('accepts registered names and ANY, and anything when no registry is given', () => {
    const job = describeJobs('Executable = "a"; Site = { "LCG.CERN.ch", "ANY", "any" };', ALICE, LIMITS, { knownSites: KNOWN })[0]!;
    expect(job.requirements.sites).toEqual(['LCG.CERN.ch']);
    expect(describeJobs('Executable = "a"; Site = "ANY";', ALICE, LIMITS, { knownSites: [] })[0]!.site).toBe('ANY');
    expect(one('Executable = "a"; Site = "Nowhere.site";').site).toBe('Nowhere.site');
    // banned sites are not checked (DIRAC neither)
    expect(describeJobs('Executable = "a"; BannedSites = "Old.site";', ALICE, LIMITS, { knownSites: KNOWN })).toHaveLength(1);
  });

  it('names an unknown site at the Site value, with a suggestion and the short list', () => {
    const f = withSites('Executable = "a";\nSite = { "LCG.cern.ch", "ANY" };');
    expect(f.code).toBe('WMS_JDL_INVALID');
    expect(f.problems).toEqual([
      {
        message:
          'Site LCG.cern.ch is not a registered site: did you mean LCG.CERN.ch? (registered: DIRAC.Local.local, LCG.CERN.ch, LCG.RAL.uk)',
        line: 2,
        column: 8,
        attribute: 'Site',
      },
    ]);
    expect(withSites('Executable = "a"; Site = "LCG.CERM.ch";').problems[0]?.message).toMatch(
      /^Site LCG.CERM.ch is not a registered site: did you mean LCG.CERN.ch\?/,
    );
    expect(withSites('Executable = "a"; Site = "LCG.RAL.uk.x";').problems[0]?.message).toMatch(/did you mean LCG.RAL.uk\?/);
    // nothing close: no suggestion
    expect(withSites('Executable = "a"; Site = "OSG.Fermilab.us";').problems[0]?.message).toBe(
      'Site OSG.Fermilab.us is not a registered site (registered: DIRAC.Local.local, LCG.CERN.ch, LCG.RAL.uk)',
    );
    // a long registry is not listed
    const many = Array.from({ length: 50 }, (_, i) => `LCG.Site${i}.org`);
    expect(withSites('Executable = "a"; Site = "LCG.Site7.orgg";', many).problems[0]?.message).toBe(
      'Site LCG.Site7.orgg is not a registered site: did you mean LCG.Site7.org?',
    );
    expect(withSites('Executable = "a"; Site = "X";', []).problems[0]?.message).toBe(
      'Site X is not a registered site (no site is registered)',
    );
  });

  it('reports each unknown name once, also for every job of a parametric JDL and in lists', () => {
    const f = withSites('Executable = "a"; Site = { "Bad.one", "LCG.RAL.uk", "Bad.one", "Bad.two" }; Parameters = 50;');
    expect(f.problems.map((p) => p.message.split(' is not')[0])).toEqual(['Site Bad.one', 'Site Bad.two']);
    const list = failure(() =>
      describeJobList(['Executable = "a"; Site = "LCG.CERN.ch";', 'Executable = "b"; Site = "lcg.ral.uk";'], ALICE, LIMITS, {
        knownSites: KNOWN,
      }),
    );
    expect(list.problems).toHaveLength(1);
    expect(list.problems[0]?.message).toMatch(/^JDL #2: Site lcg.ral.uk is not a registered site: did you mean LCG.RAL.uk\?/);
  });

  it('answers thousands of unknown long names against a large registry with capped problems', () => {
    const registry = Array.from({ length: 2000 }, (_, i) => `LCG.${'x'.repeat(200)}${i}.org`);
    const names = Array.from({ length: 3000 }, (_, i) => `"LCG.${'x'.repeat(200)}${i}.orq"`).join(', ');
    const f = withSites(`Executable = "a"; Site = { ${names} };`, registry);
    expect(f.problems).toHaveLength(101);
    expect(f.problems[0]?.message).toMatch(/did you mean LCG\.x+0\.org\?$/);
    expect(f.problems[100]?.message).toBe('2900 more problems not shown');
  });
});
