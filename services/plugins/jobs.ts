/**
 * The jobs API: submit, read and act on jobs. Who may do what: `services/logic/jobs.ts`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { MAX_HEARTBEATS } from '../../db/index.js';
import type { PluginOptions } from '../context.js';
import {
  BulkActionRequestSchema,
  BulkResultSchema,
  JOB_SORT_COLUMNS,
  JOB_SORT_ORDERS,
  JobCountsSchema,
  JobDetailSchema,
  JobHeartbeatsSchema,
  JobHistorySchema,
  JobListSchema,
  JobParametersSchema,
  JobStateSchema,
  JobStatusListSchema,
  jobFilterProperties,
  ref,
  SubmitJobsAnswerSchema,
  SubmitJobsRequestSchema,
} from '../../api/index.js';
import {
  countJobs,
  deleteJobs,
  getJob,
  getJobHeartbeats,
  getJobHistory,
  getJobParameters,
  getJobsStatus,
  killJobs,
  listJobs,
  rescheduleJobs,
  submitJobs,
} from '../logic/jobs.js';
import { AUTH_ERRORS, errorResponses, JobIdParams } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

const ListQuery = Type.Object(
  {
    ...jobFilterProperties,
    status: Type.Optional(Type.Array(JobStateSchema, { description: 'repeat for several' })),
    pilot: Type.Optional(Type.Integer({ minimum: 1, description: 'the jobs this pilot holds or last ran' })),
    limit: Type.Optional(Type.Integer({ minimum: 1 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
    sort: Type.Optional(Type.Enum(JOB_SORT_COLUMNS, { description: 'sort by this column (default id); ties go by id' })),
    order: Type.Optional(Type.Enum(JOB_SORT_ORDERS, { description: 'default: desc for id (newest first), asc for the other columns' })),
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

export const jobsPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const people = requireRole(ctx, 'user', 'admin');
  const readers = requireRole(ctx, 'user', 'admin', 'job');

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
    async (request, reply) => reply.code(201).send(await submitJobs(ctx, identityOf(request), request.body, request.log)),
  );

  app.get(
    '/api/jobs',
    {
      onRequest: people,
      schema: {
        tags: ['jobs'],
        summary: 'List jobs, newest first or sorted by a column, with filters and paging',
        operationId: 'listJobs',
        security: BEARER,
        querystring: ListQuery,
        response: { 200: ref(JobListSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => listJobs(ctx, identityOf(request), request.query),
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
        querystring: Type.Omit(ListQuery, ['limit', 'offset', 'sort', 'order']),
        response: { 200: ref(JobCountsSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => countJobs(ctx, identityOf(request), request.query),
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
    async (request) => getJobsStatus(ctx, identityOf(request), request.query),
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
    async (request) => getJob(ctx, identityOf(request), request.params),
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
    async (request) => getJobHistory(ctx, identityOf(request), request.params),
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
    async (request) => getJobParameters(ctx, identityOf(request), request.params),
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
    async (request) => getJobHeartbeats(ctx, identityOf(request), { ...request.params, ...request.query }),
  );

  const actions = {
    kill: { operationId: 'killJobs', summary: 'Kill jobs by ids or by filter (answered per job; final jobs are skipped)', run: killJobs },
    reschedule: {
      operationId: 'rescheduleJobs',
      summary:
        'Reschedule jobs by ids or by filter (answered per job; Deleted jobs are skipped); ' +
        `past ${ctx.config.jobLimits.maxRescheduling} reschedules a job fails`,
      run: rescheduleJobs,
    },
    delete: {
      operationId: 'deleteJobs',
      summary: 'Delete jobs by ids or by filter (answered per job; Deleted jobs are skipped)',
      run: deleteJobs,
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
          body: ref(BulkActionRequestSchema),
          response: { 200: ref(BulkResultSchema), ...errorResponses(400, ...AUTH_ERRORS) },
        },
      },
      async (request) => action.run(ctx, identityOf(request), request.body),
    );
  }
};
