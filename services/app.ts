/**
 * `buildApp(deps)`: the fastify application, configured and with every plugin registered, but
 * never listening (tests use `app.inject()`; `services/server.ts` listens). The database handle
 * belongs to the caller, who closes it after `app.close()`.
 *
 * Plugins: errors and auth on the root; the input guards (`installInputGuards`: JSON depth,
 * NUL bytes, integer and number bounds, JDL size); security headers (helmet) and rate limits;
 * then OpenAPI (before the routes, so it sees them all); then one plugin per area: health,
 * tokens, jobs, applications, matcher, sandboxes, pilots, events, job reports, sites,
 * accounting, usage and shares, metrics; last the web dashboard at `/`.
 */
import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyRequest,
  type RouteOptions,
  type preValidationAsyncHookHandler,
} from 'fastify';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import websocket from '@fastify/websocket';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { ServiceConfig } from '../core/config.js';
import { WmsError } from '../core/errors.js';
import type { Principal } from '../core/identity.js';
import { VERSION } from '../core/version.js';
import type { DbHandle } from '../db/index.js';
import type { ServiceContext } from './context.js';
import { registerAuth } from './plugins/auth.js';
import { formatBytes, logSafeError, registerErrorHandling } from './plugins/errors.js';
import { accountingPlugin } from './plugins/accounting.js';
import { applicationsPlugin } from './plugins/applications.js';
import { dashboardPlugin } from './plugins/dashboard.js';
import { healthPlugin } from './plugins/health.js';
import { jobReportsPlugin } from './plugins/job-reports.js';
import { jobsPlugin } from './plugins/jobs.js';
import { matcherPlugin } from './plugins/matcher.js';
import { metricsPlugin } from './plugins/metrics.js';
import { Metrics } from './metrics.js';
import { registerOpenApi } from './plugins/openapi.js';
import { eventsPlugin } from './plugins/events.js';
import { pilotsPlugin } from './plugins/pilots.js';
import { sandboxesPlugin } from './plugins/sandboxes.js';
import { sitesPlugin } from './plugins/sites.js';
import { loadPilotBundle } from './pilot-bundle.js';
import { tokensPlugin } from './plugins/tokens.js';
import { usagePlugin } from './plugins/usage.js';
import { SandboxStore } from './sandbox-store.js';
import { TokenSigner } from './token-signer.js';

export interface AppDeps {
  db: DbHandle;
  config: Readonly<ServiceConfig>;
  /** Injected so tests can move time (token expiry); defaults to the system clock. */
  clock?: () => Date;
  /** Log requests with pino at `config.logLevel` (default: no logging). */
  logger?: boolean;
  /** In-process events (`jobs-submitted`, `jobs-changed`); the app makes its own when absent. */
  events?: EventEmitter;
  /** Where `pilot.tar.gz` is (`dist/pilot` of the package); without it the bundle route answers 503. */
  pilotBundleDir?: string;
  /** Where log lines go instead of stdout (tests capture them); implies logging. */
  logStream?: { write(line: string): void };
}

// ---------------------------------------------------------------------------------------------
// Input guards: what no route's handler or the database should ever see

/** JSON bodies nested deeper than this are refused (400) as they are parsed. */
export const MAX_JSON_DEPTH = 32;
/** Bound of an integer field that declares none: PostgreSQL's `integer` (int4). */
export const INT4_MAX = 2_147_483_647;
/**
 * Bound of a number field that declares none: the largest millisecond timestamp a JavaScript
 * Date holds (8.64e15, below 2^53), so any number may become a Date or a bigint exactly.
 */
export const NUMBER_MAX = 8.64e15;

function invalid(path: string, message: string): WmsError {
  return new WmsError('WMS_VALIDATION', `invalid request: ${path} ${message}`, { details: { problems: [{ path, message }] } });
}

/** True when `value` has objects or arrays nested deeper than `max` (iterative: no recursion). */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (depth > max) return true;
    for (const child of Object.values(v as object)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

function isPlainData(v: unknown): v is Record<string, unknown> | unknown[] {
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) return true;
  // Plain objects, null-prototype ones, and fast-querystring's (an empty class over null).
  const proto = Object.getPrototypeOf(v) as object | null;
  return proto === Object.prototype || proto === null || Object.getPrototypeOf(proto) === null;
}

/**
 * The path (`body/jdls/3`, `querystring/site`) of the first string or key holding a NUL
 * character, or null. PostgreSQL text and jsonb cannot store U+0000; walked iteratively.
 */
export function findNul(value: unknown, root: string): string | null {
  const stack: [unknown, string][] = [[value, root]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return path;
    } else if (isPlainData(v)) {
      for (const [k, child] of Object.entries(v)) {
        if (k.includes('\u0000')) return `${path}/${JSON.stringify(k).slice(1, -1)}`;
        stack.push([child, `${path}/${k}`]);
      }
    }
  }
  return null;
}

type Schema = Record<string, unknown>;

/** A copy of `o` with every own property (TypeBox keeps `~kind` non-enumerable). */
function copyOf(o: Schema): Schema {
  return Object.defineProperties({}, Object.getOwnPropertyDescriptors(o)) as Schema;
}

const SUBSCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'] as const;
const SUBSCHEMA_ONE = ['items', 'additionalProperties', 'not', 'if', 'then', 'else'] as const;
const SUBSCHEMA_MAPS = ['properties', 'patternProperties'] as const;

function hasType(schema: Schema, type: string): boolean {
  const t = schema['type'];
  return t === type || (Array.isArray(t) && t.includes(type));
}

/**
 * `schema` with a bound on every integer and number that declares none (integers: int4;
 * numbers: ±NUMBER_MAX), so a value beyond what a column holds is a 400 naming the field,
 * never a database error. Copy on write: shared schema objects are never changed.
 */
export function withBounds(schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return schema;
  const src = schema as Schema;
  let out = src;
  const set = (key: string, value: unknown) => {
    if (out === src) out = copyOf(src);
    out[key] = value;
  };
  const noMax = src['maximum'] === undefined && src['exclusiveMaximum'] === undefined;
  const noMin = src['minimum'] === undefined && src['exclusiveMinimum'] === undefined;
  if (hasType(src, 'integer')) {
    if (noMax) set('maximum', INT4_MAX);
    if (noMin) set('minimum', -INT4_MAX - 1);
  } else if (hasType(src, 'number')) {
    if (noMax) set('maximum', NUMBER_MAX);
    if (noMin) set('minimum', -NUMBER_MAX);
  }
  for (const key of SUBSCHEMA_LISTS) {
    const list = src[key];
    if (!Array.isArray(list)) continue;
    const next = list.map(withBounds);
    if (next.some((n, i) => n !== list[i])) set(key, next);
  }
  for (const key of SUBSCHEMA_ONE) {
    const sub = src[key];
    if (sub === undefined || typeof sub === 'boolean') continue;
    if (Array.isArray(sub)) {
      const next = sub.map(withBounds);
      if (next.some((n, i) => n !== sub[i])) set(key, next);
    } else {
      const next = withBounds(sub);
      if (next !== sub) set(key, next);
    }
  }
  for (const key of SUBSCHEMA_MAPS) {
    const map = src[key] as Schema | undefined;
    if (!map || typeof map !== 'object') continue;
    let changed = false;
    const next: Schema = {};
    for (const [k, v] of Object.entries(map)) {
      next[k] = withBounds(v);
      if (next[k] !== v) changed = true;
    }
    if (changed) set(key, next);
  }
  return out;
}

/** Does a body schema carry JDLs (`jdl`, `jdls`)? Those routes get the JDL size check. */
function carriesJdl(body: unknown): boolean {
  const props = (body as { properties?: Record<string, unknown> } | undefined)?.properties;
  return props !== undefined && ('jdl' in props || 'jdls' in props);
}

function hooksOf<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/**
 * The input guards, on the root before any route:
 * - `application/json` bodies are parsed by fastify's own parser (prototype poisoning refused)
 *   and refused past MAX_JSON_DEPTH levels (20,000 levels once reached PostgreSQL's stack limit);
 * - every route's params, querystring, headers and body schemas get bounds (`withBounds`);
 * - a NUL character anywhere in the body, query, params or headers is a 400 naming where;
 * - routes whose body carries JDLs refuse one over `config.jdlMaxBytes` with 413, before the
 *   JDL is parsed or stored.
 */
export function installInputGuards(app: FastifyInstance, config: Readonly<ServiceConfig>): void {
  const parseJson = app.getDefaultJsonParser('error', 'ignore');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    parseJson(request, body as string, (err, value) => {
      if (err) return done(err, undefined);
      if (value !== null && typeof value === 'object' && nestedDeeperThan(value, MAX_JSON_DEPTH)) {
        return done(invalid('body', `is nested deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      }
      return done(null, value);
    });
  });

  const jdlLimit = config.jdlMaxBytes;
  const tooBig = (what: string, bytes: number) =>
    new WmsError(
      'WMS_PAYLOAD_TOO_LARGE',
      `${what} of ${formatBytes(bytes)} is over the ${formatBytes(jdlLimit)} limit (jdlMaxBytes)`,
    );
  const checkJdlSize: preValidationAsyncHookHandler = async (request) => {
    const body = request.body as { jdl?: unknown; jdls?: unknown } | null | undefined;
    if (!body || typeof body !== 'object') return;
    if (typeof body.jdl === 'string' && body.jdl.length > jdlLimit / 4) {
      const bytes = Buffer.byteLength(body.jdl);
      if (bytes > jdlLimit) throw tooBig('JDL', bytes);
    }
    if (Array.isArray(body.jdls)) {
      body.jdls.forEach((text: unknown, i) => {
        if (typeof text === 'string' && text.length > jdlLimit / 4) {
          const bytes = Buffer.byteLength(text);
          if (bytes > jdlLimit) throw tooBig(`JDL ${i} of the list`, bytes);
        }
      });
    }
  };

  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as Record<string, unknown> | undefined;
    if (schema) {
      const bounded: Record<string, unknown> = { ...schema };
      for (const part of ['body', 'querystring', 'params', 'headers']) {
        if (schema[part] !== undefined) bounded[part] = withBounds(schema[part]);
      }
      route.schema = bounded;
      if (carriesJdl(schema['body'])) route.preValidation = [...hooksOf(route.preValidation), checkJdlSize];
    }
  });

  app.addHook('preValidation', async (request) => {
    const where =
      findNul(request.params, 'params') ??
      findNul(request.query, 'querystring') ??
      findNul(request.headers, 'headers') ??
      findNul(request.body, 'body');
    if (where !== null) throw invalid(where, 'contains a NUL character (\\u0000)');
  });
}

// ---------------------------------------------------------------------------------------------
// Security headers and rate limits

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
  const methods = hooksOf(route.method);
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
function installProtections(app: FastifyInstance, config: Readonly<ServiceConfig>): void {
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
      route.config = { ...(route.config as object), helmet: { contentSecurityPolicy: { useDefaults: false, directives } } } as RouteOptions['config'];
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
        if (!(request.routeOptions.schema as { security?: unknown } | undefined)?.security) return;
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
    store: new SandboxStore(join(deps.config.dataDir, 'sandboxes'), deps.config.sandboxMaxBytes),
    events: deps.events ?? new EventEmitter(),
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

export function buildApp(deps: AppDeps) {
  const ctx = buildContext(deps);
  const app = Fastify({
    // Errors are logged through `logSafeError`: no SQL parameters, every text truncated.
    logger:
      deps.logger || deps.logStream
        ? {
            level: deps.config.logLevel,
            serializers: { err: (e: unknown) => logSafeError(e) },
            ...(deps.logStream ? { stream: deps.logStream } : {}),
          }
        : false,
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
  void app.register(websocket);
  app.addHook('onReady', async () => {
    await ctx.signer();
  });

  const opts = { ctx };
  void app.register(healthPlugin, opts);
  void app.register(tokensPlugin, opts);
  void app.register(jobsPlugin, opts);
  void app.register(applicationsPlugin, opts);
  void app.register(matcherPlugin, opts);
  void app.register(sandboxesPlugin, opts);
  void app.register(pilotsPlugin, opts);
  void app.register(eventsPlugin, opts);
  void app.register(jobReportsPlugin, opts);
  void app.register(sitesPlugin, opts);
  void app.register(accountingPlugin, opts);
  void app.register(usagePlugin, opts);
  void app.register(metricsPlugin, opts);
  // Last: its wildcard serves client routes and never shadows the routes above.
  void app.register(dashboardPlugin);
  return app;
}

/** The application type (fastify with the TypeBox type provider). */
export type App = ReturnType<typeof buildApp>;
