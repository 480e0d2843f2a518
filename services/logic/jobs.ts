/**
 * The jobs API (routes: `services/plugins/jobs.ts`): submit (one JDL, possibly parametric, or a
 * list of them: one transaction, all jobs stored or none; every `Site` name checked against the
 * site registry, read per submission, unless `allowUnregisteredSites`; every InputSandbox entry
 * an uploaded sandbox of the submitter, `SB:<sha256>`, or an `LFN:`), read (summary, detail,
 * status of many, history, parameters, recent heartbeats, listing with filters and paging,
 * counts by status) and act (kill, reschedule, delete: answered per job).
 *
 * Who: users on their own jobs (every db call gets `scope: { owner, vo }`: a user is the pair
 * (VO, name), so another user's job, or the job of the same name in another VO, is 404
 * WMS_JOB_NOT_FOUND, as if it did not exist); admins on every job; a job token reads
 * only its own job (another id: 403 WMS_FORBIDDEN).
 */
import type { Logger } from 'pino';
import { WmsError } from '../../core/errors.js';
import type { JobState } from '../../core/job-states.js';
import type { JobDescription } from '../../core/job-model.js';
import { ownerScope, submitterOf, type JobPrincipal, type PersonPrincipal, type Principal } from '../../core/identity.js';
import { describeJobList, describeJobs, type DescribeOptions } from '../../core/jdl/index.js';
import { jobTokenDeadMessage } from '../../core/pilot-protocol.js';
import {
  bulkAction,
  countJobsByStatus,
  countSelection,
  getJobHeartbeats as readJobHeartbeats,
  getJobHistory as readJobHistory,
  getJobParameters as readJobParameters,
  MAX_HEARTBEATS,
  getJobs,
  listJobs as listJobRows,
  registeredSiteNames,
  submitJobs as storeJobs,
  jobTokenDead,
  type BulkAction,
  type BulkSelection,
  type JobFilter,
  type JobRow,
} from '../../db/index.js';
import type {
  BulkActionRequest,
  BulkResult,
  JobCounts,
  JobDetail,
  JobHeartbeats,
  JobHistory,
  JobList,
  JobParameters,
  JobSortColumn,
  JobSortOrder,
  JobStatusList,
  SubmitJobsAnswer,
  SubmitJobsRequest,
} from '../../api/index.js';
import { DRY_RUN_LISTED } from '../../api/index.js';
import type { ServiceContext } from '../context.js';
import { iso, jobDetail, jobSummary } from '../jobs-view.js';
import { announceJobChanges, announceWork } from './pilots.js';
import { isSha256 } from '../sandbox-store.js';

/** The filters of the job listing and of the counts by status (the route's query). */
export interface JobQuery {
  status?: JobState[];
  site?: string;
  group?: string;
  owner?: string;
  since?: string;
  until?: string;
  search?: string;
  /** The jobs this pilot holds or last ran. */
  pilot?: number;
}

/** The listing's query: the filters, the sort and the page. */
export interface JobListQuery extends JobQuery {
  limit?: number;
  offset?: number;
  /** The column to sort by (default id). */
  sort?: JobSortColumn;
  /** Default: descending for id (newest first), ascending for the other columns. */
  order?: JobSortOrder;
}

/**
 * The job `id` as the caller may see it: a job token only its own job (403 otherwise), a user
 * only their own jobs (another's answers 404, as an unknown id does), admins any job.
 */
export async function visibleJob(ctx: ServiceContext, p: Principal, id: number): Promise<JobRow> {
  if (p.role === 'job' && p.jobId !== id) {
    throw new WmsError('WMS_FORBIDDEN', `this job token is bound to job ${p.jobId}, not ${id}`);
  }
  const [row] = await getJobs(ctx.handle, [id], ownerScope(p));
  if (!row) throw new WmsError('WMS_JOB_NOT_FOUND', `no job ${id}`);
  const refusal = p.role === 'job' ? jobTokenRefusal(p, row) : null;
  if (refusal !== null) throw new WmsError('WMS_FORBIDDEN', refusal);
  return row;
}

/**
 * Why the job token `p` no longer works on its job, or null: a job token dies with its job (Done,
 * Failed, Killed, Deleted; `job` null: gone) and with its match (the job is now held by another
 * pilot than the one it was minted for). The routes job tokens use besides the job reports
 * (which check it in their own statement) call this.
 */
export function jobTokenRefusal(p: JobPrincipal, job: { status: JobState; pilotId: number | null } | null): string | null {
  if (!job || jobTokenDead(job.status)) return jobTokenDeadMessage(p.jobId, job?.status ?? 'Deleted');
  if (p.pilotId !== null && job.pilotId !== p.pilotId) return `this job token is of an earlier match of job ${p.jobId}: it no longer works`;
  return null;
}

function filterOf(q: JobQuery): JobFilter {
  const f: JobFilter = {};
  if (q.status && q.status.length > 0) f.status = [...new Set(q.status)];
  if (q.site) f.site = q.site;
  if (q.group) f.jobGroup = q.group;
  if (q.owner) f.owner = q.owner;
  if (q.since) f.since = new Date(q.since);
  if (q.until) f.until = new Date(q.until);
  if (q.search) f.search = q.search;
  if (q.pilot !== undefined) f.pilotId = q.pilot;
  return f;
}

/** A user may filter on their own name only; admins on anyone (`verb`: what the filter is for). */
function checkOwnerFilter(p: Principal, owner: string | undefined, verb = 'list'): void {
  if (owner !== undefined && p.role !== 'admin' && owner !== p.user) {
    throw new WmsError('WMS_FORBIDDEN', `only admins may ${verb} the jobs of other users`);
  }
}

/**
 * How many jobs each JDL of a submission gave, from the descriptions in submission order: a JDL
 * gives one plain job, or parametric jobs numbered from 0 (core/jdl/parametric.ts), so a job
 * that is not parametric, or is parametric job 0, starts the next JDL.
 */
function jobsPerJdl(jobs: readonly JobDescription[]): number[] {
  const counts: number[] = [];
  for (const j of jobs) {
    if (j.parametric === null || j.parametric.number === 0 || counts.length === 0) counts.push(1);
    else counts[counts.length - 1]! += 1;
  }
  return counts;
}

/**
 * The sandboxes each job's InputSandbox names with `SB:<sha256>`; throws WMS_VALIDATION for an
 * entry that is not one. Whether each exists and is the submitter's, the (VO, user) that will
 * own the jobs (admins may use any), is checked by `submitJobs` in its transaction
 * (`sandboxAccess`): WMS_SANDBOX_NOT_FOUND naming the first bad one, nothing stored.
 */
function inputSandboxesOf(jobs: JobDescription[]): string[][] {
  const perJob = jobs.map((j) => j.inputSandbox.filter((e) => e.startsWith('SB:')).map((e) => e.slice(3).toLowerCase()));
  const unique = [...new Set(perJob.flat())];
  for (const sha of unique) {
    if (!isSha256(sha)) {
      throw new WmsError('WMS_VALIDATION', `InputSandbox entry SB:${sha} is not SB:<sha256>`, {
        details: { problems: [{ message: `SB:${sha} is not SB:<64 hex digits>`, path: 'InputSandbox' }] },
      });
    }
  }
  return perJob;
}

/**
 * The jobs a submission describes: exactly one of `jdl` and `jdls`, sites checked per
 * `DescribeOptions`, every InputSandbox entry `SB:` or `LFN:` (400 WMS_JDL_INVALID at the
 * InputSandbox value otherwise, nothing stored).
 */
async function describeSubmission(ctx: ServiceContext, p: PersonPrincipal, input: SubmitJobsRequest): Promise<JobDescription[]> {
  const { jdl, jdls } = input;
  if ((jdl === undefined) === (jdls === undefined)) {
    throw new WmsError('WMS_VALIDATION', 'give exactly one of "jdl" and "jdls"', {
      details: { problems: [{ message: 'give exactly one of "jdl" and "jdls"', path: 'body' }] },
    });
  }
  const submitter = submitterOf(p);
  const limits = ctx.config.jobLimits;
  // Read per submission (see registeredSiteNames): every replica knows a new site at once.
  // InputSandbox entries must be uploaded sandboxes or LFNs: a local file name would fail on the worker.
  const options: DescribeOptions = {
    uploadedInputSandbox: true,
    ...(ctx.config.allowUnregisteredSites ? {} : { knownSites: await registeredSiteNames(ctx.handle) }),
  };
  if (jdl !== undefined) return describeJobs(jdl, submitter, limits, options);
  return jdls!.length === 1
    ? describeJobs(jdls![0] as string, submitter, limits, options)
    : describeJobList(jdls!, submitter, limits, options);
}

/** Stores the jobs of a submission (all or none) as the caller, who must be a person who submits. */
export async function submitJobs(
  ctx: ServiceContext,
  p: Principal,
  input: SubmitJobsRequest,
  log?: Pick<Logger, 'info'>,
): Promise<SubmitJobsAnswer> {
  if (p.role !== 'user' && p.role !== 'admin') throw new WmsError('WMS_FORBIDDEN', 'only people submit jobs');
  const descriptions = await describeSubmission(ctx, p, input);
  const inputSandboxes = inputSandboxesOf(descriptions);
  const jobIds = await storeJobs(ctx.handle, descriptions, {
    source: `JobManager:${p.user}`,
    inputSandboxes,
    sandboxAccess: p.role === 'admin' ? 'any' : 'owner',
  });
  log?.info({ owner: p.user, jobs: jobIds.length }, 'jobs submitted');
  ctx.metrics.jobsSubmitted(jobIds.length);
  ctx.events.emit('jobs-submitted', { ids: jobIds });
  // Every replica nudges its pilots whose queues can take these jobs.
  await announceWork(ctx, jobIds);
  return { jobIds, jobsPerJdl: jobsPerJdl(descriptions) };
}

/** A page of the caller's jobs (admins: anyone's), newest first unless `q.sort` says otherwise. */
export async function listJobs(ctx: ServiceContext, p: Principal, q: JobListQuery): Promise<JobList> {
  checkOwnerFilter(p, q.owner);
  const limit = Math.min(q.limit ?? ctx.config.listDefaultLimit, ctx.config.listMaxLimit);
  const offset = q.offset ?? 0;
  const column = q.sort ?? 'id';
  const order: JobSortOrder = q.order ?? (column === 'id' ? 'desc' : 'asc');
  const sort = { column, order };
  const { jobs, total } = await listJobRows(ctx.handle, filterOf(q), { limit, offset, sort }, ownerScope(p));
  return { jobs: jobs.map(jobSummary), total, limit, offset };
}

/** The caller's jobs (admins: anyone's) counted by status, the statuses with none left out. */
export async function countJobs(ctx: ServiceContext, p: Principal, q: JobQuery): Promise<JobCounts> {
  checkOwnerFilter(p, q.owner);
  const counts = await countJobsByStatus(ctx.handle, filterOf(q), ownerScope(p));
  const nonZero = Object.fromEntries(Object.entries(counts).filter(([, n]) => Number(n) > 0));
  const total = Object.values(nonZero).reduce((a, n) => a + Number(n), 0);
  return { counts: nonZero as Record<string, number>, total };
}

/** The status of each of the comma-separated `ids` the caller may see; the others are `notFound`. */
export async function getJobsStatus(ctx: ServiceContext, p: Principal, input: { ids: string }): Promise<JobStatusList> {
  const ids = [...new Set(input.ids.split(',').map(Number))];
  if (ids.length > 10_000) throw new WmsError('WMS_VALIDATION', 'at most 10000 ids at once');
  const rows = await getJobs(ctx.handle, ids, ownerScope(p));
  const found = new Set(rows.map((r) => Number(r.id)));
  const byId = new Map(rows.map((r) => [Number(r.id), r]));
  return {
    jobs: ids.filter((id) => found.has(id)).map((id) => jobSummary(byId.get(id)!)),
    notFound: ids.filter((id) => !found.has(id)),
  };
}

/** One job, with its JDL. */
export async function getJob(ctx: ServiceContext, p: Principal, input: { id: number }): Promise<JobDetail> {
  return jobDetail(await visibleJob(ctx, p, input.id));
}

/** A job's status history. */
export async function getJobHistory(ctx: ServiceContext, p: Principal, input: { id: number }): Promise<JobHistory> {
  const { id } = input;
  await visibleJob(ctx, p, id);
  const history = await readJobHistory(ctx.handle, id);
  return {
    jobId: id,
    history: history.map((h) => ({
      status: h.status as JobState,
      minorStatus: h.minorStatus,
      applicationStatus: h.applicationStatus,
      source: h.source,
      at: iso(h.at) as string,
    })),
  };
}

/** The named values reported about a job. */
export async function getJobParameters(ctx: ServiceContext, p: Principal, input: { id: number }): Promise<JobParameters> {
  const { id } = input;
  await visibleJob(ctx, p, id);
  return { jobId: id, parameters: await readJobParameters(ctx.handle, id) };
}

/** A job's last `limit` heartbeats (default and most: MAX_HEARTBEATS), newest last. */
export async function getJobHeartbeats(ctx: ServiceContext, p: Principal, input: { id: number; limit?: number }): Promise<JobHeartbeats> {
  const { id } = input;
  await visibleJob(ctx, p, id);
  const heartbeats = await readJobHeartbeats(ctx.handle, id, input.limit ?? MAX_HEARTBEATS);
  return { jobId: id, heartbeats: heartbeats.map((h) => ({ ...h, at: iso(h.at) as string })) };
}

/**
 * The jobs a bulk request takes: its `ids`, or every job of its `filter` in the caller's scope
 * (the listing's filters and rules), counted first: more than `jobLimits.maxBulkJobs` is
 * refused, nothing changed. Exactly one of the two (400 naming the problem otherwise).
 */
async function selectionOf(ctx: ServiceContext, p: Principal, input: BulkActionRequest): Promise<BulkSelection> {
  const { ids, filter } = input;
  if ((ids === undefined) === (filter === undefined)) {
    const message = ids === undefined ? 'give the jobs to act on: "ids" or "filter"' : 'give either "ids" or "filter", not both';
    throw new WmsError('WMS_VALIDATION', message, { details: { problems: [{ message, path: 'body' }] } });
  }
  if (ids !== undefined) return { ids };
  checkOwnerFilter(p, filter!.owner, 'act on');
  const selected = filterOf(filter!);
  const { count, lastId } = await countSelection(ctx.handle, selected, ownerScope(p));
  const max = ctx.config.jobLimits.maxBulkJobs;
  if (count > max) {
    const message = `the filter selects ${count} jobs, more than the ${max} one bulk action may take (jobLimits.maxBulkJobs): narrow the filter`;
    throw new WmsError('WMS_VALIDATION', message, { details: { problems: [{ message, path: 'body/filter' }] } });
  }
  return { filter: selected, upTo: lastId ?? 0 };
}

/**
 * Runs a bulk action on the caller's jobs (admins: anyone's), announces each batch it changed
 * to every replica (a kill reaches the pilot wherever its websocket is), and answers per job; jobs already where the action leads are counted as
 * skipped. A dry run changes nothing and lists at most DRY_RUN_LISTED ids.
 */
async function actOnJobs(ctx: ServiceContext, p: Principal, input: BulkActionRequest, action: BulkAction): Promise<BulkResult> {
  const selection = await selectionOf(ctx, p, input);
  const dryRun = input.dryRun === true;
  const announced: Promise<void>[] = [];
  const r = await bulkAction(ctx.handle, action, selection, {
    scope: ownerScope(p),
    source: `JobManager:${p.user}`,
    maxRescheduling: ctx.config.jobLimits.maxRescheduling,
    dryRun,
    ...(dryRun ? { listed: DRY_RUN_LISTED } : {}),
    onChanged: (ids) => void announced.push(announceJobChanges(ctx, action, ids)),
  });
  await Promise.all(announced);
  const skipped = Object.values(r.skippedByStatus).reduce((a, n) => a + n, 0);
  return { ...r, skipped, dryRun };
}

/** Kills the caller's jobs (admins: anyone's), answered per job. */
export function killJobs(ctx: ServiceContext, p: Principal, input: BulkActionRequest): Promise<BulkResult> {
  return actOnJobs(ctx, p, input, 'kill');
}

/** Reschedules the caller's jobs (admins: anyone's), answered per job; past `maxRescheduling` a job fails. */
export function rescheduleJobs(ctx: ServiceContext, p: Principal, input: BulkActionRequest): Promise<BulkResult> {
  return actOnJobs(ctx, p, input, 'reschedule');
}

/** Deletes the caller's jobs (admins: anyone's), answered per job. */
export function deleteJobs(ctx: ServiceContext, p: Principal, input: BulkActionRequest): Promise<BulkResult> {
  return actOnJobs(ctx, p, input, 'delete');
}
