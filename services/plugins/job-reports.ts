/**
 * What a running job reports, with the job token minted at match time (bound to one job and
 * its pilot): status changes with parameters, and heartbeats whose answer carries the job's
 * pending commands (each delivered once). And for the owner: where the job's outputs are.
 *
 * Job tokens are short-lived (`tokens.jobTtl`, 1 h): a heartbeat or status answer carries a new
 * one (`token`, `tokenExpiresAt`) once the token used is past half its life. A job token dies
 * with its job: once the job is Done, Failed, Killed or Deleted every call answers 403 with
 * `jobTokenDeadMessage` (which names the state, so the wrapper knows why it was stopped).
 *
 * A job token of a match that no longer holds the job (the job was rescheduled, and maybe
 * matched by another pilot) is refused with `JOB_NOT_HELD_CODE` (409) on both routes, before
 * anything else: the wrapper that holds it kills its payload. A report repeated with the same
 * `reportId` is answered accepted and `duplicate`, and applied once (db/ops/job-reports.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { WmsError } from '../../core/errors.js';
import type { JobPrincipal } from '../../core/identity.js';
import { JOB_NOT_HELD_CODE, jobNotHeldMessage, jobTokenDeadMessage, type RenewedToken } from '../../core/pilot-protocol.js';
import { jobSandboxesOf, jobTokenDead, recordHeartbeat, reportJobStatus } from '../../db/index.js';
import type { PluginOptions, ServiceContext } from '../context.js';
import {
  HeartbeatAnswerApiSchema,
  HeartbeatReportSchema,
  JobOutputSchema,
  JobStatusAnswerApiSchema,
  JobStatusReportApiSchema,
  ref,
} from '../../api/index.js';
import { AUTH_ERRORS, errorResponses, JobIdParams } from '../schemas.js';
import { BEARER, bearerToken, identityOf, requireRole } from './auth.js';
import { visibleJob } from './jobs.js';

/** The job token's principal, checked against the job id of the route. */
function jobTokenFor(p: ReturnType<typeof identityOf>, id: number): JobPrincipal {
  const j = p as JobPrincipal;
  if (j.jobId !== id) throw new WmsError('WMS_FORBIDDEN', `this job token is bound to job ${j.jobId}, not ${id}`);
  return j;
}

/**
 * A new token for the caller when the one it used is past half its life (`{}` otherwise):
 * same principal, the full lifetime `ttlSeconds` from now.
 */
async function renewalFor(ctx: ServiceContext, request: FastifyRequest, ttlSeconds: number): Promise<Partial<RenewedToken>> {
  const token = bearerToken(request);
  if (token === null) return {};
  const signer = await ctx.signer();
  const t = await signer.inspect(token);
  const now = ctx.clock().getTime();
  const life = t.expiresAt.getTime() - t.issuedAt.getTime();
  if (!Number.isFinite(life) || t.expiresAt.getTime() - now > life / 2) return {};
  const renewed = await signer.sign(t.principal, ttlSeconds);
  return { token: renewed.token, tokenExpiresAt: renewed.expiresAt.toISOString() };
}

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
    async (request) => {
      const p = jobTokenFor(identityOf(request), request.params.id);
      const { status, minorStatus, applicationStatus, parameters, reportId } = request.body;
      const { held, ...result } = await reportJobStatus(
        ctx.handle,
        p.jobId,
        p.pilotId,
        {
          status,
          minorStatus,
          ...(applicationStatus !== undefined ? { applicationStatus } : {}),
          ...(parameters ? { parameters } : {}),
          ...(reportId !== undefined ? { reportId } : {}),
        },
        p.pilotId === null ? 'JobWrapper' : `JobWrapper:pilot ${p.pilotId}`,
      );
      if (!held && result.status !== 'Deleted') throw new WmsError(JOB_NOT_HELD_CODE, jobNotHeldMessage(p.jobId));
      if (result.duplicate) return result;
      if (!result.accepted && jobTokenDead(result.status)) {
        throw new WmsError('WMS_FORBIDDEN', jobTokenDeadMessage(p.jobId, result.status));
      }
      // Renewed only for a report taken (the job is still this pilot's), and not the last one.
      if (!result.accepted || jobTokenDead(result.status)) return result;
      return { ...result, ...(await renewalFor(ctx, request, ctx.config.tokens.jobTtlSeconds)) };
    },
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
    async (request) => {
      const p = jobTokenFor(identityOf(request), request.params.id);
      const { held, ...answer } = await recordHeartbeat(ctx.handle, p.jobId, p.pilotId, request.body, 'Watchdog');
      if (!held && answer.status !== 'Deleted') throw new WmsError(JOB_NOT_HELD_CODE, jobNotHeldMessage(p.jobId));
      if (jobTokenDead(answer.status)) throw new WmsError('WMS_FORBIDDEN', jobTokenDeadMessage(p.jobId, answer.status));
      return { ...answer, ...(await renewalFor(ctx, request, ctx.config.tokens.jobTtlSeconds)) };
    },
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
    async (request) => {
      const row = await visibleJob(ctx, identityOf(request), request.params.id);
      return { jobId: row.id, status: row.status, sandboxes: await jobSandboxesOf(ctx.handle, row.id, 'Output') };
    },
  );
};
