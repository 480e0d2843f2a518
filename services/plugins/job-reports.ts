/**
 * What a running job reports with its job token (status, heartbeats), and where a job's outputs
 * are. Who may do what, and when a job token is refused or renewed: `services/logic/job-reports.ts`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { PluginOptions } from '../context.js';
import {
  HeartbeatAnswerApiSchema,
  HeartbeatReportSchema,
  JobOutputSchema,
  JobStatusAnswerApiSchema,
  JobStatusReportApiSchema,
  ref,
} from '../../api/index.js';
import { getJobOutput, reportJobStatus, sendHeartbeat } from '../logic/job-reports.js';
import { AUTH_ERRORS, errorResponses, JobIdParams } from '../schemas.js';
import { BEARER, bearerToken, identityOf, requireRole } from './auth.js';

export const jobReportsPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const jobOnly = requireRole(ctx, 'job');

  app.post(
    '/api/jobs/:id/status',
    {
      onRequest: jobOnly,
      schema: {
        tags: ['job wrapper'],
        summary: 'The job wrapper reports a status, minor status and parameters',
        description:
          'accepted=false when the job is no longer in a state that allows the change (killed). A report with a reportId at or below the last one applied is answered accepted, duplicate, and applied nowhere. 409 WMS_CONFLICT: the job is no longer held by this match (rescheduled, another pilot): stop the payload.',
        operationId: 'reportJobStatus',
        security: BEARER,
        params: JobIdParams,
        body: ref(JobStatusReportApiSchema),
        response: { 200: ref(JobStatusAnswerApiSchema), ...errorResponses(400, ...AUTH_ERRORS, 409) },
      },
    },
    async (request) =>
      reportJobStatus(ctx, identityOf(request), { id: request.params.id, token: bearerToken(request), report: request.body }),
  );

  app.post(
    '/api/jobs/:id/heartbeat',
    {
      onRequest: jobOnly,
      schema: {
        tags: ['job wrapper'],
        summary: "A heartbeat (CPU, wall clock, memory, disk, stdout tail); the answer carries the job's commands",
        operationId: 'sendHeartbeat',
        security: BEARER,
        params: JobIdParams,
        body: ref(HeartbeatReportSchema),
        response: { 200: ref(HeartbeatAnswerApiSchema), ...errorResponses(400, ...AUTH_ERRORS, 409) },
      },
    },
    async (request) =>
      sendHeartbeat(ctx, identityOf(request), { id: request.params.id, token: bearerToken(request), report: request.body }),
  );

  app.get(
    '/api/jobs/:id/output',
    {
      onRequest: requireRole(ctx, 'user', 'admin'),
      schema: {
        tags: ['jobs'],
        summary: "The job's output sandboxes (fetch each with GET /api/sandboxes/:sha256)",
        operationId: 'getJobOutput',
        security: BEARER,
        params: JobIdParams,
        response: { 200: ref(JobOutputSchema), ...errorResponses(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (request) => getJobOutput(ctx, identityOf(request), request.params),
  );
};
