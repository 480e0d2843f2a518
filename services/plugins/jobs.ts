/**
 * The jobs API: submit (one JDL, possibly parametric, or a list of them: one transaction, all
 * jobs stored or none; every `Site` name checked against the site registry, read per
 * submission, unless `allowUnregisteredSites`), read (summary, detail, status of many, history,
 * parameters, recent heartbeats, listing with filters and paging, counts by status) and act
 * (kill, reschedule, delete: answered per job).
 *
 * Who: users on their own jobs (every db call gets `scope: { owner, vo }`: a user is the pair
 * (VO, name), so another user's job, or the job of the same name in another VO, is 404
 * WMS_JOB_NOT_FOUND, as if it did not exist); admins on every job; a job token reads
 * only its own job (another id: 403 WMS_FORBIDDEN).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { WmsError } from '../../core/errors.js';
import type { JobState } from '../../core/job-states.js';
import type { JobDescription } from '../../core/job-model.js';
import { ownerScope, submitterOf, type JobPrincipal, type Principal } from '../../core/identity.js';
import { describeJobList, describeJobs, type DescribeOptions } from '../../core/jdl/index.js';
import { jobTokenDeadMessage } from '../../core/pilot-protocol.js';
import {
  countJobsByStatus,
  deleteJobs,
  getJobHeartbeats,
  getJobHistory,
  getJobParameters,
  MAX_HEARTBEATS,
  getJobs,
  killJobs,
  listJobs,
  registeredSiteNames,
  rescheduleJobs,
  submitJobs,
  jobTokenDead,
  type JobFilter,
  type JobRow,
} from '../../db/index.js';
import type { PluginOptions, ServiceContext } from '../context.js';
import { iso, jobDetail, jobSummary } from '../jobs-view.js';
import { isSha256 } from '../sandbox-store.js';
import {
  BulkIdsSchema,
  BulkResultSchema,
  JobCountsSchema,
  JobDetailSchema,
  JobHeartbeatsSchema,
  JobHistorySchema,
  JobListSchema,
  JobParametersSchema,
  JobStateSchema,
  JobStatusListSchema,
  ref,
  SubmitJobsAnswerSchema,
  SubmitJobsRequestSchema,
} from '../../api/index.js';
import { AUTH_ERRORS, errorResponses, JobIdParams } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

const ListQuery = Type.Object(
  {
    status: Type.Optional(Type.Array(JobStateSchema, { description: 'repeat for several' })),
    site: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    group: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'JobGroup' })),
    owner: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'admins only (users: themselves)' })),
    since: Type.Optional(Type.String({ format: 'date-time', description: 'submitted at or after' })),
    until: Type.Optional(Type.String({ format: 'date-time', description: 'submitted at or before' })),
    search: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'job name or id' })),
    limit: Type.Optional(Type.Integer({ minimum: 1 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  },
  { additionalProperties: false },
);

const HeartbeatsQuery = Type.Object(
  {
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_HEARTBEATS, description: `the last n heartbeats (default and most: ${MAX_HEARTBEATS})` }),
    ),
  },
  { additionalProperties: false },
);

const StatusQuery = Type.Object(
  { ids: Type.String({ pattern: '^[0-9]+(,[0-9]+)*$', maxLength: 20_000, description: 'comma-separated job ids' }) },
  { additionalProperties: false },
);

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

function filterOf(q: {
  status?: JobState[];
  site?: string;
  group?: string;
  owner?: string;
  since?: string;
  until?: string;
  search?: string;
}): JobFilter {
  const f: JobFilter = {};
  if (q.status && q.status.length > 0) f.status = [...new Set(q.status)];
  if (q.site) f.site = q.site;
  if (q.group) f.jobGroup = q.group;
  if (q.owner) f.owner = q.owner;
  if (q.since) f.since = new Date(q.since);
  if (q.until) f.until = new Date(q.until);
  if (q.search) f.search = q.search;
  return f;
}

/** A user may filter on their own name only; admins on anyone. */
function checkOwnerFilter(p: Principal, owner: string | undefined): void {
  if (owner !== undefined && p.role !== 'admin' && owner !== p.user) {
    throw new WmsError('WMS_FORBIDDEN', 'only admins may list the jobs of other users');
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

export const jobsPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const people = requireRole(ctx, 'user', 'admin');
  const readers = requireRole(ctx, 'user', 'admin', 'job');
  const limits = ctx.config.jobLimits;

  app.post(
    '/api/jobs',
    {
      onRequest: people,
      bodyLimit: ctx.config.requestBodyMaxBytes,
      schema: {
        tags: ['jobs'],
        summary: 'Submit one JDL, a list of JDLs or a parametric JDL (all jobs stored or none)',
        operationId: 'submitJobs',
        security: BEARER,
        body: ref(SubmitJobsRequestSchema),
        response: { 201: ref(SubmitJobsAnswerSchema), ...errorResponses(400, ...AUTH_ERRORS, 404, 413) },
      },
    },
    async (request, reply) => {
      const p = identityOf(request);
      if (p.role !== 'user' && p.role !== 'admin') throw new WmsError('WMS_FORBIDDEN', 'only people submit jobs');
      const { jdl, jdls } = request.body;
      if ((jdl === undefined) === (jdls === undefined)) {
        throw new WmsError('WMS_VALIDATION', 'give exactly one of "jdl" and "jdls"', {
          details: { problems: [{ message: 'give exactly one of "jdl" and "jdls"', path: 'body' }] },
        });
      }
      const submitter = submitterOf(p);
      // Read per submission (see registeredSiteNames): every replica knows a new site at once.
      const options: DescribeOptions = ctx.config.allowUnregisteredSites ? {} : { knownSites: await registeredSiteNames(ctx.handle) };
      const descriptions =
        jdl !== undefined
          ? describeJobs(jdl, submitter, limits, options)
          : jdls!.length === 1
            ? describeJobs(jdls![0] as string, submitter, limits, options)
            : describeJobList(jdls!, submitter, limits, options);
      const inputSandboxes = inputSandboxesOf(descriptions);
      const jobIds = await submitJobs(ctx.handle, descriptions, {
        source: `JobManager:${p.user}`,
        inputSandboxes,
        sandboxAccess: p.role === 'admin' ? 'any' : 'owner',
      });
      request.log.info({ owner: p.user, jobs: jobIds.length }, 'jobs submitted');
      ctx.metrics.jobsSubmitted(jobIds.length);
      ctx.events.emit('jobs-submitted', { ids: jobIds });
      return reply.code(201).send({ jobIds, jobsPerJdl: jobsPerJdl(descriptions) });
    },
  );

  app.get(
    '/api/jobs',
    {
      onRequest: people,
      schema: {
        tags: ['jobs'],
        summary: 'List jobs, newest first, with filters and paging',
        operationId: 'listJobs',
        security: BEARER,
        querystring: ListQuery,
        response: { 200: ref(JobListSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const p = identityOf(request);
      const q = request.query;
      checkOwnerFilter(p, q.owner);
      const limit = Math.min(q.limit ?? ctx.config.listDefaultLimit, ctx.config.listMaxLimit);
      const offset = q.offset ?? 0;
      const { jobs, total } = await listJobs(ctx.handle, filterOf(q), { limit, offset }, ownerScope(p));
      return { jobs: jobs.map(jobSummary), total, limit, offset };
    },
  );

  app.get(
    '/api/jobs/summary',
    {
      onRequest: people,
      schema: {
        tags: ['jobs'],
        summary: 'Count jobs by status (same filters as the listing)',
        operationId: 'countJobs',
        security: BEARER,
        querystring: Type.Omit(ListQuery, ['limit', 'offset']),
        response: { 200: ref(JobCountsSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const p = identityOf(request);
      checkOwnerFilter(p, request.query.owner);
      const counts = await countJobsByStatus(ctx.handle, filterOf(request.query), ownerScope(p));
      const nonZero = Object.fromEntries(Object.entries(counts).filter(([, n]) => Number(n) > 0));
      const total = Object.values(nonZero).reduce((a, n) => a + Number(n), 0);
      return { counts: nonZero as Record<string, number>, total };
    },
  );

  app.get(
    '/api/jobs/status',
    {
      onRequest: people,
      schema: {
        tags: ['jobs'],
        summary: 'Status of several jobs at once',
        operationId: 'getJobsStatus',
        security: BEARER,
        querystring: StatusQuery,
        response: { 200: ref(JobStatusListSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const p = identityOf(request);
      const ids = [...new Set(request.query.ids.split(',').map(Number))];
      if (ids.length > 10_000) throw new WmsError('WMS_VALIDATION', 'at most 10000 ids at once');
      const rows = await getJobs(ctx.handle, ids, ownerScope(p));
      const found = new Set(rows.map((r) => Number(r.id)));
      const byId = new Map(rows.map((r) => [Number(r.id), r]));
      return {
        jobs: ids.filter((id) => found.has(id)).map((id) => jobSummary(byId.get(id)!)),
        notFound: ids.filter((id) => !found.has(id)),
      };
    },
  );

  app.get(
    '/api/jobs/:id',
    {
      onRequest: readers,
      schema: {
        tags: ['jobs'],
        summary: 'One job, with its JDL',
        operationId: 'getJob',
        security: BEARER,
        params: JobIdParams,
        response: { 200: ref(JobDetailSchema), ...errorResponses(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (request) => {
      const p = identityOf(request);
      const { id } = request.params;
      const row = await visibleJob(ctx, p, id);
      return jobDetail(row);
    },
  );

  app.get(
    '/api/jobs/:id/history',
    {
      onRequest: readers,
      schema: {
        tags: ['jobs'],
        summary: "A job's status history (status, minor status, application status, source, time)",
        operationId: 'getJobHistory',
        security: BEARER,
        params: JobIdParams,
        response: { 200: ref(JobHistorySchema), ...errorResponses(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (request) => {
      const p = identityOf(request);
      const { id } = request.params;
      await visibleJob(ctx, p, id);
      const history = await getJobHistory(ctx.handle, id);
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
    },
  );

  app.get(
    '/api/jobs/:id/parameters',
    {
      onRequest: readers,
      schema: {
        tags: ['jobs'],
        summary: 'Named values reported about a job (host, CPU time, DB12, ...)',
        operationId: 'getJobParameters',
        security: BEARER,
        params: JobIdParams,
        response: { 200: ref(JobParametersSchema), ...errorResponses(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (request) => {
      const p = identityOf(request);
      const { id } = request.params;
      await visibleJob(ctx, p, id);
      return { jobId: id, parameters: await getJobParameters(ctx.handle, id) };
    },
  );

  app.get(
    '/api/jobs/:id/heartbeats',
    {
      onRequest: people,
      schema: {
        tags: ['jobs'],
        summary: `A job's last heartbeats (CPU, wall clock, memory, disk, load), newest last, at most ${MAX_HEARTBEATS}`,
        operationId: 'getJobHeartbeats',
        security: BEARER,
        params: JobIdParams,
        querystring: HeartbeatsQuery,
        response: { 200: ref(JobHeartbeatsSchema), ...errorResponses(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (request) => {
      const p = identityOf(request);
      const { id } = request.params;
      await visibleJob(ctx, p, id);
      const heartbeats = await getJobHeartbeats(ctx.handle, id, request.query.limit ?? MAX_HEARTBEATS);
      return { jobId: id, heartbeats: heartbeats.map((h) => ({ ...h, at: iso(h.at) as string })) };
    },
  );

  const actions = {
    kill: {
      operationId: 'killJobs',
      summary: 'Kill jobs (answered per job)',
      run: (ids: number[], p: Principal) => killJobs(ctx.handle, ids, { scope: ownerScope(p), source: `JobManager:${p.user}` }),
    },
    reschedule: {
      operationId: 'rescheduleJobs',
      summary: `Reschedule jobs (answered per job); past ${limits.maxRescheduling} reschedules a job fails`,
      run: (ids: number[], p: Principal) =>
        rescheduleJobs(ctx.handle, ids, {
          scope: ownerScope(p),
          source: `JobManager:${p.user}`,
          maxRescheduling: limits.maxRescheduling,
        }),
    },
    delete: {
      operationId: 'deleteJobs',
      summary: 'Delete jobs (answered per job)',
      run: (ids: number[], p: Principal) => deleteJobs(ctx.handle, ids, { scope: ownerScope(p), source: `JobManager:${p.user}` }),
    },
  } as const;

  for (const [name, action] of Object.entries(actions)) {
    app.post(
      `/api/jobs/${name}`,
      {
        onRequest: people,
        schema: {
          tags: ['jobs'],
          summary: action.summary,
          operationId: action.operationId,
          security: BEARER,
          body: ref(BulkIdsSchema),
          response: { 200: ref(BulkResultSchema), ...errorResponses(400, ...AUTH_ERRORS) },
        },
      },
      async (request) => {
        const p = identityOf(request);
        const ids = [...new Set(request.body.ids)];
        const result = await action.run(ids, p);
        if (result.succeeded.length > 0) ctx.events.emit('jobs-changed', { action: name, ids: result.succeeded });
        return {
          succeeded: result.succeeded.map(Number),
          failed: result.failed.map((f) => ({ id: Number(f.id), code: f.code, message: f.message })),
        };
      },
    );
  }
};
