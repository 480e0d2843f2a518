/**
 * Quotas and usage (`GET /api/usage`), and the fair shares behind them (`GET /api/shares`,
 * `PUT /api/shares/:vo/:group { share }`, admins). Who sees what: `services/logic/usage.ts`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { PluginOptions } from '../context.js';
import { ref, SetShareRequestSchema, ShareListSchema, ShareParamsSchema, ShareSchema, UsageSchema } from '../../api/index.js';
import { getUsage, listShares, setShare } from '../logic/usage.js';
import { AUTH_ERRORS, errorResponses } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

export const usagePlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const admins = requireRole(ctx, 'admin');

  app.get(
    '/api/usage',
    {
      onRequest: requireRole(ctx, 'user', 'admin', 'site-admin'),
      schema: {
        tags: ['accounting'],
        summary: 'Per group and user: jobs waiting and running, CPU of the last day and week, shares against use',
        operationId: 'getUsage',
        security: BEARER,
        response: { 200: ref(UsageSchema), ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async (request) => getUsage(ctx, identityOf(request)),
  );

  app.get(
    '/api/shares',
    {
      onRequest: admins,
      schema: {
        tags: ['accounting'],
        summary: 'The fair share of every group that has one set or ever had jobs (default 1000)',
        operationId: 'listShares',
        security: BEARER,
        response: { 200: ref(ShareListSchema), ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async () => listShares(ctx),
  );

  app.put(
    '/api/shares/:vo/:group',
    {
      onRequest: admins,
      schema: {
        tags: ['accounting'],
        summary: "Set a group's fair share; its task-queue priorities are recomputed at once",
        operationId: 'setShare',
        security: BEARER,
        params: ShareParamsSchema,
        body: ref(SetShareRequestSchema),
        response: { 200: ref(ShareSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => setShare(ctx, identityOf(request), { ...request.params, ...request.body }, request.log),
  );
};
