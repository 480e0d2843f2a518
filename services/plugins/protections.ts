/**
 * Security headers (helmet, with the Content-Security-Policy of the dashboard and Swagger UI)
 * and the per-caller rate limits of `config.rateLimit` (`installProtections`, on the root).
 */
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import type { ServiceConfig } from '../../core/config.js';
import { WmsError } from '../../core/errors.js';
import type { Principal } from '../../core/identity.js';
import { takesBearer } from './auth.js';

/**
 * The Content-Security-Policy of every answer: the dashboard (`dist/web`) and Swagger UI load
 * only their own scripts and styles, talk only to this origin, and may not be framed.
 */
export const CSP_DIRECTIVES = {
  'default-src': ["'self'"],
  'base-uri': ["'self'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'", 'data:'],
  'connect-src': ["'self'"],
  'object-src': ["'none'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  // Plain-HTTP deployments (the default 127.0.0.1:8080) must not have their assets upgraded.
  'upgrade-insecure-requests': null,
};

/** The rate-limit key of a caller: its identity when it has one, else its address. */
export function rateLimitKey(request: FastifyRequest): string {
  const p: Principal | null = request.identity;
  if (!p) return `addr:${request.ip}`;
  switch (p.role) {
    case 'pilot':
      return `pilot:${p.pilotId}`;
    case 'job':
      return `job:${p.jobId}`;
    default:
      return `${p.role}:${p.vo}/${p.user}`;
  }
}

/** Which limit of `config.rateLimit` a route has, if any. */
function limitedRoute(route: RouteOptions): 'tokens' | 'submissions' | 'uploads' | null {
  const methods = [route.method].flat();
  if (route.url === '/api/tokens' && methods.includes('POST')) return 'tokens';
  if (route.url === '/api/jobs' && methods.includes('POST')) return 'submissions';
  if (route.url === '/api/sandboxes/:sha256' && methods.includes('PUT')) return 'uploads';
  return null;
}

/**
 * Helmet on every answer (Swagger UI under `/docs` may also apply inline styles), and the rate limits of `config.rateLimit` (per process):
 * - token issue, submission and upload routes: per caller identity, checked once the token is
 *   verified and before the body is read (`preParsing`);
 * - failed authentications: per address; past the limit, every route that needs a token answers
 *   429 to that address before looking at its token, until the window ends (behind a load
 *   balancer set `trustProxy`, or every client shares the balancer's address).
 * Past a limit: 429 WMS_RATE_LIMITED with Retry-After.
 */
export function installProtections(app: FastifyInstance, config: Readonly<ServiceConfig>): void {
  const rl = config.rateLimit;
  const windowMs = rl.windowSeconds * 1000;
  void app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
  });

  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.url === '/docs' || route.url.startsWith('/docs/')) {
      // Swagger UI applies one inline style; its scripts stay as strict as the dashboard's.
      const directives = { ...CSP_DIRECTIVES, 'style-src': ["'self'", "'unsafe-inline'"] };
      route.config = {
        ...(route.config as object),
        helmet: { contentSecurityPolicy: { useDefaults: false, directives } },
      } as RouteOptions['config'];
    }
    const which = limitedRoute(route);
    if (which === null || rl[which] <= 0) return;
    route.config = { ...(route.config as object), rateLimit: { max: rl[which], timeWindow: windowMs } } as RouteOptions['config'];
  });

  void app
    .register(rateLimit, {
      global: false,
      hook: 'preParsing',
      keyGenerator: rateLimitKey,
      errorResponseBuilder: (_request, c) =>
        new WmsError('WMS_RATE_LIMITED', `too many requests: at most ${c.max} per ${rl.windowSeconds} s here; retry in ${c.after}`, {
          details: { retryAfterSeconds: Math.ceil(c.ttl / 1000) },
        }),
    })
    .after(() => {
      if (rl.failedAuth <= 0) return;
      const failures = app.createRateLimit({ max: rl.failedAuth, timeWindow: windowMs, keyGenerator: (r) => `addr:${r.ip}` });
      app.addHook('onRequest', async (request) => {
        if (!takesBearer(request.routeOptions.schema)) return;
        const state = await failures(request, { increment: false });
        if (!state.isAllowed && state.remaining === 0) {
          throw new WmsError(
            'WMS_RATE_LIMITED',
            `too many failed authentications from this address (at most ${rl.failedAuth} per ${rl.windowSeconds} s); retry in ${state.ttlInSeconds} s`,
            { details: { retryAfterSeconds: state.ttlInSeconds } },
          );
        }
      });
      app.addHook('onResponse', async (request, reply) => {
        if (reply.statusCode === 401) await failures(request);
      });
    });
}
