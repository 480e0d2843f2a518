/**
 * The matcher: a pilot sends its resource description and gets one job (its JDL and a freshly
 * minted job token bound to that job) or `{ match: null }`. "No match" is a normal answer for
 * a pilot, not an error: it is a 200 so that pilots and proxies never log it as a failure.
 *
 * Explain calls say why work does or does not flow: for a resource, every task queue
 * considered and why each was rejected; for a job, which registered queues could run it and
 * what stops it.
 *
 * Who: `POST /api/match` pilots (bound to their pilot id and VO) and admins (for debugging);
 * resource explain pilots, admins and site admins; job explain the owner, admins, site admins.
 */
import { performance } from 'node:perf_hooks';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ownerScope, type JobPrincipal } from '../../core/identity.js';
import { explainJob, explainResource, matchJob } from '../../db/index.js';
import type { PluginOptions } from '../context.js';
import { explainJobView, explainResourceView, ExplainJobSchema, ExplainResourceSchema } from '../explain-view.js';
import { resourceOf } from '../resource.js';
import { AUTH_ERRORS, errorResponses, JobIdParams, ResourceSchema } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

const MatchAnswer = Type.Object({
  match: Type.Union([
    Type.Object({
      jobId: Type.Integer(),
      jdl: Type.String(),
      owner: Type.String(),
      ownerGroup: Type.String(),
      vo: Type.String(),
      token: Type.String({ description: 'job token: role job, bound to this job id' }),
      tokenExpiresAt: Type.String({ format: 'date-time' }),
    }),
    Type.Null(),
  ]),
});

export const matcherPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  app.post(
    '/api/match',
    {
      onRequest: requireRole(ctx, 'pilot', 'admin'),
      schema: {
        tags: ['matcher'],
        summary: 'Ask for one job: answers the job and a job token, or { match: null }',
        security: BEARER,
        body: ResourceSchema,
        response: { 200: MatchAnswer, ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const p = identityOf(request);
      const resource = resourceOf(request.body, p);
      const pilot = p.role === 'pilot' ? { pilotId: p.pilotId, source: 'Matcher' } : { source: 'Matcher' };
      const t0 = performance.now();
      const matched = await matchJob(ctx.handle, resource, pilot);
      if (!matched) {
        ctx.metrics.observeMatch(false, (performance.now() - t0) / 1000);
        return { match: null };
      }
      const jobPrincipal: JobPrincipal = {
        role: 'job',
        user: matched.owner,
        vo: matched.vo,
        group: matched.ownerGroup,
        jobId: Number(matched.id),
        pilotId: p.role === 'pilot' ? p.pilotId : null,
      };
      const signer = await ctx.signer();
      const { token, expiresAt } = await signer.sign(jobPrincipal, ctx.config.tokens.jobTtlSeconds);
      ctx.metrics.observeMatch(true, (performance.now() - t0) / 1000);
      request.log.debug({ jobId: jobPrincipal.jobId, site: resource.site }, 'job matched');
      return {
        match: {
          jobId: jobPrincipal.jobId,
          jdl: matched.jdl,
          owner: matched.owner,
          ownerGroup: matched.ownerGroup,
          vo: matched.vo,
          token,
          tokenExpiresAt: expiresAt.toISOString(),
        },
      };
    },
  );

  app.post(
    '/api/match/explain',
    {
      onRequest: requireRole(ctx, 'pilot', 'admin', 'site-admin'),
      schema: {
        tags: ['matcher'],
        summary: 'For a resource description: each task queue considered and why it was rejected',
        security: BEARER,
        body: ResourceSchema,
        response: { 200: ExplainResourceSchema, ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const p = identityOf(request);
      const resource = resourceOf(request.body, p);
      return explainResourceView(await explainResource(ctx.handle, resource));
    },
  );

  app.get(
    '/api/jobs/:id/explain',
    {
      onRequest: requireRole(ctx, 'user', 'admin', 'site-admin'),
      schema: {
        tags: ['matcher'],
        summary: 'For a job: which registered queues could run it, and what stops it',
        security: BEARER,
        params: JobIdParams,
        response: { 200: ExplainJobSchema, ...errorResponses(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (request) => {
      const p = identityOf(request);
      const scope = p.role === 'site-admin' ? {} : ownerScope(p);
      return explainJobView(await explainJob(ctx.handle, request.params.id, scope));
    },
  );
};
