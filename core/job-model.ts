/**
 * The job model: what one (already expanded) JDL becomes once it is validated, and the limits
 * that validation applies. Produced by `core/jdl/describe.ts`, consumed by `db/ops/submit.ts`.
 */

/** Who submits: always taken from the token, never from the JDL. */
export interface Identity {
  owner: string;
  ownerGroup: string;
  vo: string;
}

/** Validation limits and defaults (DIRAC's Operations/JobDescription, with our parametric cap). */
export interface JobLimits {
  /** Jobs one parametric submission may expand to (DIRAC: 20). */
  maxParametricJobs: number;
  /** Jobs one request may carry in all (a list of JDLs, or a parametric one). */
  maxJobsPerSubmission: number;
  defaultCpuTime: number;
  minCpuTime: number;
  maxCpuTime: number;
  defaultPriority: number;
  minPriority: number;
  maxPriority: number;
  /**
   * DIRAC's JobDescription/MaxInputData: a job of type User may list fewer InputData files than
   * this (DIRAC refuses the limit itself); other job types have no count limit, as in DIRAC.
   */
  maxInputData: number;
  minProcessors: number;
  maxProcessors: number;
  allowedJobTypes: readonly string[];
  /** CPU-time segments (normalized seconds), strictly increasing. */
  cpuSegments: readonly number[];
  maxRescheduling: number;
  /** Jobs one bulk action (kill, reschedule, delete) by filter may take. */
  maxBulkJobs: number;
}

/**
 * Tags one job may require (JDL `Tags`, `Tag`) or one pilot may offer (a resource's `tags`):
 * they form task-queue keys, which must stay small enough to index.
 */
export const MAX_TAGS = 100;

/** Longest site, CE, platform or tag name, job name or job group (indexed columns). */
export const MAX_NAME_LENGTH = 256;

/** PostgreSQL's `integer` (int4): the bound of every count and size stored in one. */
export const INT4_MAX = 2_147_483_647;

/** DIRAC's JobScheduling/taskQueueCPUTimeIntervals. */
export const DEFAULT_CPU_SEGMENTS: readonly number[] = [
  360, 1800, 3600, 21600, 43200, 86400, 172800, 259200, 345600, 518400, 691200, 864000, 1080000,
];

export const DEFAULT_JOB_LIMITS: Readonly<JobLimits> = Object.freeze({
  maxParametricJobs: 10_000,
  maxJobsPerSubmission: 10_000,
  defaultCpuTime: 86_400,
  minCpuTime: 100,
  maxCpuTime: 500_000,
  defaultPriority: 1,
  minPriority: 0,
  maxPriority: 10,
  maxInputData: 500,
  minProcessors: 1,
  maxProcessors: 1024,
  allowedJobTypes: ['User', 'Test', 'Hospital'],
  cpuSegments: DEFAULT_CPU_SEGMENTS,
  maxRescheduling: 3,
  maxBulkJobs: 100_000,
});

/**
 * What defines a task queue: jobs with identical requirements share one. Sets are sorted and
 * de-duplicated so that equal sets compare equal. `priority` is the job's user priority: jobs of
 * different priorities go to different task queues, so a queue's fair-share weight is simply the
 * owner's share times its priority weight (DIRAC averages priorities inside one queue instead).
 */
export interface JobRequirements {
  owner: string;
  ownerGroup: string;
  vo: string;
  /** The job's CPUTime rounded up to its segment (normalized DB12 seconds). */
  cpuTime: number;
  priority: number;
  sites: string[];
  bannedSites: string[];
  gridCEs: string[];
  platforms: string[];
  jobTypes: string[];
  /**
   * The JDL's Tags and Tag with the tags DIRAC's JobScheduling derives (`<n>Processors`,
   * `MultiProcessor`, `WholeNode`, `<k>GB`); a resource offers the derived ones by its numbers.
   */
  tags: string[];
  /** Minimum cores the job needs (1 for single-core). */
  processors: number;
  /** Minimum memory in MB, 0 when the job states none (a GB of MaxRAM is 1000 MB). */
  ramMb: number;
  gpus: number;
}

/** One job, validated, ready to be stored. */
export interface JobDescription {
  /** The job's JDL as stored: canonical text, server attributes set; `%j` is replaced at insert. */
  jdl: string;
  executable: string;
  arguments: string | null;
  jobName: string;
  jobGroup: string;
  jobType: string;
  /** The user's CPUTime (normalized seconds), before segmentation. */
  cpuTime: number;
  priority: number;
  /** `ANY`, the one requested site, or `Multiple` (DIRAC's Jobs.Site). */
  site: string;
  inputSandbox: string[];
  outputSandbox: string[];
  inputData: string[];
  requirements: JobRequirements;
  /** For jobs from a parametric submission: the index and the values substituted. */
  parametric: { number: number; values: Record<string, string | number> } | null;
}
