/**
 * `GET /api/health`: no token needed; 200 when the database answers, else 503
 * WMS_DB_UNAVAILABLE with Retry-After (load balancers take the replica out). Each call asks the
 * database anew (`select 1` through the pool), so it answers 200 again as soon as PostgreSQL is
 * back, without a restart; the dashboard's outage banner polls it.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { pingDb } from '../../db/index.js';
import type { PluginOptions } from '../context.js';
import { HealthSchema, ref } from '../../api/index.js';
import { errorResponses } from '../schemas.js';
import { OPEN } from './auth.js';

export const healthPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  app.get(
    '/api/health',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness and database reachability',
        operationId: 'getHealth',
        security: OPEN,
        response: { 200: ref(HealthSchema), ...errorResponses() },
      },
    },
    async () => {
      await pingDb(ctx.handle);
      return { status: 'ok' as const, db: 'ok' as const, driver: ctx.handle.driver, time: ctx.clock().toISOString() };
    },
  );
};
