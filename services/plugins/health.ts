/**
 * `GET /api/health`: no token needed; 200 when the database answers, else 503
 * WMS_DB_UNAVAILABLE with Retry-After (load balancers take the replica out). Each call asks the
 * database anew (`select 1` through the pool), so it answers 200 again as soon as PostgreSQL is
 * back, without a restart; the dashboard's outage banner polls it.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { pingDb } from '../../db/index.js';
import type { PluginOptions } from '../context.js';
import { errorResponses } from '../schemas.js';

const HealthAnswer = Type.Object({
  status: Type.Literal('ok'),
  db: Type.Literal('ok'),
  driver: Type.String(),
  time: Type.String({ format: 'date-time' }),
});

export const healthPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  app.get(
    '/api/health',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness and database reachability',
        response: { 200: HealthAnswer, ...errorResponses() },
      },
    },
    async () => {
      await pingDb(ctx.handle);
      return { status: 'ok' as const, db: 'ok' as const, driver: ctx.handle.driver, time: ctx.clock().toISOString() };
    },
  );
};
