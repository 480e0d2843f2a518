/**
 * From JDL text to validated job descriptions: parse, expand parametric jobs, check every
 * attribute against the limits, fill in defaults, and compute each job's requirements (what
 * defines its task queue) and the JDL text to store.
 *
 * Validation collects every problem of every job before it throws, so a user fixes a JDL in one
 * round; a syntax error, or a parametric one, stops at once. Choices where DIRAC leaves room:
 *
 * - `JobName` defaults to the basename of `Executable` (`run.sh` for `"bin/run.sh"`), which says
 *   more in a job listing than DIRAC's fixed `Name`.
 * - `MaxRAM` is a whole number read as MB when it is 256 or more, else as GB (DIRAC v8 wrote GB,
 *   v9 moved to MB; no sensible job asks for less than 256 MB or more than 255 GB). It becomes
 *   `requirements.ramMb` and adds no tag.
 * - `NumberOfProcessors` together with `MinNumberOfProcessors` or `MaxNumberOfProcessors` is an
 *   error only when the numbers disagree: DIRAC's Python API writes `NumberOfProcessors = n` and
 *   `MaxNumberOfProcessors = n` for an exact count. Min equal to max means that exact count.
 * - A single string in `Site`, `BannedSites`, `GridCE`, `Platform`, `Tags` or `Tag` is split on
 *   commas (`"A, B"` is `{ "A", "B" }`): names there never hold commas, and a user who writes
 *   one string for two sites means two sites. Empty entries in any list attribute are ignored.
 * - `ANY` (any case) anywhere in `Site` means no site restriction.
 */

import { isWmsError, jdlError, type ErrorCode, type JdlProblem } from '../errors.js';
import { MAX_NAME_LENGTH, MAX_TAGS, type Identity, type JobDescription, type JobLimits, type JobRequirements } from '../job-model.js';
import { toCpuSegment } from '../cpu-segments.js';
import {
  makeAttribute,
  parseJdl,
  serializeJdl,
  type JdlAd,
  type JdlAttribute,
  type JdlValue,
} from './parser.js';
import { expandParametric, isParametric, resolvePlaceholders } from './parametric.js';

/** Log levels a job may ask for. */
export const LOG_LEVELS: readonly string[] = [
  'DEBUG',
  'VERBOSE',
  'INFO',
  'WARN',
  'WARNING',
  'ERROR',
  'FATAL',
  'ALWAYS',
  'NOTICE',
];

/** Legacy attributes removed from the stored JDL. */
const DROPPED = new Set(['DIRACSetup', 'OwnerDN', 'JobRequirements']);

/** At most this many problems are returned; a summary stands for the rest. */
const MAX_PROBLEMS = 100;

/**
 * Describes the jobs of one JDL text: one job, or one per value of a parametric JDL.
 * Pure; no I/O. Throws `WmsError`: `WMS_JDL_SYNTAX` or `WMS_JDL_PARAMETRIC` at the first such
 * error, else `WMS_JDL_INVALID` with every problem of every job (problems shared by all jobs
 * of a parametric JDL are listed once; the others name the jobs they concern).
 */
export function describeJobs(
  text: string,
  identity: Identity,
  limits: JobLimits,
): JobDescription[] {
  const ad = parseJdl(text);
  const maxParametricJobs = Math.min(limits.maxParametricJobs, limits.maxJobsPerSubmission);
  const expanded = expandParametric(ad, { maxParametricJobs });
  if (expanded === null) {
    const { description, problems } = describeAd(resolvePlaceholders(ad), identity, limits, null);
    if (problems.length > 0) throw jdlError('WMS_JDL_INVALID', sortAndCap(problems));
    return [description];
  }

  const descriptions: JobDescription[] = [];
  const groups = new Map<string, { problem: JdlProblem; jobs: number[] }>();
  for (const job of expanded) {
    const { description, problems } = describeAd(job.ad, identity, limits, {
      number: job.number,
      values: job.values,
    });
    descriptions.push(description);
    for (const p of problems) {
      const key = `${p.line}:${p.column}:${p.attribute ?? ''}:${p.message}`;
      const group = groups.get(key);
      if (group) group.jobs.push(job.number);
      else groups.set(key, { problem: p, jobs: [job.number] });
    }
  }
  if (groups.size > 0) {
    const problems = [...groups.values()].map(({ problem, jobs }) =>
      jobs.length === expanded.length
        ? problem
        : { ...problem, message: `${jobsLabel(jobs)}: ${problem.message}` },
    );
    throw jdlError('WMS_JDL_INVALID', sortAndCap(problems));
  }
  return descriptions;
}

/**
 * Describes a list of JDLs submitted together (bulk). Each must be a plain, non-parametric JDL:
 * a parametric one is refused, as DiracX does. Every JDL is checked and all problems are thrown
 * together, each message starting with `JDL #<k>: ` where k counts from 1. The error code is the
 * gravest kind found: syntax, then parametric, then invalid. More JDLs than
 * `limits.maxJobsPerSubmission` are refused before anything is parsed.
 */
export function describeJobList(
  texts: readonly string[],
  identity: Identity,
  limits: JobLimits,
): JobDescription[] {
  if (texts.length === 0) {
    throw jdlError('WMS_JDL_INVALID', [
      { message: 'the list of JDLs is empty', line: 1, column: 1 },
    ]);
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

  const descriptions: JobDescription[] = [];
  const problems: JdlProblem[] = [];
  let code: 'WMS_JDL_SYNTAX' | 'WMS_JDL_PARAMETRIC' | 'WMS_JDL_INVALID' = 'WMS_JDL_INVALID';
  const raise = (found: ErrorCode): void => {
    if (
      found === 'WMS_JDL_SYNTAX' ||
      (found === 'WMS_JDL_PARAMETRIC' && code === 'WMS_JDL_INVALID')
    ) {
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
      if (isParametric(ad)) {
        const first = ad.attributes.find((a) => a.name.startsWith('Parameters')) as JdlAttribute;
        add([
          {
            message: `parametric JDLs cannot be part of a list: submit this one on its own (${first.name} makes it parametric)`,
            line: first.line,
            column: first.column,
            attribute: first.name,
          },
        ]);
        raise('WMS_JDL_PARAMETRIC');
        return;
      }
      const result = describeAd(resolvePlaceholders(ad), identity, limits, null);
      descriptions.push(result.description);
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

/** Validates one expanded job; never throws for a bad attribute, it returns the problems. */
function describeAd(
  ad: JdlAd,
  identity: Identity,
  limits: JobLimits,
  parametric: JobDescription['parametric'],
): { description: JobDescription; problems: JdlProblem[] } {
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

  // Files.
  const inputSandbox = read.files('InputSandbox');
  const outputSandbox = read.files('OutputSandbox');
  const inputData = read.inputData(limits.maxInputData);
  if (read.get('InputSandbox')) output.set('InputSandbox', inputSandbox);
  if (read.get('OutputSandbox')) output.set('OutputSandbox', outputSandbox);
  if (read.get('InputData')) output.set('InputData', inputData);

  // Scheduling.
  const cpuTime =
    read.integerInRange('CPUTime', limits.minCpuTime, limits.maxCpuTime) ?? limits.defaultCpuTime;
  const priority =
    read.integerInRange('Priority', limits.minPriority, limits.maxPriority) ??
    limits.defaultPriority;
  const jobType = read.oneOf('JobType', limits.allowedJobTypes, 'User');
  const jobGroup = read.text('JobGroup') ?? identity.vo;
  const jobName = read.text('JobName') ?? (basename(executable) || 'Name');
  for (const [name, value] of [['JobGroup', jobGroup], ['JobName', jobName]] as const) {
    if (value.length > MAX_NAME_LENGTH) read.problemAt(name, `${name} is ${value.length} characters long, more than the limit of ${MAX_NAME_LENGTH}`);
  }
  const logLevel = read.oneOf('LogLevel', LOG_LEVELS, 'INFO', true);
  output.set('CPUTime', cpuTime);
  output.set('Priority', priority);
  output.set('JobType', jobType);
  output.set('JobGroup', jobGroup);
  output.set('JobName', jobName);
  output.set('LogLevel', logLevel);

  // Where it may run.
  const requestedSites = read.names('Site');
  const anySite = requestedSites.some((s) => s.toUpperCase() === 'ANY');
  const wantedSites = anySite ? [] : requestedSites;
  const bannedSites = read.names('BannedSites');
  const sites = wantedSites.filter((s) => !bannedSites.includes(s));
  if (wantedSites.length > 0 && sites.length === 0) {
    read.problemAt('Site', 'every site in Site is also in BannedSites: the job could run nowhere');
  }
  const gridCEs = read.names('GridCE');
  const platforms = read.names('Platform');
  const { processors, tags: processorTags } = read.processors(
    limits.minProcessors,
    limits.maxProcessors,
  );
  const tags = [...read.names('Tags'), ...read.names('Tag'), ...processorTags];
  if (tags.length > MAX_TAGS) read.problemAt('Tags', `Tags lists ${tags.length} tags, more than the limit of ${MAX_TAGS}`);
  const ramMb = read.ramMb();
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
    .map((a) => (output.has(a.name) ? { ...a, value: output.get(a.name) as JdlValue } : a));
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
      this.problemAt(
        'Executable',
        'Executable is required: name the program or script the job runs',
      );
      return '';
    }
    if (typeof a.value !== 'string') {
      this.problemAt(
        'Executable',
        `Executable must be a text in double quotes, not ${kindOf(a.value)}`,
      );
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

  /** A whole number; a string of digits is accepted (DIRAC's tools often quote numbers). */
  integer(name: string): number | undefined {
    const a = this.get(name);
    if (!a) return undefined;
    const v = a.value;
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    if (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v)) return Number(v);
    const shown = typeof v === 'string' ? `"${v}"` : typeof v === 'number' ? String(v) : kindOf(v);
    this.problemAt(name, `${name} must be a whole number, not ${shown}`);
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
        this.problemAt(
          name,
          `${name} must be a list of texts, e.g. { "a", "b" }, but holds ${kindOf(item)}`,
        );
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
    if (long !== undefined) this.problemAt(name, `${name} entry of ${long.length} characters is longer than the limit of ${MAX_NAME_LENGTH}`);
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

  /** `InputData`: logical file names, `/x` read as `LFN:/x`, at most `max` of them. */
  inputData(max: number): string[] {
    const lfns = this.list('InputData').map((f) => (f.startsWith('/') ? `LFN:${f}` : f));
    for (const lfn of lfns) {
      if (!lfn.startsWith('LFN:/')) {
        this.problemAt(
          'InputData',
          `InputData entry ${lfn} is not a logical file name: it must start with LFN:/ or /`,
        );
      } else if (lfn.includes('//')) {
        this.problemAt('InputData', `InputData entry ${lfn} contains '//'`);
      }
    }
    if (lfns.length > max) {
      this.problemAt(
        'InputData',
        `InputData lists ${lfns.length} files, more than the limit of ${max}`,
      );
    }
    return lfns;
  }

  /** Processor count and the tags it implies. */
  processors(lo: number, hi: number): { processors: number; tags: string[] } {
    const exactName = 'NumberOfProcessors';
    const exactGiven = this.integerInRange(exactName, lo, hi);
    const min = this.integerInRange('MinNumberOfProcessors', lo, hi);
    const max = this.integerInRange('MaxNumberOfProcessors', lo, hi);
    let exact = exactGiven;
    if (exactGiven !== undefined) {
      for (const [name, v] of [
        ['MinNumberOfProcessors', min],
        ['MaxNumberOfProcessors', max],
      ] as const) {
        if (v !== undefined && v !== exactGiven) {
          this.problemAt(
            exactName,
            `${exactName} ${exactGiven} conflicts with ${name} ${v}: give either an exact number or a range`,
          );
        }
      }
    } else if (min !== undefined && max !== undefined) {
      if (max < min) {
        this.problemAt(
          'MaxNumberOfProcessors',
          `MaxNumberOfProcessors ${max} is smaller than MinNumberOfProcessors ${min}`,
        );
      } else if (min === max) {
        exact = min;
      }
    }

    const tags: string[] = [];
    if (exact !== undefined) {
      if (exact > 1) tags.push(`${exact}Processors`, 'MultiProcessor');
    } else if ((min ?? 1) > 1 || (max ?? 1) > 1 || (min !== undefined && max === undefined)) {
      tags.push('MultiProcessor');
    }
    if (this.wholeNode()) tags.push('WholeNode', 'MultiProcessor');
    return { processors: exact ?? min ?? 1, tags };
  }

  /** `WholeNode`: yes (1, y, yes, true) or no (0, n, no, false), any case, or a boolean. */
  private wholeNode(): boolean {
    const a = this.get('WholeNode');
    if (!a) return false;
    const v = typeof a.value === 'string' ? a.value.trim().toLowerCase() : a.value;
    if (v === true || v === 1 || v === '1' || v === 'y' || v === 'yes' || v === 'true') return true;
    if (v === false || v === 0 || v === '0' || v === 'n' || v === 'no' || v === 'false' || v === '')
      return false;
    this.problemAt('WholeNode', 'WholeNode must be yes or no (true/false, 1/0)');
    return false;
  }

  /** `MaxRAM` in MB (see the module comment for the unit rule); 0 when absent. */
  ramMb(): number {
    const ram = this.integer('MaxRAM');
    if (ram === undefined) return 0;
    if (ram < 0) {
      this.problemAt('MaxRAM', `MaxRAM ${ram} must not be negative`);
      return 0;
    }
    return ram >= 256 ? ram : ram * 1024;
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
    const given =
      typeof a.value === 'string' || typeof a.value === 'number'
        ? String(a.value)
        : kindOf(a.value);
    if (given !== expected) {
      this.problemAt(
        name,
        `${name} in the JDL (${given}) differs from the submitter (${expected})`,
      );
    }
  }
}

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
  return [
    ...problems.slice(0, MAX_PROBLEMS),
    { message: `${rest} more problems not shown`, line: last.line, column: last.column },
  ];
}
