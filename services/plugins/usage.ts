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
import { Type } from 'typebox';
import { DEFAULT_GROUP_SHARE, listGroupShares, setGroupShare, usageReport } from '../../db/index.js';
import type { PluginOptions } from '../context.js';
import { AUTH_ERRORS, errorResponses } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

const DAY_MS = 86_400_000;
const NamePattern = '^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$';

const Used = Type.Object({
  jobs: Type.Integer({ description: 'finished jobs (accounting records) ended in the window' }),
  cpuSeconds: Type.Number(),
  normalizedCpuSeconds: Type.Number({ description: "CPU seconds × the pilot's DB12" }),
});

const Live = {
  waiting: Type.Integer({ description: 'jobs not yet handed to a pilot (Received … Waiting, Rescheduled)' }),
  running: Type.Integer({ description: 'jobs held by a pilot (Matched, Running, Stalled, Completing)' }),
  day: Used,
  week: Used,
};

const GroupUsageSchema = Type.Object({
  vo: Type.String(),
  group: Type.String(),
  share: Type.Number({ description: `the configured share, else ${DEFAULT_GROUP_SHARE}` }),
  shareConfigured: Type.Boolean(),
  shareFraction: Type.Number({ description: "share / the sum of the shares of the VO's active groups" }),
  usedFraction: Type.Number({ description: "the group's normalized CPU of the week / the VO's (0 when the VO used none)" }),
  ...Live,
});

const UserUsageSchema = Type.Object({ vo: Type.String(), group: Type.String(), user: Type.String(), ...Live });

const UsageAnswer = Type.Object({
  daySince: Type.String({ format: 'date-time' }),
  weekSince: Type.String({ format: 'date-time' }),
  defaultShare: Type.Number(),
  groups: Type.Array(GroupUsageSchema, { description: 'active groups: jobs waiting or running, or finished in the week' }),
  users: Type.Array(UserUsageSchema),
});

const ShareSchema = Type.Object({
  vo: Type.String(),
  group: Type.String(),
  share: Type.Number(),
  configured: Type.Boolean({ description: `false: not set, the default ${DEFAULT_GROUP_SHARE} applies` }),
});

const ShareParams = Type.Object({
  vo: Type.String({ pattern: NamePattern }),
  group: Type.String({ pattern: NamePattern }),
});

const ShareBody = Type.Object(
  { share: Type.Number({ exclusiveMinimum: 0, description: `the group's fair share (DIRAC's JobShare; default ${DEFAULT_GROUP_SHARE})` }) },
  { additionalProperties: false },
);

export const usagePlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const admins = requireRole(ctx, 'admin');

  app.get(
    '/api/usage',
    {
      onRequest: requireRole(ctx, 'user', 'admin', 'site-admin'),
      schema: {
        tags: ['accounting'],
        summary: 'Per group and user: jobs waiting and running, CPU of the last day and week, shares against use',
        security: BEARER,
        response: { 200: UsageAnswer, ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const p = identityOf(request);
      const now = ctx.clock().getTime();
      const daySince = new Date(now - DAY_MS);
      const weekSince = new Date(now - 7 * DAY_MS);
      if (p.role !== 'user') {
        return { daySince: daySince.toISOString(), weekSince: weekSince.toISOString(), defaultShare: DEFAULT_GROUP_SHARE, ...(await usageReport(ctx.handle, { daySince, weekSince })) };
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
        security: BEARER,
        response: { 200: Type.Object({ defaultShare: Type.Number(), shares: Type.Array(ShareSchema) }), ...errorResponses(...AUTH_ERRORS) },
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
        security: BEARER,
        params: ShareParams,
        body: ShareBody,
        response: { 200: ShareSchema, ...errorResponses(400, ...AUTH_ERRORS) },
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
