/**
 * Accounting reports: `GET /api/accounting?by=site|group|user|vo&since=7d`, the totals of the
 * accounting records of finished jobs. Who sees what: `services/logic/accounting.ts`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AccountingGroupingSchema, AccountingReportSchema, ref } from '../../api/index.js';
import type { PluginOptions } from '../context.js';
import { getAccounting } from '../logic/accounting.js';
import { AUTH_ERRORS, errorResponses } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

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
    async (request) => getAccounting(ctx, identityOf(request), request.query),
  );
};
