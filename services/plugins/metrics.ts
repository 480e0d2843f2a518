/**
 * `GET /metrics`: Prometheus text format 0.0.4 (services/metrics.ts, prom-client). Gauges are
 * read from the database on each scrape (db/queries/metrics.ts); counters, the match and HTTP
 * histograms and agent ticks come from this process, and so do the process and Node.js series.
 * While the database is away the scrape still answers 200 with `wms_database_up 0` and no gauge
 * samples (the outage is logged once, and its end once).
 *
 * `installRequestMetrics` times every request by route pattern on the root instance.
 *
 * Who: anyone by default (Prometheus scrapes without a token; keep the port on an internal
 * network), or only `Authorization: Bearer <config.metricsToken>` when that is set
 * (`WMS_METRICS_TOKEN`): a static secret, not a JWT, as Prometheus' `authorization` block sends.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { WmsError } from '../../core/errors.js';
import { DbOutageLog, readMetricsGauges, readPilotsEnded } from '../../db/index.js';
import type { PluginOptions } from '../context.js';
import { AGENT_TICK_EVENT, METRICS_CONTENT_TYPE, type AgentTick, type DatabaseReader, type Metrics } from '../metrics.js';
import { errorResponses } from '../schemas.js';

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The route label of a request no route matched (404s): one series, whatever the URL. */
const UNMATCHED_ROUTE = 'unmatched';

/**
 * Times every answer of `app` into `wms_http_request_duration_seconds`, labelled with the route's
 * pattern (`/api/jobs/:id`), never the raw URL: the series stay as few as the routes.
 * On the root instance (a hook inside an encapsulated plugin would see that plugin's routes only).
 */
export function installRequestMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(request.method, request.routeOptions.url ?? UNMATCHED_ROUTE, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}

export const metricsPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const onTick = (agent: string, tick: AgentTick) => ctx.metrics.agentTick(agent, tick);
  ctx.events.on(AGENT_TICK_EVENT, onTick);
  app.addHook('onClose', async () => {
    ctx.events.off(AGENT_TICK_EVENT, onTick);
  });

  const outage = new DbOutageLog('metrics', { warn: (m) => app.log.warn(m), info: (m) => app.log.info(m) });
  // The database away: this process's counters still go out, with wms_database_up 0 and no
  // gauge samples (Prometheus then shows a gap, not a stale figure). Said once per outage.
  const read: DatabaseReader = async (since) => {
    try {
      const reading = { gauges: await readMetricsGauges(ctx.handle), pilotsEnded: await readPilotsEnded(ctx.handle, since) };
      outage.ok();
      return reading;
    } catch (e) {
      if (!outage.failed(e)) throw e;
      return null;
    }
  };
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
        operationId: 'getMetrics',
        security: [],
        summary: 'Prometheus metrics (text format 0.0.4)',
        response: { 200: Type.String(), ...errorResponses(401) },
      },
    },
    async (_request, reply) => reply.type(METRICS_CONTENT_TYPE).send(await ctx.metrics.render(read)),
  );
};
