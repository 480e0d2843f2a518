/**
 * `buildApp(deps)`: the fastify application, configured and with every plugin registered, but
 * never listening (tests use `app.inject()`; `services/server.ts` listens). The database handle
 * belongs to the caller, who closes it after `app.close()`.
 *
 * Plugins: errors and auth on the root; the input guards (`plugins/input-guards.ts`: JSON
 * depth, NUL bytes, integer and number bounds, JDL size); security headers (helmet) and rate
 * limits (`plugins/protections.ts`);
 * then OpenAPI (before the routes, so it sees them all) and the request timer of `/metrics`
 * (on the root, so it times every route); then one plugin per area: health,
 * tokens, jobs, applications, matcher, sandboxes, pilots, events, job reports, sites,
 * accounting, usage and shares, metrics; last the web dashboard at `/`.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import websocket from '@fastify/websocket';
import { EventEmitter } from 'node:events';
import type { ServiceConfig } from '../core/config.js';
import { VERSION } from '../core/version.js';
import { localNoticeBus, type DbHandle, type NoticeBus } from '../db/index.js';
import type { ServiceContext } from './context.js';
import { registerAuth } from './plugins/auth.js';
import { registerErrorHandling } from './plugins/errors.js';
import { installInputGuards } from './plugins/input-guards.js';
import { installProtections } from './plugins/protections.js';
import { accountingPlugin } from './plugins/accounting.js';
import { applicationsPlugin } from './plugins/applications.js';
import { dashboardPlugin } from './plugins/dashboard.js';
import { healthPlugin } from './plugins/health.js';
import { jobReportsPlugin } from './plugins/job-reports.js';
import { jobsPlugin } from './plugins/jobs.js';
import { matcherPlugin } from './plugins/matcher.js';
import { installRequestMetrics, metricsPlugin } from './plugins/metrics.js';
import { Metrics } from './metrics.js';
import { registerOpenApi } from './plugins/openapi.js';
import { eventsPlugin } from './plugins/events.js';
import { pilotsPlugin } from './plugins/pilots.js';
import { sandboxesPlugin } from './plugins/sandboxes.js';
import { sitesPlugin } from './plugins/sites.js';
import { loadPilotBundle } from './pilot-bundle.js';
import { tokensPlugin } from './plugins/tokens.js';
import { usagePlugin } from './plugins/usage.js';
import { sandboxStoreFor } from './sandbox-store.js';
import { TokenSigner } from './token-signer.js';
import { createRootLogger, silentLogger, type Logger, type LogStream } from './logger.js';
import type { PluginOptions } from './context.js';

export interface AppDeps {
  db: DbHandle;
  config: Readonly<ServiceConfig>;
  /** Injected so tests can move time (token expiry); defaults to the system clock. */
  clock?: () => Date;
  /**
   * The process's root pino logger (services/logger.ts), or true for a new one at
   * `config.logLevel` on stderr (default: no logging).
   */
  logger?: boolean | Logger;
  /** In-process events (`jobs-submitted`, agent ticks); the app makes its own when absent. */
  events?: EventEmitter;
  /**
   * The notice bus between processes (db/notices.ts; `startServer` opens the PostgreSQL one),
   * closed by its owner; absent: an in-process bus of the app's own, closed with the app.
   */
  notices?: NoticeBus;
  /** Where `pilot.tar.gz` is (`dist/pilot` of the package); without it the bundle route answers 503. */
  pilotBundleDir?: string;
  /** Where log lines go instead of stderr, as JSON (tests capture them); implies logging. */
  logStream?: LogStream;
}

/** Builds the service context shared by the plugins. */
export function buildContext(deps: AppDeps): ServiceContext {
  const clock = deps.clock ?? (() => new Date());
  let signer: Promise<TokenSigner> | undefined;
  let bundle: ReturnType<typeof loadPilotBundle> | undefined;
  return {
    handle: deps.db,
    config: deps.config,
    clock,
    signer: () =>
      (signer ??= TokenSigner.open(deps.db, { issuer: deps.config.tokens.issuer, clock }).catch((e: unknown) => {
        signer = undefined; // try again on the next request (the database may come back)
        throw e;
      })),
    store: sandboxStoreFor(deps.db, deps.config),
    events: deps.events ?? new EventEmitter(),
    notices: deps.notices ?? localNoticeBus(),
    metrics: new Metrics(),
    pilotBundle: () => {
      const dir = deps.pilotBundleDir;
      if (dir === undefined) return Promise.resolve(null);
      return (bundle ??= loadPilotBundle(dir).then((b) => {
        if (!b) bundle = undefined; // built later: look again next time
        return b;
      }));
    },
  };
}

/** The app's logger: the one given, a new root logger (on `logStream` when given), or a silent one. */
function loggerOf(deps: AppDeps): Logger {
  if (typeof deps.logger === 'object') return deps.logger;
  if (deps.logger || deps.logStream) {
    return createRootLogger({ level: deps.config.logLevel, ...(deps.logStream ? { stream: deps.logStream } : {}) });
  }
  return silentLogger();
}

/** The area plugins, in registration order (each gets the service context). */
const AREA_PLUGINS: FastifyPluginAsync<PluginOptions>[] = [
  healthPlugin,
  tokensPlugin,
  jobsPlugin,
  applicationsPlugin,
  matcherPlugin,
  sandboxesPlugin,
  pilotsPlugin,
  eventsPlugin,
  jobReportsPlugin,
  sitesPlugin,
  accountingPlugin,
  usagePlugin,
  metricsPlugin,
];

export function buildApp(deps: AppDeps) {
  const ctx = buildContext(deps);
  const app = Fastify({
    // The process's logger; errors are serialized by `logSafeError` (no SQL parameters, every text truncated).
    loggerInstance: loggerOf(deps) as FastifyBaseLogger,
    // One log line per request costs ~6 % of a match at 2,000 requests/s (profiled with the
    // `match` benchmark); errors and notable events are logged by the handlers instead.
    logController: new LogController({ disableRequestLogging: true }),
    // Behind a load balancer: the client's address from X-Forwarded-For, from those proxies only.
    ...(deps.config.trustProxy ? { trustProxy: deps.config.trustProxy } : {}),
    // Every schema problem at once; unknown properties are errors where schemas say so.
    ajv: { customOptions: { allErrors: true, removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  registerErrorHandling(app);
  registerAuth(app);
  installInputGuards(app, deps.config);
  installProtections(app, deps.config);
  registerOpenApi(app, VERSION);
  installRequestMetrics(app, ctx.metrics);
  void app.register(websocket);
  app.addHook('onReady', async () => {
    await ctx.signer();
  });
  // The app's own in-process bus goes with it; a bus given in `deps` belongs to the caller.
  if (!deps.notices) app.addHook('onClose', () => ctx.notices.close());

  for (const plugin of AREA_PLUGINS) void app.register(plugin, { ctx });
  // Last: its wildcard serves client routes and never shadows the routes above.
  void app.register(dashboardPlugin);
  return app;
}

/** The application type (fastify with the TypeBox type provider). */
export type App = ReturnType<typeof buildApp>;
