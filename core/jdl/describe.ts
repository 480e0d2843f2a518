/**
 * From JDL text to validated job descriptions: parse, expand parametric jobs, check every
 * attribute against the limits, fill in defaults, and compute each job's requirements (what
 * defines its task queue) and the JDL text to store.
 *
 * Validation collects every problem of every job before it throws, so a user fixes a JDL in one
 * round; a syntax error, or a parametric one, stops at once. The rules are DIRAC's (JobManager's
 * JobDescriptionModel for what is refused, the JobScheduling executor for what a job requires);
 * choices where DIRAC leaves room or is broken:
 *
 * - Whole numbers (`CPUTime`, `Priority`, the processor counts, `MaxRAM`, the GPUs) are read as
 *   DIRAC's getAttributeInt reads them: the value as written, without its quotes, must be what
 *   Python's `int()` takes (digits with an optional sign, blanks around, `_` between digits). So
 *   `"3600"` and `" 3600 "` are 3600; `3600.0`, `1e3` and `3600.5` are refused with a hint to
 *   write digits only. DIRAC ignores a `MaxRAM` it cannot read; we refuse it.
 * - `LogLevel` is one of DIRAC's levels (LOG_LEVELS) in any case, stored in upper case.
 * - `JobName` defaults to the basename of `Executable` (`run.sh` for `"bin/run.sh"`), which says
 *   more in a job listing than DIRAC's fixed `Name`.
 * - `MaxRAM` is a whole number read as MB when it is 256 or more, else as GB of 1000 MB (DIRAC's
 *   JobScheduling reads GB, its Matcher counts a resource's MB in thousands; no sensible job asks
 *   for less than 256 MB or more than 255 GB). It becomes `requirements.ramMb` and the tag
 *   `<k>GB` with k = ramMb / 1000 rounded down, only for k from 2 to 1024: the tags a resource
 *   with that much memory offers (core/matching.ts). DIRAC's `1GB` tag, which no resource offers,
 *   is not made.
 * - Processors: `NumberOfProcessors` wins over `MinNumberOfProcessors`/`MaxNumberOfProcessors`,
 *   which are then not read (as DIRAC). Tags as JobScheduling derives them: `<n>Processors` and
 *   `MultiProcessor` for a count or minimum n > 1, `MultiProcessor` for a range up to more than one
 *   or a minimum without a maximum, `WholeNode` and `MultiProcessor` for `WholeNode = yes`. A
 *   maximum alone means minimum 1 (as DIRAC's Python API documents it), so `MaxNumberOfProcessors
 *   = 8` is `MultiProcessor`, where DIRAC's JobScheduling derives no tag.
 * - A single string in `Site`, `BannedSites`, `GridCE`, `Platform`, `Tags` or `Tag` is split on
 *   commas (`"A, B"` is `{ "A", "B" }`): names there never hold commas, and a user who writes
 *   one string for two sites means two sites. Empty entries in any list attribute are ignored.
 * - `ANY` (any case) and empty entries are dropped from `Site`; only a `Site` of nothing but ANY
 *   leaves the job free to run anywhere (DIRAC's model refuses a lower-case `any`). Site minus
 *   `BannedSites` (or `BannedSite`) that leaves nothing is refused at submission, as DIRAC's
 *   model does; with ANY beside the banned sites DIRAC's model lets it through and its
 *   JobScheduling fails the job later, we refuse it at once.
 * - With `options.knownSites`, every other Site entry must be a registered site (exact case, as
 *   DIRAC); a refusal suggests a close registered name.
 * - `InputData`: entries trimmed and de-duplicated; each must lie in `LFN:/<vo>/` of the
 *   submitter; a `User` job may list fewer than `maxInputData` files (DIRAC refuses 500 with its
 *   default of 500); other job types have no count limit (DIRAC).
 * - With `options.uploadedInputSandbox` (the services, at submission), an `InputSandbox` entry
 *   that is neither `SB:` nor `LFN:` is refused, in each expanded job: DIRAC's WMSClient uploads
 *   such local files before it submits and its services never look at them, so a JDL that still
 *   names one would fail on the worker; we refuse it where the user can still fix it.
 * - A list of JDLs (`describeJobList`) may hold parametric ones, each expanded (DiracX refuses
 *   them in a list); the jobs of the whole list count against `maxJobsPerSubmission`.
 */

import { isWmsError, jdlError, type ErrorCode, type JdlProblem } from '../errors.js';
import { MAX_NAME_LENGTH, MAX_TAGS, type Identity, type JobDescription, type JobLimits, type JobRequirements } from '../job-model.js';
import { closestName } from '../closest-name.js';
import { toCpuSegment } from '../cpu-segments.js';
import { makeAttribute, parseJdl, serializeJdl, shorten, type JdlAd, type JdlAttribute, type JdlValue } from './parser.js';
import { expandParametric, isParametric, resolvePlaceholders } from './parametric.js';

/** What the caller knows beyond the limits. */
export interface DescribeOptions {
  /**
   * The registered site names. When given, every `Site` entry other than ANY must be one of
   * them (exact case); when absent, any name is accepted.
   */
  knownSites?: readonly string[];
  /**
   * At submission: every `InputSandbox` entry must be something a worker can fetch, an uploaded
   * sandbox (`SB:<sha256>`) or a logical file (`LFN:<path>`, `lfn:` as DIRAC spells it too);
   * any other entry (a file of the submitter's computer, a URL) is refused at the InputSandbox
   * value. The clients upload local files first and write `SB:` instead (`wms job submit`, the
   * dashboard's JDL editor), as DIRAC's WMSClient uploads them before it submits. Off by
   * default: a JDL read before its files are uploaded is well formed.
   */
  uploadedInputSandbox?: boolean;
}

/** An InputSandbox entry a worker can fetch: an uploaded sandbox or a logical file (DIRAC's prefixes). */
function isFetchableEntry(entry: string): boolean {
  return /^(?:SB:|LFN:|lfn:)/.test(entry);
}

/**
 * Log levels a job may ask for: DIRAC's (gLogger.getAllPossibleLevels), any case, stored in
 * upper case.
 */
export const LOG_LEVELS: readonly string[] = ['DEBUG', 'VERBOSE', 'INFO', 'WARN', 'NOTICE', 'ERROR', 'ALWAYS', 'FATAL'];

/** Legacy attributes removed from the stored JDL. */
const DROPPED = new Set(['DIRACSetup', 'OwnerDN', 'JobRequirements']);

/** At most this many problems are returned; a summary stands for the rest. */
const MAX_PROBLEMS = 100;

/** Tag ladders stop here, as DIRAC's Matcher does (core/matching.ts). */
const MAX_LADDER = 1024;

/**
 * Describes the jobs of one JDL text: one job, or one per value of a parametric JDL.
 * Pure; no I/O. Throws `WmsError`: `WMS_JDL_SYNTAX` or `WMS_JDL_PARAMETRIC` at the first such
 * error, else `WMS_JDL_INVALID` with every problem of every job (problems shared by all jobs
 * of a parametric JDL are listed once; the others name the jobs they concern).
 */
export function describeJobs(text: string, identity: Identity, limits: JobLimits, options: DescribeOptions = {}): JobDescription[] {
  const context = new Context(identity, limits, options);
  const ad = parseJdl(text);
  const jobs = expand(ad, Math.min(limits.maxParametricJobs, limits.maxJobsPerSubmission));
  const { descriptions, problems } = describeExpanded(jobs, context);
  if (problems.length > 0) throw jdlError('WMS_JDL_INVALID', sortAndCap(problems));
  return descriptions;
}

/**
 * Describes a list of JDLs submitted together (bulk), parametric ones expanded. Every JDL is
 * checked and all problems are thrown together, each message starting with `JDL #<k>: ` where k
 * counts from 1 (then `parametric job <n>: ` for a problem of some jobs of a parametric one).
 * The error code is the gravest kind found: syntax, then parametric, then invalid. All jobs of
 * the list together may number at most `limits.maxJobsPerSubmission`: more JDLs than that are
 * refused before anything is parsed, and once the jobs counted so far pass it, the JDLs after
 * are only parsed (their syntax errors still reported), not expanded.
 */
export function describeJobList(
  texts: readonly string[],
  identity: Identity,
  limits: JobLimits,
  options: DescribeOptions = {},
): JobDescription[] {
  if (texts.length === 0) {
    throw jdlError('WMS_JDL_INVALID', [{ message: 'the list of JDLs is empty', line: 1, column: 1 }]);
  }
  if (texts.length > limits.maxJobsPerSubmission) {
    throw jdlError('WMS_JDL_INVALID', [
      {
        message: `${texts.length} JDLs in one submission, more than the limit of ${limits.maxJobsPerSubmission}`,
        line: 1,
        column: 1,
      },
    ]);
  }

  const context = new Context(identity, limits, options);
  const perJdl = Math.min(limits.maxParametricJobs, limits.maxJobsPerSubmission);
  const descriptions: JobDescription[] = [];
  const problems: JdlProblem[] = [];
  let total = 0;
  let overLimit = false;
  let code: 'WMS_JDL_SYNTAX' | 'WMS_JDL_PARAMETRIC' | 'WMS_JDL_INVALID' = 'WMS_JDL_INVALID';
  const raise = (found: ErrorCode): void => {
    if (found === 'WMS_JDL_SYNTAX' || (found === 'WMS_JDL_PARAMETRIC' && code === 'WMS_JDL_INVALID')) {
      code = found;
    }
  };

  texts.forEach((text, index) => {
    const label = `JDL #${index + 1}`;
    const add = (list: JdlProblem[]) => {
      for (const p of byPosition(list)) problems.push({ ...p, message: `${label}: ${p.message}` });
    };
    try {
      const ad = parseJdl(text);
      if (overLimit) return;
      const jobs = expand(ad, perJdl);
      total += jobs.length;
      if (total > limits.maxJobsPerSubmission) {
        overLimit = true;
        const first = isParametric(ad) ? (ad.attributes.find((a) => a.name.startsWith('Parameters')) as JdlAttribute) : undefined;
        add([
          {
            message: `the JDLs up to this one make ${total} jobs, more than the limit of ${limits.maxJobsPerSubmission} jobs per submission`,
            line: first?.valueLine || 1,
            column: first?.valueColumn || 1,
            ...(first ? { attribute: first.name } : {}),
          },
        ]);
        raise('WMS_JDL_PARAMETRIC');
        return;
      }
      const result = describeExpanded(jobs, context);
      descriptions.push(...result.descriptions);
      add(result.problems);
    } catch (e) {
      if (!isWmsError(e)) throw e;
      const details = e.details as { problems?: JdlProblem[] } | undefined;
      add(details?.problems ?? [{ message: e.message, line: 1, column: 1 }]);
      raise(e.code);
    }
  });

  if (problems.length > 0) throw jdlError(code, capProblems(problems));
  return descriptions;
}

/** One job to describe: the ad with placeholders resolved, and its parametric origin. */
interface Expanded {
  ad: JdlAd;
  parametric: JobDescription['parametric'];
}

/** The jobs of one parsed JDL; throws `WMS_JDL_PARAMETRIC` as expandParametric does. */
function expand(ad: JdlAd, maxParametricJobs: number): Expanded[] {
  const expanded = expandParametric(ad, { maxParametricJobs });
  if (expanded === null) return [{ ad: resolvePlaceholders(ad), parametric: null }];
  return expanded.map((job) => ({
    ad: job.ad,
    parametric: { number: job.number, values: job.values },
  }));
}

/**
 * Describes the jobs of one JDL. A problem found in every job of a parametric JDL is listed
 * once; the others are prefixed with the job numbers they concern.
 */
function describeExpanded(jobs: readonly Expanded[], context: Context): { descriptions: JobDescription[]; problems: JdlProblem[] } {
  const descriptions: JobDescription[] = [];
  const groups = new Map<string, { problem: JdlProblem; jobs: number[] }>();
  for (const job of jobs) {
    const { description, problems } = describeAd(job.ad, context, job.parametric);
    descriptions.push(description);
    for (const p of problems) {
      const key = `${p.line}:${p.column}:${p.attribute ?? ''}:${p.message}`;
      const group = groups.get(key);
      const number = job.parametric?.number ?? 0;
      if (group) group.jobs.push(number);
      else groups.set(key, { problem: p, jobs: [number] });
    }
  }
  const parametric = jobs[0]?.parametric !== null;
  const problems = [...groups.values()].map(({ problem, jobs: numbers }) =>
    !parametric || numbers.length === jobs.length ? problem : { ...problem, message: `${jobsLabel(numbers)}: ${problem.message}` },
  );
  return { descriptions, problems };
}

/** What stays the same for every job of one call: who, the limits, and the site checks. */
class Context {
  readonly sites: SiteChecker | null;
  readonly uploadedInputSandbox: boolean;

  constructor(
    readonly identity: Identity,
    readonly limits: JobLimits,
    options: DescribeOptions,
  ) {
    this.sites = options.knownSites ? new SiteChecker(options.knownSites) : null;
    this.uploadedInputSandbox = options.uploadedInputSandbox ?? false;
  }
}

/**
 * Checks site names against the registry. Answers are remembered (a parametric JDL asks the
 * same question for every job), and suggestions are looked for a bounded number of times, so a
 * JDL of many unknown names costs no more than a few.
 */
class SiteChecker {
  private readonly known: Set<string>;
  private readonly sorted: readonly string[];
  private readonly answers = new Map<string, string | null>();
  private searches = 0;

  /** Names beyond this many unknown ones get no "did you mean". */
  static readonly MAX_SEARCHES = 20;
  /** The registered names are listed when there are at most this many. */
  static readonly MAX_LISTED = 10;

  constructor(known: readonly string[]) {
    this.known = new Set(known);
    this.sorted = [...this.known].sort();
  }

  /** Null when `name` is registered, else the message of the problem. */
  check(name: string): string | null {
    if (this.known.has(name)) return null;
    const remembered = this.answers.get(name);
    if (remembered !== undefined) return remembered;
    let message = `Site ${name} is not a registered site`;
    const suggestion = this.searches < SiteChecker.MAX_SEARCHES ? closestName(name, this.sorted) : undefined;
    this.searches += 1;
    if (suggestion !== undefined) message += `: did you mean ${suggestion}?`;
    if (this.sorted.length === 0) message += ' (no site is registered)';
    else if (this.sorted.length <= SiteChecker.MAX_LISTED) {
      message += ` (registered: ${this.sorted.join(', ')})`;
    }
    this.answers.set(name, message);
    return message;
  }
}

/** Validates one expanded job; never throws for a bad attribute, it returns the problems. */
function describeAd(
  ad: JdlAd,
  context: Context,
  parametric: JobDescription['parametric'],
): { description: JobDescription; problems: JdlProblem[] } {
  const { identity, limits } = context;
  const read = new AttributeReader(ad);
  /** Normalized values to write back, in place or (when absent) appended in this order. */
  const output = new Map<string, JdlValue>();

  // What runs.
  const executable = read.executable();
  const args = read.text('Arguments');
  if (args !== undefined) output.set('Arguments', args);
  for (const [name, fallback] of [
    ['StdOutput', 'std.out'],
    ['StdError', 'std.err'],
  ] as const) {
    output.set(name, read.text(name) ?? fallback);
  }

  // Scheduling (JobType first: the InputData limit depends on it).
  const cpuTime = read.integerInRange('CPUTime', limits.minCpuTime, limits.maxCpuTime) ?? limits.defaultCpuTime;
  const priority = read.integerInRange('Priority', limits.minPriority, limits.maxPriority) ?? limits.defaultPriority;
  const jobType = read.oneOf('JobType', limits.allowedJobTypes, 'User');
  const jobGroup = read.text('JobGroup') ?? identity.vo;
  const jobName = read.text('JobName') ?? (basename(executable) || 'Name');
  for (const [name, value] of [
    ['JobGroup', jobGroup],
    ['JobName', jobName],
  ] as const) {
    if (value.length > MAX_NAME_LENGTH)
      read.problemAt(name, `${name} is ${value.length} characters long, more than the limit of ${MAX_NAME_LENGTH}`);
  }
  const logLevel = read.oneOf('LogLevel', LOG_LEVELS, 'INFO', true);
  output.set('CPUTime', cpuTime);
  output.set('Priority', priority);
  output.set('JobType', jobType);
  output.set('JobGroup', jobGroup);
  output.set('JobName', jobName);
  output.set('LogLevel', logLevel);

  // Files.
  const inputSandbox = read.files('InputSandbox');
  if (context.uploadedInputSandbox) read.fetchable('InputSandbox', inputSandbox);
  const outputSandbox = read.files('OutputSandbox');
  const inputData = read.inputData(identity.vo, jobType === 'User' ? limits.maxInputData : null);
  if (read.get('InputSandbox')) output.set('InputSandbox', inputSandbox);
  if (read.get('OutputSandbox')) output.set('OutputSandbox', outputSandbox);
  if (read.get('InputData')) output.set('InputData', inputData);

  // Where it may run.
  const wantedSites = read.names('Site').filter((s) => s.toUpperCase() !== 'ANY');
  if (context.sites) {
    for (const site of new Set(wantedSites)) {
      const problem = context.sites.check(site);
      if (problem !== null) read.problemAt('Site', problem);
    }
  }
  const bannedName = read.get('BannedSites') || !read.get('BannedSite') ? 'BannedSites' : 'BannedSite';
  const bannedSites = read.names(bannedName);
  const banned = new Set(bannedSites);
  const sites = wantedSites.filter((s) => !banned.has(s));
  if (wantedSites.length > 0 && sites.length === 0) {
    read.problemAt('Site', `every site in Site is also in ${bannedName}: the job could run nowhere`);
  }
  const gridCEs = read.names('GridCE');
  const platforms = read.names('Platform');
  const { processors, tags: processorTags } = read.processors(limits.minProcessors, limits.maxProcessors);
  const { ramMb, tags: ramTags } = read.ram();
  const tags = [...read.names('Tags'), ...read.names('Tag'), ...processorTags, ...ramTags];
  if (new Set(tags).size > MAX_TAGS) read.problemAt('Tags', `Tags lists ${new Set(tags).size} tags, more than the limit of ${MAX_TAGS}`);
  const gpus = read.gpus();

  // Who submits: always the identity; a different value in the JDL is an error.
  for (const [name, expected] of [
    ['Owner', identity.owner],
    ['OwnerGroup', identity.ownerGroup],
    ['VirtualOrganization', identity.vo],
  ] as const) {
    read.sameAs(name, expected);
    output.set(name, expected);
  }

  const requirements: JobRequirements = {
    owner: identity.owner,
    ownerGroup: identity.ownerGroup,
    vo: identity.vo,
    cpuTime: toCpuSegment(cpuTime, limits.cpuSegments),
    priority,
    sites: sortedSet(sites),
    bannedSites: sortedSet(bannedSites),
    gridCEs: sortedSet(gridCEs),
    platforms: sortedSet(platforms),
    jobTypes: [jobType],
    tags: sortedSet(tags),
    processors,
    ramMb,
    gpus,
  };

  const attributes = ad.attributes
    .filter((a) => !DROPPED.has(a.name))
    .map((a) => (output.has(a.name) ? rewritten(a, output.get(a.name) as JdlValue) : a));
  for (const [name, value] of output) {
    if (!read.get(name)) attributes.push(makeAttribute(name, value));
  }
  attributes.push(makeAttribute('JobRequirements', requirementsAd(requirements)));

  const description: JobDescription = {
    jdl: serializeJdl({ attributes }),
    executable,
    arguments: args ?? null,
    jobName,
    jobGroup,
    jobType,
    cpuTime,
    priority,
    site: siteColumn(requirements.sites),
    inputSandbox,
    outputSandbox,
    inputData,
    requirements,
    parametric,
  };
  return { description, problems: read.problems };
}

/** An attribute of the text with a normalized value: its position kept, its spelling dropped. */
function rewritten(a: JdlAttribute, value: JdlValue): JdlAttribute {
  const { source: _spelling, ...rest } = a as Written;
  return { ...rest, value };
}

/** An attribute as the parser reads it: `source` is the value's text as written, when known. */
type Written = JdlAttribute & { source?: string };

/** The `JobRequirements = [ ... ]` sub-ad written into the stored JDL. */
function requirementsAd(r: JobRequirements): JdlAd {
  const attributes: JdlAttribute[] = [
    makeAttribute('OwnerGroup', r.ownerGroup),
    makeAttribute('Owner', r.owner),
    makeAttribute('VirtualOrganization', r.vo),
    makeAttribute('CPUTime', r.cpuTime),
    makeAttribute('UserPriority', r.priority),
  ];
  for (const [name, list] of [
    ['Sites', r.sites],
    ['BannedSites', r.bannedSites],
    ['GridCEs', r.gridCEs],
    ['Platforms', r.platforms],
    ['JobTypes', r.jobTypes],
    ['Tags', r.tags],
  ] as const) {
    if (list.length > 0) attributes.push(makeAttribute(name, [...list]));
  }
  return { attributes };
}

/**
 * Reads typed attribute values from one ad and records a located problem for each value that
 * is missing, of the wrong type or out of range. Problems point at the attribute's value.
 */
class AttributeReader {
  readonly problems: JdlProblem[] = [];
  private readonly byName: Map<string, JdlAttribute>;

  constructor(ad: JdlAd) {
    this.byName = new Map(ad.attributes.map((a) => [a.name, a]));
  }

  get(name: string): JdlAttribute | undefined {
    return this.byName.get(name);
  }

  problemAt(name: string, message: string): void {
    const a = this.get(name);
    this.problems.push({
      message,
      line: a?.valueLine || 1,
      column: a?.valueColumn || 1,
      attribute: name,
    });
  }

  /** `Executable`: required, a non-empty string. '' when it is not usable. */
  executable(): string {
    const a = this.get('Executable');
    if (!a) {
      this.problemAt('Executable', 'Executable is required: name the program or script the job runs');
      return '';
    }
    if (typeof a.value !== 'string') {
      this.problemAt('Executable', `Executable must be a text in double quotes, not ${kindOf(a.value)}`);
      return '';
    }
    if (a.value.trim() === '') {
      this.problemAt('Executable', 'Executable must not be empty');
      return '';
    }
    return a.value;
  }

  /** A string attribute; a number is accepted and written as text. */
  text(name: string): string | undefined {
    const a = this.get(name);
    if (!a) return undefined;
    if (typeof a.value === 'string') return a.value;
    if (typeof a.value === 'number') return String(a.value);
    this.problemAt(name, `${name} must be a text in double quotes, not ${kindOf(a.value)}`);
    return undefined;
  }

  /** A string attribute that must be one of `allowed` (case-insensitively when `anyCase`). */
  oneOf(name: string, allowed: readonly string[], fallback: string, anyCase = false): string {
    const value = this.text(name);
    if (value === undefined) return fallback;
    const wanted = anyCase ? value.toUpperCase() : value;
    const found = allowed.find((v) => (anyCase ? v.toUpperCase() : v) === wanted);
    if (found === undefined) {
      this.problemAt(name, `${name} ${value} is not allowed: use one of ${allowed.join(', ')}`);
      return fallback;
    }
    return found;
  }

  /**
   * A whole number read as DIRAC's getAttributeInt reads it: the value as written, without its
   * quotes, must be what Python's `int()` accepts: optional blanks, an optional sign, digits
   * with single `_` between them. `3600.0`, `1e3` and `3600.5` are not. A number's spelling is
   * its `source` while that still spells the value (a parametric substitution changes the
   * value), else the number itself.
   */
  integer(name: string): number | undefined {
    const a = this.get(name);
    if (!a) return undefined;
    const v = a.value;
    const written = typeof v === 'string' ? v : typeof v === 'number' ? numberSpelling(a, v) : undefined;
    if (written !== undefined && PYTHON_INT.test(written)) {
      return Number(written.replace(/[\s_]/g, '')) + 0;
    }
    const shown = typeof v === 'string' ? `"${v}"` : (written ?? kindOf(v));
    const hint = typeof v === 'number' && Number.isSafeInteger(v) ? `: write ${v} (digits only, as DIRAC reads it)` : '';
    this.problemAt(name, `${name} must be a whole number, not ${shown}${hint}`);
    return undefined;
  }

  integerInRange(name: string, min: number, max: number): number | undefined {
    const v = this.integer(name);
    if (v === undefined) return undefined;
    if (v < min || v > max) {
      this.problemAt(name, `${name} ${v} is out of range: it must be between ${min} and ${max}`);
      return undefined;
    }
    return v;
  }

  /**
   * A list of strings; a single string (or number) is a one-element list. Numbers become
   * text; empty entries are dropped. With `splitCommas`, strings are also split on commas.
   */
  list(name: string, splitCommas = false): string[] {
    const a = this.get(name);
    if (!a) return [];
    const items = Array.isArray(a.value) ? a.value : [a.value];
    const out: string[] = [];
    for (const item of items) {
      if (typeof item !== 'string' && typeof item !== 'number') {
        this.problemAt(name, `${name} must be a list of texts, e.g. { "a", "b" }, but holds ${kindOf(item)}`);
        return [];
      }
      const parts = splitCommas ? String(item).split(',') : [String(item)];
      for (const part of parts) {
        const entry = splitCommas ? part.trim() : part;
        if (entry.trim() !== '') out.push(entry);
      }
    }
    return out;
  }

  /** Names of sites, CEs, platforms or tags: a list, or a comma-separated string. */
  names(name: string): string[] {
    const names = this.list(name, true);
    const long = names.find((n) => n.length > MAX_NAME_LENGTH);
    if (long !== undefined)
      this.problemAt(name, `${name} entry of ${long.length} characters is longer than the limit of ${MAX_NAME_LENGTH}`);
    return names;
  }

  /** `InputSandbox` / `OutputSandbox`: `LFN:` entries must be `LFN:/...`. */
  files(name: string): string[] {
    const files = this.list(name);
    for (const f of files) {
      if (f.startsWith('LFN:') && !f.startsWith('LFN:/')) {
        this.problemAt(name, `${name} entry ${f} is not a valid LFN: write it as LFN:/<path>`);
      }
    }
    return files;
  }

  /** A problem for each entry a worker cannot fetch (`DescribeOptions.uploadedInputSandbox`). */
  fetchable(name: string, entries: readonly string[]): void {
    for (const entry of entries) {
      if (isFetchableEntry(entry)) continue;
      this.problemAt(
        name,
        `${name} entry ${shorten(entry)} is neither an uploaded sandbox (SB:<sha256>) nor a logical file (LFN:<path>), so no worker can read it: upload it with \`wms sandbox put\` or let \`wms job submit\` upload it, then write SB:<sha256>`,
      );
    }
  }

  /**
   * `InputData`: logical file names, trimmed and de-duplicated, `/x` read as `LFN:/x`; each in
   * `LFN:/<vo>/`. With `max` (User jobs), fewer than `max` files: DIRAC refuses `max` itself.
   */
  inputData(vo: string, max: number | null): string[] {
    const lfns: string[] = [];
    for (const entry of this.list('InputData')) {
      if (entry.includes('//')) {
        this.problemAt('InputData', `InputData entry ${entry.trim()} contains '//'`);
        continue;
      }
      const trimmed = entry.trim();
      lfns.push(trimmed.startsWith('/') ? `LFN:${trimmed}` : trimmed);
    }
    const unique = [...new Set(lfns)];
    const home = `LFN:/${vo}/`;
    for (const lfn of unique) {
      if (!lfn.startsWith('LFN:/')) {
        this.problemAt('InputData', `InputData entry ${lfn} is not a logical file name: it must start with LFN:/ or /`);
      } else if (!lfn.startsWith(home)) {
        this.problemAt('InputData', `InputData entry ${lfn} is outside the files of VO ${vo}: it must start with ${home}`);
      }
    }
    if (max !== null && unique.length >= max) {
      this.problemAt('InputData', `InputData lists ${unique.length} files: a User job may list at most ${max - 1}`);
    }
    return unique;
  }

  /**
   * Processor count and the tags it implies (see the module comment). `NumberOfProcessors`,
   * when present, is the count and the other two are not read.
   */
  processors(lo: number, hi: number): { processors: number; tags: string[] } {
    const tags: string[] = [];
    let processors = 1;
    if (this.get('NumberOfProcessors')) {
      const exact = this.integerInRange('NumberOfProcessors', lo, hi);
      if (exact !== undefined) {
        processors = exact;
        if (exact > 1) tags.push(`${exact}Processors`, 'MultiProcessor');
      }
    } else if (this.get('MinNumberOfProcessors') || this.get('MaxNumberOfProcessors')) {
      const min = this.integerInRange('MinNumberOfProcessors', lo, hi);
      const max = this.integerInRange('MaxNumberOfProcessors', lo, hi);
      const low = min ?? 1;
      if (max !== undefined && max < low) {
        this.problemAt('MaxNumberOfProcessors', `MaxNumberOfProcessors ${max} is smaller than MinNumberOfProcessors ${low}`);
      } else {
        processors = low;
        if (low > 1) tags.push(`${low}Processors`, 'MultiProcessor');
        const open = !this.get('MaxNumberOfProcessors');
        if ((open && min !== undefined) || (max !== undefined && max > 1)) tags.push('MultiProcessor');
      }
    }
    if (this.wholeNode()) tags.push('WholeNode', 'MultiProcessor');
    return { processors, tags };
  }

  /** `WholeNode`: yes (1, y, yes, true) or no (0, n, no, false), any case, or a boolean. */
  private wholeNode(): boolean {
    const a = this.get('WholeNode');
    if (!a) return false;
    const v = typeof a.value === 'string' ? a.value.trim().toLowerCase() : a.value;
    if (v === true || v === 1 || v === '1' || v === 'y' || v === 'yes' || v === 'true') return true;
    if (v === false || v === 0 || v === '0' || v === 'n' || v === 'no' || v === 'false' || v === '') return false;
    this.problemAt('WholeNode', 'WholeNode must be yes or no (true/false, 1/0)');
    return false;
  }

  /** `MaxRAM` in MB (see the module comment for the unit rule), 0 when absent, and its tag. */
  ram(): { ramMb: number; tags: string[] } {
    const ram = this.integer('MaxRAM');
    if (ram === undefined) return { ramMb: 0, tags: [] };
    if (ram < 0) {
      this.problemAt('MaxRAM', `MaxRAM ${ram} must not be negative`);
      return { ramMb: 0, tags: [] };
    }
    const ramMb = ram >= 256 ? ram : ram * 1000;
    const gb = Math.floor(ramMb / 1000);
    return { ramMb, tags: gb >= 2 && gb <= MAX_LADDER ? [`${gb}GB`] : [] };
  }

  /** `NumberOfGPUs` (or `GPUs`): a whole number >= 0, default 0. */
  gpus(): number {
    const values: number[] = [];
    for (const name of ['NumberOfGPUs', 'GPUs']) {
      const v = this.integer(name);
      if (v === undefined) continue;
      if (v < 0) this.problemAt(name, `${name} ${v} must not be negative`);
      else values.push(v);
    }
    const [first, second] = values;
    if (first !== undefined && second !== undefined && first !== second) {
      this.problemAt('GPUs', `GPUs ${second} differs from NumberOfGPUs ${first}: give only one`);
    }
    return first ?? 0;
  }

  /** An identity attribute: when present it must equal the submitter's value. */
  sameAs(name: string, expected: string): void {
    const a = this.get(name);
    if (!a) return;
    const given = typeof a.value === 'string' || typeof a.value === 'number' ? String(a.value) : kindOf(a.value);
    if (given !== expected) {
      this.problemAt(name, `${name} in the JDL (${given}) differs from the submitter (${expected})`);
    }
  }
}

/** How number `v` of attribute `a` was written: its `source` when that still spells `v`. */
function numberSpelling(a: JdlAttribute, v: number): string {
  const source = (a as Written).source?.trim();
  return source !== undefined && source !== '' && Number(source) === v ? source : String(v);
}

/** What Python's `int()` accepts (ASCII digits). */
const PYTHON_INT = /^\s*[+-]?\d+(?:_\d+)*\s*$/;

/** Words for a value's type, for messages. */
function kindOf(value: JdlValue): string {
  if (typeof value === 'string') return 'a text';
  if (typeof value === 'number') return 'a number';
  if (typeof value === 'boolean') return 'true/false';
  if (Array.isArray(value)) return 'a list';
  return 'a nested [ ] block';
}

/** DIRAC's Jobs.Site: `ANY` when unrestricted, the site when there is one, else `Multiple`. */
function siteColumn(sites: readonly string[]): string {
  if (sites.length === 0) return 'ANY';
  return sites.length === 1 ? (sites[0] as string) : 'Multiple';
}

function basename(path: string): string {
  return (
    path
      .split('/')
      .filter((part) => part !== '')
      .pop() ?? ''
  );
}

function sortedSet(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}

/** "parametric job 3" or "parametric jobs 0, 1, 2, 3, 4 and 12 more". */
function jobsLabel(jobs: readonly number[]): string {
  if (jobs.length === 1) return `parametric job ${jobs[0]}`;
  const shown = jobs.slice(0, 5).join(', ');
  const more = jobs.length > 5 ? ` and ${jobs.length - 5} more` : '';
  return `parametric jobs ${shown}${more}`;
}

function byPosition(problems: readonly JdlProblem[]): JdlProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.column - b.column);
}

function sortAndCap(problems: JdlProblem[]): JdlProblem[] {
  return capProblems(byPosition(problems));
}

function capProblems(problems: JdlProblem[]): JdlProblem[] {
  if (problems.length <= MAX_PROBLEMS) return problems;
  const rest = problems.length - MAX_PROBLEMS;
  const last = problems[MAX_PROBLEMS - 1] as JdlProblem;
  return [...problems.slice(0, MAX_PROBLEMS), { message: `${rest} more problems not shown`, line: last.line, column: last.column }];
}
