/**
 * The matcher: a pilot asks for one job (`{ match: null }` when none fits, a 200), and the
 * explain calls say why work does or does not flow. Who may do what: `services/logic/matching.ts`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { PluginOptions } from '../context.js';
import { ExplainJobSchema, ExplainResourceSchema, MatchAnswerSchema, ref, ResourceSchema } from '../../api/index.js';
import { explainJob, explainResource, matchJob } from '../logic/matching.js';
import { AUTH_ERRORS, errorResponses, JobIdParams } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

export const matcherPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  app.post(
    '/api/match',
    {
      onRequest: requireRole(ctx, 'pilot', 'admin'),
      schema: {
        tags: ['matcher'],
        summary: 'Ask for one job: answers the job and a job token, or { match: null }',
        operationId: 'matchJob',
        security: BEARER,
        body: ref(ResourceSchema),
        response: { 200: ref(MatchAnswerSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => matchJob(ctx, identityOf(request), request.body, request.log),
  );

  app.post(
    '/api/match/explain',
    {
      onRequest: requireRole(ctx, 'pilot', 'admin', 'site-admin'),
      schema: {
        tags: ['matcher'],
        summary: 'For a resource description: each task queue considered and why it was rejected',
        operationId: 'explainResource',
        security: BEARER,
        body: ref(ResourceSchema),
        response: { 200: ref(ExplainResourceSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => explainResource(ctx, identityOf(request), request.body),
  );

  app.get(
    '/api/jobs/:id/explain',
    {
      onRequest: requireRole(ctx, 'user', 'admin', 'site-admin'),
      schema: {
        tags: ['matcher'],
        summary: 'For a job: which registered queues could run it, and what stops it',
        operationId: 'explainJob',
        security: BEARER,
        params: JobIdParams,
        response: { 200: ref(ExplainJobSchema), ...errorResponses(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (request) => explainJob(ctx, identityOf(request), request.params),
  );
};
