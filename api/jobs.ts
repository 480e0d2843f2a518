/**
 * Jobs: submission, what is read about a job (summary, detail, history, parameters,
 * heartbeats, outputs) and the answers of the bulk actions (kill, reschedule, delete).
 */
import { Type, type Static } from 'typebox';
import { DateTime, ErrorCodeSchema, JobIdSchema, JobStateSchema, Nullable, ref } from './common.js';

export const SubmitJobsRequestSchema = Type.Object(
  {
    jdl: Type.Optional(Type.String({ minLength: 1, description: 'one JDL; a parametric JDL expands to many jobs' })),
    jdls: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'a list of JDLs, each possibly parametric (expanded), stored together or not at all; problems are labelled "JDL #k: "',
      }),
    ),
  },
  { $id: 'SubmitJobsRequest', additionalProperties: false, description: 'Give exactly one of `jdl` and `jdls`.' },
);
export type SubmitJobsRequest = Static<typeof SubmitJobsRequestSchema>;

export const SubmitJobsAnswerSchema = Type.Object(
  {
    jobIds: Type.Array(Type.Integer(), { description: 'ids of the new jobs, in submission order' }),
    jobsPerJdl: Type.Array(Type.Integer({ minimum: 1 }), {
      description: 'how many of `jobIds` each JDL gave, in the order of the JDLs (`jdl`: one entry)',
    }),
  },
  { $id: 'SubmitJobsAnswer', description: 'The new jobs, in submission order.' },
);
export type SubmitJobsAnswer = Static<typeof SubmitJobsAnswerSchema>;

const jobSummaryProperties = {
  id: Type.Integer(),
  owner: Type.String(),
  ownerGroup: Type.String(),
  vo: Type.String(),
  jobName: Type.String(),
  jobGroup: Type.String(),
  jobType: Type.String(),
  site: Type.String(),
  status: JobStateSchema,
  minorStatus: Type.String(),
  applicationStatus: Type.String(),
  priority: Type.Integer(),
  cpuTime: Type.Integer({ description: 'requested CPU time, normalized (DB12) seconds' }),
  rescheduleCounter: Type.Integer(),
  submittedAt: DateTime(),
  lastUpdateAt: DateTime(),
  startExecAt: Nullable(DateTime()),
  endExecAt: Nullable(DateTime()),
  heartbeatAt: Nullable(DateTime()),
};

export const JobSummarySchema = Type.Object(jobSummaryProperties, { $id: 'JobSummary', description: 'A job as lists show it.' });
export type JobSummary = Static<typeof JobSummarySchema>;

export const JobDetailSchema = Type.Object(
  {
    ...jobSummaryProperties,
    jdl: Type.String(),
    pilotId: Nullable(Type.Integer()),
    bulkId: Nullable(Type.Integer()),
    parameterNumber: Nullable(Type.Integer()),
    rescheduledAt: Nullable(DateTime()),
  },
  { $id: 'JobDetail', description: 'A job with its JDL.' },
);
export type JobDetail = Static<typeof JobDetailSchema>;

export const JobListSchema = Type.Object(
  {
    jobs: Type.Array(ref(JobSummarySchema)),
    total: Type.Integer({ description: 'jobs matching the filter, all pages' }),
    limit: Type.Integer(),
    offset: Type.Integer(),
  },
  { $id: 'JobList', description: 'A page of jobs, newest first unless sorted otherwise.' },
);
export type JobList = Static<typeof JobListSchema>;

/**
 * The columns GET /api/jobs sorts by (its `sort`): each is the key of an index ending in the
 * job id, which breaks ties, so a page is read in index order. `status` sorts in lifecycle
 * order (core/job-states.ts), not by name.
 */
export const JOB_SORT_COLUMNS = ['id', 'status', 'site', 'group', 'owner'] as const;
export type JobSortColumn = (typeof JOB_SORT_COLUMNS)[number];

/** The directions of a sort (GET /api/jobs `order`). */
export const JOB_SORT_ORDERS = ['asc', 'desc'] as const;
export type JobSortOrder = (typeof JOB_SORT_ORDERS)[number];

export const JobCountsSchema = Type.Object(
  {
    counts: Type.Record(Type.String(), Type.Integer(), { description: 'status → jobs (statuses with none left out)' }),
    total: Type.Integer(),
  },
  { $id: 'JobCounts', description: 'Jobs by status.' },
);
export type JobCounts = Static<typeof JobCountsSchema>;

export const JobStatusListSchema = Type.Object(
  { jobs: Type.Array(ref(JobSummarySchema)), notFound: Type.Array(Type.Integer()) },
  { $id: 'JobStatusList', description: 'Several jobs at once; `notFound` lists the ids not found (or not yours).' },
);
export type JobStatusList = Static<typeof JobStatusListSchema>;

export const HistoryEntrySchema = Type.Object(
  {
    status: JobStateSchema,
    minorStatus: Type.String(),
    applicationStatus: Type.String(),
    source: Type.String(),
    at: DateTime(),
  },
  { $id: 'HistoryEntry', description: 'One status change of a job.' },
);
export type HistoryEntry = Static<typeof HistoryEntrySchema>;

export const JobHistorySchema = Type.Object(
  { jobId: Type.Integer(), history: Type.Array(ref(HistoryEntrySchema)) },
  { $id: 'JobHistory', description: "A job's status history, oldest first." },
);
export type JobHistory = Static<typeof JobHistorySchema>;

export const JobParametersSchema = Type.Object(
  { jobId: Type.Integer(), parameters: Type.Record(Type.String(), Type.String()) },
  { $id: 'JobParameters', description: 'Named values reported about a job (host, CPU time, DB12...).' },
);
export type JobParameters = Static<typeof JobParametersSchema>;

export const HeartbeatEntrySchema = Type.Object(
  {
    at: DateTime('when the services recorded it'),
    cpuSeconds: Type.Number({ description: "CPU seconds of the job's processes so far" }),
    wallSeconds: Type.Number({ description: 'wall-clock seconds since the job started' }),
    rssMb: Type.Number({ description: 'resident memory of the job (MB)' }),
    diskFreeMb: Nullable(Type.Number({ description: 'free disk in the work directory (MB)' })),
    loadAverage: Nullable(Type.Number({ description: "the node's 1-minute load average" })),
  },
  { $id: 'HeartbeatEntry', description: 'One heartbeat of a running job.' },
);
export type HeartbeatEntry = Static<typeof HeartbeatEntrySchema>;

export const JobHeartbeatsSchema = Type.Object(
  { jobId: Type.Integer(), heartbeats: Type.Array(ref(HeartbeatEntrySchema)) },
  { $id: 'JobHeartbeats', description: "A job's last heartbeats, newest last." },
);
export type JobHeartbeats = Static<typeof JobHeartbeatsSchema>;

export const JobOutputSchema = Type.Object(
  {
    jobId: Type.Integer(),
    status: JobStateSchema,
    sandboxes: Type.Array(Type.Object({ sha256: Type.String(), size: Type.Integer() })),
  },
  { $id: 'JobOutput', description: "The job's output sandboxes (fetch each with GET /api/sandboxes/{sha256})." },
);
export type JobOutput = Static<typeof JobOutputSchema>;

/** The filters of the job listing (`GET /api/jobs`), shared by the bulk actions' `filter`. */
export const jobFilterProperties = {
  status: Type.Optional(Type.Array(JobStateSchema, { description: 'in one of these statuses' })),
  site: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  group: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'JobGroup' })),
  owner: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'admins only (users: themselves)' })),
  since: Type.Optional(Type.String({ format: 'date-time', description: 'submitted at or after' })),
  until: Type.Optional(Type.String({ format: 'date-time', description: 'submitted at or before' })),
  search: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'job name or id' })),
};

export const BulkActionRequestSchema = Type.Object(
  {
    ids: Type.Optional(Type.Array(JobIdSchema, { minItems: 1, maxItems: 10_000, description: 'these jobs (each answered)' })),
    filter: Type.Optional(
      Type.Object(jobFilterProperties, {
        additionalProperties: false,
        description: "every job the listing would show with these filters (a user's: only their own), at most `jobLimits.maxBulkJobs`",
      }),
    ),
    dryRun: Type.Optional(Type.Boolean({ description: 'answer what would happen and change nothing' })),
  },
  {
    $id: 'BulkActionRequest',
    additionalProperties: false,
    description: 'The jobs to act on: give exactly one of `ids` and `filter`.',
  },
);
export type BulkActionRequest = Static<typeof BulkActionRequestSchema>;

/** At most this many ids are listed in `succeeded` and `failed` of a dry run. */
export const DRY_RUN_LISTED = 10_000;

export const BulkResultSchema = Type.Object(
  {
    succeeded: Type.Array(Type.Integer(), {
      description: `the jobs changed (a dry run: that would change, at most ${DRY_RUN_LISTED} listed, \`succeededCount\` counts them all)`,
    }),
    failed: Type.Array(Type.Object({ id: Type.Integer(), code: ErrorCodeSchema, message: Type.String() }), {
      description: `the jobs not changed for another reason than \`skipped\` (unknown, not yours, a state the action refuses; a dry run: at most ${DRY_RUN_LISTED} listed)`,
    }),
    succeededCount: Type.Integer({ description: 'how many jobs changed (a dry run: would change)' }),
    skipped: Type.Integer({
      description: 'jobs already where the action leads (kill: final; reschedule and delete: Deleted): left as they are, not failures',
    }),
    skippedByStatus: Type.Record(JobStateSchema, Type.Integer(), { description: 'the skipped jobs by status (every status, 0 when none)' }),
    matched: Type.Integer({ description: 'jobs the ids or the filter selected that the caller may see' }),
    dryRun: Type.Boolean({ description: 'true: nothing was changed' }),
  },
  { $id: 'BulkResult', description: 'Per-job answer of a bulk action: the request succeeds even when jobs fail.' },
);
export type BulkResult = Static<typeof BulkResultSchema>;
