/**
 * Quotas and usage, and the fair shares behind them.
 *
 * - `GET /api/usage`: per (VO, group) and per user, jobs waiting and running now, CPU and
 *   normalized CPU of the finished jobs of the last day and week (accounting), and per group its
 *   share, share fraction and used fraction within the VO (db/queries/usage.ts). One statement.
 *   Users get their group's line and their own; admins and site admins everything.
 * - `GET /api/shares`, `PUT /api/shares/:vo/:group { share }` (admins): the group shares
 *   (DIRAC's JobShare, default 1000). A change goes through `setGroupShare`, which recomputes the
 *   group's task-queue priorities in the same transaction, so the matcher sees it at once.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DEFAULT_GROUP_SHARE, listGroupShares, setGroupShare, usageReport } from '../../db/index.js';
import type { PluginOptions } from '../context.js';
import { ref, SetShareRequestSchema, ShareListSchema, ShareParamsSchema, ShareSchema, UsageSchema } from '../../api/index.js';
import { AUTH_ERRORS, errorResponses } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

const DAY_MS = 86_400_000;

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
    async (request) => {
      const p = identityOf(request);
      const now = ctx.clock().getTime();
      const daySince = new Date(now - DAY_MS);
      const weekSince = new Date(now - 7 * DAY_MS);
      if (p.role !== 'user') {
        return {
          daySince: daySince.toISOString(),
          weekSince: weekSince.toISOString(),
          defaultShare: DEFAULT_GROUP_SHARE,
          ...(await usageReport(ctx.handle, { daySince, weekSince })),
        };
      }
      // The whole VO is read (fractions are per VO); the user gets their group and themselves.
      const report = await usageReport(ctx.handle, { daySince, weekSince, vo: p.vo });
      return {
        daySince: daySince.toISOString(),
        weekSince: weekSince.toISOString(),
        defaultShare: DEFAULT_GROUP_SHARE,
        groups: report.groups.filter((g) => g.group === p.group),
        users: report.users.filter((u) => u.user === p.user && u.vo === p.vo),
      };
    },
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
    async () => ({
      defaultShare: DEFAULT_GROUP_SHARE,
      shares: (await listGroupShares(ctx.handle)).map((s) => ({ vo: s.vo, group: s.ownerGroup, share: s.share, configured: s.configured })),
    }),
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
    async (request) => {
      const { vo, group } = request.params;
      const { share } = request.body;
      await setGroupShare(ctx.handle, vo, group, share);
      request.log.info({ vo, group, share, by: identityOf(request).user }, 'group share set');
      return { vo, group, share, configured: true };
    },
  );
};
