/**
 * Accounting reports: `GET /api/accounting?by=site|group|user|vo&since=7d` answers the totals
 * of the accounting records (one per finished job, written by the accounting agent) ended
 * within `since` (default 7d), one row per key, biggest normalized CPU first. Users see only
 * their own records (their name in their VO); admins and site admins see all.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { parseDuration } from '../../core/config.js';
import { WmsError } from '../../core/errors.js';
import { ACCOUNTING_GROUPINGS, accountingReport } from '../../db/index.js';
import { AccountingGroupingSchema, AccountingReportSchema, ref, type AccountingGrouping } from '../../api/index.js';
import type { PluginOptions } from '../context.js';
import { AUTH_ERRORS, errorResponses } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

const DEFAULT_SINCE = '7d';

/** The groupings the database reports are those the API declares (a compile-time check). */
const GROUPINGS: readonly AccountingGrouping[] = ACCOUNTING_GROUPINGS;
void GROUPINGS;

const AccountingQuery = Type.Object(
  {
    by: AccountingGroupingSchema,
    since: Type.Optional(
      Type.String({ maxLength: 32, description: 'records of jobs ended within this duration: 30m, 12h, 7d, 2w (default 7d)' }),
    ),
  },
  { additionalProperties: false },
);

export const accountingPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const people = requireRole(ctx, 'user', 'admin', 'site-admin');

  app.get(
    '/api/accounting',
    {
      onRequest: people,
      schema: {
        tags: ['accounting'],
        summary: 'Accounting of finished jobs, grouped by site, group, user or VO, biggest normalized CPU first',
        operationId: 'getAccounting',
        security: BEARER,
        querystring: AccountingQuery,
        response: { 200: ref(AccountingReportSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const p = identityOf(request);
      const sinceText = request.query.since ?? DEFAULT_SINCE;
      const seconds = parseDuration(sinceText);
      if (seconds === null) {
        throw new WmsError('WMS_VALIDATION', `since: "${sinceText}" is not a duration (e.g. 30m, 12h, 7d, 2w)`);
      }
      const since = new Date(ctx.clock().getTime() - seconds * 1000);
      const rows = await accountingReport(ctx.handle, {
        by: request.query.by,
        since,
        // A user is the pair (VO, name): only their own records, of their VO.
        ...(p.role === 'user' ? { owner: p.user, vo: p.vo } : {}),
      });
      return { by: request.query.by, since: since.toISOString(), rows };
    },
  );
};
