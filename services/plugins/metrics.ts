/**
 * `GET /metrics`: Prometheus text format 0.0.4 (services/metrics.ts). Gauges are read from the
 * database on each scrape (db/queries/metrics.ts); counters, the match histogram and agent
 * ticks come from this process. While the database is away the scrape still answers 200 with
 * `wms_database_up 0` and no gauge samples (the outage is logged once, and its end once).
 *
 * Who: anyone by default (Prometheus scrapes without a token; keep the port on an internal
 * network), or only `Authorization: Bearer <config.metricsToken>` when that is set
 * (`WMS_METRICS_TOKEN`): a static secret, not a JWT, as Prometheus' `authorization` block sends.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { WmsError } from '../../core/errors.js';
import { DbOutageLog, readMetricsGauges, type MetricsGauges } from '../../db/index.js';
import type { PluginOptions } from '../context.js';
import { AGENT_TICK_EVENT, METRICS_CONTENT_TYPE, type AgentTick } from '../metrics.js';
import { errorResponses } from '../schemas.js';

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export const metricsPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const onTick = (agent: string, tick: AgentTick) => ctx.metrics.agentTick(agent, tick);
  ctx.events.on(AGENT_TICK_EVENT, onTick);
  app.addHook('onClose', async () => {
    ctx.events.off(AGENT_TICK_EVENT, onTick);
  });

  const outage = new DbOutageLog('metrics', { warn: (m) => app.log.warn(m), info: (m) => app.log.info(m) });
  const token = ctx.config.metricsToken;
  app.get(
    '/metrics',
    {
      ...(token
        ? {
            onRequest: async (request) => {
              const h = request.headers.authorization;
              if (!h) throw new WmsError('WMS_AUTH_MISSING', 'the metrics need Authorization: Bearer <WMS_METRICS_TOKEN>');
              if (!h.startsWith('Bearer ') || !sameSecret(h.slice('Bearer '.length).trim(), token)) {
                throw new WmsError('WMS_AUTH_INVALID', 'not the metrics token');
              }
            },
          }
        : {}),
      schema: {
        tags: ['metrics'],
        summary: 'Prometheus metrics (text format 0.0.4)',
        response: { 200: Type.String(), ...errorResponses(401) },
      },
    },
    async (_request, reply) => {
      // The database away: this process's counters still go out, with wms_database_up 0 and
      // no gauge samples (Prometheus then shows a gap, not a stale figure). Said once per outage.
      let gauges: MetricsGauges | null;
      try {
        gauges = await readMetricsGauges(ctx.handle);
        outage.ok();
      } catch (e) {
        if (!outage.failed(e)) throw e;
        gauges = null;
      }
      return reply.type(METRICS_CONTENT_TYPE).send(ctx.metrics.render(gauges));
    },
  );
};
