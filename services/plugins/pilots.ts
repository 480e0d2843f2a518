/**
 * Pilots calling home, and site admins looking at them.
 *
 * Pilot routes (pilot token, bound to one pilot): settings (`config`), registration with the
 * environment, DB12 and clock offset (refused, and recorded as such, when the clock is off by
 * more than the limit), status reports (the wrapper's failures before the pilot starts, and the
 * pilot's end), remote log batches, and a websocket on which kill commands are pushed the moment
 * a user kills a job the pilot holds. Unauthenticated: the clock (`/api/time`) and the bundle.
 *
 * A pilot token works only while its pilot's record is not final (Done, Failed, Aborted,
 * Deleted): every pilot route answers 403 after that, and the pilot's websockets are closed. The
 * wrapper's token lives days (a batch queue may hold the pilot that long); once registered the
 * pilot uses short tokens (`tokens.pilotSessionTtl`, 1 h) from the register answer and
 * `POST /api/pilots/self/token`, renewed at half-life. A websocket closes when the token that
 * opened it expires (the pilot reconnects with its current one).
 *
 * Site admins and admins: `GET /api/pilots` (filters, newest first), one pilot, its log. A site
 * admin sees only the pilots of the sites its token administers (another site's pilot is "not
 * found", 404); admins see every pilot.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { WebSocket } from '@fastify/websocket';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { PilotSettings } from '../../core/config.js';
import { WmsError } from '../../core/errors.js';
import { managesSite, type PilotPrincipal, type Principal } from '../../core/identity.js';
import { pilotTokenDeadMessage, type PilotCommandName, type PilotConfig, type PilotPush } from '../../core/pilot-protocol.js';
import { isPilotFinal, PILOT_STATES, type PilotState } from '../../core/pilot-states.js';
import {
  appendPilotLogs,
  findPilot,
  getCeQueue,
  getPilotBinding,
  getPilotLogs,
  listPilots,
  pendingCommandsOfJobs,
  registerPilot,
  returnJobCommands,
  takeJobCommands,
  updatePilots,
  type PilotBinding,
  type PilotRow,
} from '../../db/index.js';
import type { PluginOptions, ServiceContext } from '../context.js';
import {
  PilotConfigApiSchema,
  PilotDetailSchema,
  PilotListSchema,
  PilotLogBatchSchema,
  PilotLogSchema,
  PilotRegistrationAnswerSchema,
  PilotRegistrationSchema,
  PilotStatusAnswerSchema,
  PilotStatusReportApiSchema,
  ref,
  RenewedTokenApiSchema,
  TimeAnswerApiSchema,
  type Pilot,
} from '../../api/index.js';
import { AUTH_ERRORS, errorResponses, gzipAnswer } from '../schemas.js';
import { BEARER, bearerToken, identityOf, OPEN, requireRole } from './auth.js';

function pilotView(p: PilotRow): Pilot {
  const env = p.environment;
  return {
    id: p.id,
    stamp: p.stamp,
    reference: p.reference,
    site: p.site,
    ce: p.ce,
    ceType: p.ceType,
    queue: p.queue,
    vo: p.vo,
    status: p.status,
    statusReason: p.statusReason,
    benchmark: p.benchmark,
    clockOffsetSeconds: p.clockOffsetSeconds,
    currentJobId: p.currentJobId,
    jobsRun: p.jobsRun,
    exitCode: p.exitCode,
    workDir: typeof env['workDir'] === 'string' ? env['workDir'] : null,
    fsType: typeof env['fsType'] === 'string' ? env['fsType'] : null,
    createdAt: p.createdAt.toISOString(),
    lastUpdateAt: p.lastUpdateAt.toISOString(),
  };
}

/** The pilot behind a pilot token; 403 when its record is gone or final (its token is dead). */
async function selfPilot(ctx: ServiceContext, p: PilotPrincipal): Promise<PilotRow> {
  const pilot = await findPilot(ctx.handle, p.pilotId);
  if (!pilot || isPilotFinal(pilot.status)) throw new WmsError('WMS_FORBIDDEN', pilotTokenDeadMessage(p.pilotId, pilot?.status ?? null));
  return pilot;
}

/** `selfPilot` for routes that need only the verdict and the place (one primary-key read of a few columns). */
export async function requireLivePilot(ctx: ServiceContext, p: PilotPrincipal): Promise<PilotBinding> {
  const b = await getPilotBinding(ctx.handle, p.pilotId);
  if (!b || isPilotFinal(b.status)) throw new WmsError('WMS_FORBIDDEN', pilotTokenDeadMessage(p.pilotId, b?.status ?? null));
  return b;
}

function commandsFor(settings: PilotSettings, ceType: string): PilotCommandName[] {
  return (settings.commands[ceType] ?? settings.commands['default'] ?? []) as PilotCommandName[];
}

/** A pilot's settings: the service's pilot settings and what its queue offers. */
async function pilotConfig(ctx: ServiceContext, pilot: PilotRow): Promise<PilotConfig> {
  const s = ctx.config.pilot;
  const q = pilot.queueId === null ? null : await getCeQueue(ctx.handle, pilot.queueId);
  const qs = q?.settings ?? {};
  const numberSetting = (key: string, fallback: number) => (typeof qs[key] === 'number' ? (qs[key] as number) : fallback);
  return {
    pilotId: pilot.id,
    stamp: pilot.stamp,
    site: pilot.site,
    ce: pilot.ce,
    ceType: pilot.ceType,
    queue: pilot.queue,
    vo: pilot.vo,
    commands: commandsFor(s, pilot.ceType),
    maxClockSkewSeconds: s.maxClockSkewSeconds,
    clockSamples: s.clockSamples,
    minDiskMb: numberSetting('minDiskMb', s.minDiskMb),
    processors: q?.processors ?? 1,
    ramMb: q?.ramMb ?? 0,
    gpus: q?.gpus ?? 0,
    tags: q?.tags ?? [],
    requiredTags: Array.isArray(qs['requiredTags']) ? (qs['requiredTags'] as string[]) : [],
    platform: q?.platform ?? null,
    timeLimitSeconds: numberSetting('timeLimitSeconds', 86_400),
    minTimeLeftSeconds: s.minTimeLeftSeconds,
    pollSeconds: s.pollSeconds,
    maxPollSeconds: s.maxPollSeconds,
    stopAfterFailedMatches: numberSetting('stopAfterFailedMatches', s.stopAfterFailedMatches),
    slots: numberSetting('slots', q?.processors ?? 1),
    heartbeatSeconds: s.heartbeatSeconds,
    logBatchLines: s.logBatchLines,
    logFlushSeconds: s.logFlushSeconds,
    sandboxMaxBytes: ctx.config.sandboxMaxBytes,
    sandboxMaxEntries: s.sandboxMaxEntries,
    ...payloadSettings(qs),
  };
}

/** The queue's payload isolation and payload environment (pilot/isolation.ts); the environment never reaches the pilot itself. */
function payloadSettings(qs: Record<string, unknown>): Pick<PilotConfig, 'isolation' | 'payloadUser' | 'bwrapPath' | 'payloadEnvironment'> {
  const out: Pick<PilotConfig, 'isolation' | 'payloadUser' | 'bwrapPath' | 'payloadEnvironment'> = {};
  const mode = qs['isolation'];
  if (mode === 'auto' || mode === 'bwrap' || mode === 'user' || mode === 'none') out.isolation = mode;
  if (typeof qs['payloadUser'] === 'string') out.payloadUser = qs['payloadUser'];
  if (typeof qs['bwrapPath'] === 'string') out.bwrapPath = qs['bwrapPath'];
  const env = qs['environment'];
  if (env && typeof env === 'object' && !Array.isArray(env)) {
    out.payloadEnvironment = Object.fromEntries(
      Object.entries(env)
        .filter(([, v]) => typeof v === 'string' || typeof v === 'number')
        .map(([k, v]) => [k, String(v)]),
    );
  }
  return out;
}

/** The websockets of the pilots connected to this process. */
class PilotSockets {
  private readonly sockets = new Map<number, Set<WebSocket>>();

  add(pilotId: number, socket: WebSocket): void {
    let set = this.sockets.get(pilotId);
    if (!set) this.sockets.set(pilotId, (set = new Set()));
    set.add(socket);
    socket.on('close', () => {
      set.delete(socket);
      if (set.size === 0) this.sockets.delete(pilotId);
    });
  }

  has(pilotId: number): boolean {
    return this.sockets.has(pilotId);
  }

  /** Tells every connected pilot (idle ones ask for work at once). */
  broadcast(message: PilotPush): void {
    const text = JSON.stringify(message);
    for (const set of this.sockets.values()) for (const s of set) if (s.readyState === s.OPEN) s.send(text);
  }

  /** Closes the pilot's sockets (its token is dead). */
  close(pilotId: number, reason: string): void {
    for (const s of this.sockets.get(pilotId) ?? []) s.close(4403, reason.slice(0, 120));
  }

  send(pilotId: number, message: PilotPush): boolean {
    const set = this.sockets.get(pilotId);
    const open = [...(set ?? [])].filter((s) => s.readyState === s.OPEN);
    for (const s of open) s.send(JSON.stringify(message));
    return open.length > 0;
  }
}

/** Pushes the pending commands of `jobIds` to the pilots holding them, when connected here. */
async function pushCommands(ctx: ServiceContext, sockets: PilotSockets, jobIds: readonly number[]): Promise<void> {
  const pending = await pendingCommandsOfJobs(ctx.handle, jobIds);
  const byPilot = new Map<number, number[]>();
  for (const { jobId, pilotId } of pending) {
    if (pilotId === null || !sockets.has(pilotId)) continue;
    byPilot.set(pilotId, [...(byPilot.get(pilotId) ?? []), jobId]);
  }
  for (const [pilotId, ids] of byPilot) {
    const commands = await takeJobCommands(ctx.handle, ids);
    if (commands.length > 0 && !sockets.send(pilotId, { type: 'commands', commands })) {
      // The socket closed meanwhile: nothing was delivered, so the heartbeat must carry them.
      await returnJobCommands(ctx.handle, commands);
    }
  }
}

const RefParams = Type.Object({ ref: Type.String({ minLength: 1, maxLength: 256, description: 'pilot id, stamp or CE reference' }) });

export const pilotsPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const sockets = new PilotSockets();
  const pilotOnly = requireRole(ctx, 'pilot');
  const admins = requireRole(ctx, 'admin', 'site-admin');
  /** After pilotOnly: the pilot's record must be alive. */
  const alive = async (request: FastifyRequest) => {
    await requireLivePilot(ctx, identityOf(request) as PilotPrincipal);
  };
  /** A short-lived token for the calling pilot (register answer, renewal). */
  const sessionToken = async (p: PilotPrincipal) => {
    const { token, expiresAt } = await (
      await ctx.signer()
    ).sign({ role: 'pilot', user: p.user, vo: p.vo, pilotId: p.pilotId }, ctx.config.tokens.pilotSessionTtlSeconds);
    return { token, tokenExpiresAt: expiresAt.toISOString() };
  };

  ctx.events.on('jobs-changed', ({ action, ids }: { action: string; ids: number[] }) => {
    if (action === 'kill' || action === 'delete') {
      pushCommands(ctx, sockets, ids).catch((e: unknown) => app.log.warn({ err: e }, 'pushing commands to pilots failed'));
    }
  });

  ctx.events.on('jobs-submitted', () => sockets.broadcast({ type: 'work' }));

  app.get(
    '/api/time',
    {
      schema: {
        tags: ['pilots'],
        summary: "The server clock (for the pilots' clock-skew check)",
        operationId: 'getTime',
        security: OPEN,
        response: { 200: ref(TimeAnswerApiSchema) },
      },
    },
    async () => ({ now: ctx.clock().getTime() }),
  );

  app.get(
    '/pilot/pilot.tar.gz',
    {
      schema: {
        tags: ['pilots'],
        summary: 'The pilot bundle (tar.gz holding pilot.mjs); its SHA-256 in X-Content-SHA256',
        operationId: 'downloadPilotBundle',
        security: OPEN,
        response: { 200: gzipAnswer('the tar.gz bundle'), ...errorResponses() },
      },
    },
    async (_request, reply) => {
      const bundle = await ctx.pilotBundle();
      if (!bundle) throw new WmsError('WMS_UNAVAILABLE', 'the pilot bundle is not built (run npm run build)');
      // Bytes are sent as they are (the 200 schema documents them; nothing is serialised).
      return reply
        .header('content-type', 'application/gzip')
        .header('x-content-sha256', bundle.sha256)
        .send(bundle.bytes as unknown as string);
    },
  );

  app.get(
    '/api/pilots/self/config',
    {
      onRequest: pilotOnly,
      schema: {
        tags: ['pilots'],
        summary: "A pilot's settings: its commands, limits and what its queue offers",
        operationId: 'getPilotConfig',
        security: BEARER,
        response: { 200: ref(PilotConfigApiSchema), ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async (request) => pilotConfig(ctx, await selfPilot(ctx, identityOf(request) as PilotPrincipal)),
  );

  app.post(
    '/api/pilots/self/register',
    {
      onRequest: pilotOnly,
      schema: {
        tags: ['pilots'],
        summary: 'Register: environment, clock offset, DB12. A clock off by more than the limit is refused.',
        operationId: 'registerPilot',
        security: BEARER,
        body: ref(PilotRegistrationSchema),
        response: { 200: ref(PilotRegistrationAnswerSchema), ...errorResponses(400, ...AUTH_ERRORS, 409) },
      },
    },
    async (request) => {
      const p = identityOf(request) as PilotPrincipal;
      await requireLivePilot(ctx, p);
      const { environment, clockOffsetSeconds, benchmark, benchmarkDetails } = request.body;
      const limit = ctx.config.pilot.maxClockSkewSeconds;
      const refusal =
        Math.abs(clockOffsetSeconds) > limit ? `clock skew ${Math.abs(clockOffsetSeconds).toFixed(1)} s (limit ${limit} s)` : null;
      const env = benchmarkDetails ? { ...environment, db12: benchmarkDetails } : environment;
      const pilot = await registerPilot(ctx.handle, p.pilotId, { environment: env, benchmark, clockOffsetSeconds }, refusal);
      if (!pilot) {
        const current = await selfPilot(ctx, p);
        throw new WmsError('WMS_CONFLICT', `pilot ${p.pilotId} is ${current.status} (${current.statusReason}): it cannot register`);
      }
      if (refusal) request.log.warn({ pilotId: p.pilotId, clockOffsetSeconds }, 'pilot refused: clock skew');
      const answer = { pilotId: pilot.id, status: pilot.status, reason: pilot.statusReason };
      return pilot.status === 'Running' ? { ...answer, ...(await sessionToken(p)) } : answer;
    },
  );

  app.post(
    '/api/pilots/self/status',
    {
      onRequest: pilotOnly,
      schema: {
        tags: ['pilots'],
        summary: 'Report the pilot running, or its end (Done or Failed) with the reason and exit code',
        operationId: 'reportPilotStatus',
        security: BEARER,
        body: ref(PilotStatusReportApiSchema),
        response: { 200: ref(PilotStatusAnswerSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const p = identityOf(request) as PilotPrincipal;
      const { status, reason, exitCode } = request.body;
      await requireLivePilot(ctx, p);
      // Guarded in SQL too: a pilot that went final meanwhile stays final.
      await updatePilots(ctx.handle, [p.pilotId], { status, reason, exitCode: exitCode ?? null });
      const now = (await getPilotBinding(ctx.handle, p.pilotId))?.status ?? 'Deleted';
      if (isPilotFinal(now)) sockets.close(p.pilotId, `pilot ${p.pilotId} is ${now}`);
      return { status: now };
    },
  );

  app.post(
    '/api/pilots/self/logs',
    {
      onRequest: pilotOnly,
      bodyLimit: 8 * 1024 * 1024,
      schema: {
        tags: ['pilots'],
        summary: "Append a batch of the pilot's log lines",
        operationId: 'sendPilotLogs',
        security: BEARER,
        body: ref(PilotLogBatchSchema),
        response: { 204: Type.Null({ description: 'appended' }), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request, reply) => {
      const p = identityOf(request) as PilotPrincipal;
      await requireLivePilot(ctx, p);
      await appendPilotLogs(
        ctx.handle,
        p.pilotId,
        request.body.lines.map((l) => ({ at: new Date(l.at), line: l.line })),
      );
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/pilots/self/token',
    {
      onRequest: pilotOnly,
      schema: {
        tags: ['pilots'],
        summary: 'A new short-lived token for this pilot (renew at half-life); refused once the pilot is final',
        operationId: 'renewPilotToken',
        security: BEARER,
        response: { 200: ref(RenewedTokenApiSchema), ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const p = identityOf(request) as PilotPrincipal;
      await requireLivePilot(ctx, p);
      return sessionToken(p);
    },
  );

  app.get('/api/pilots/self/ws', { onRequest: [pilotOnly, alive], websocket: true, schema: { hide: true } }, (socket, request) => {
    const p = identityOf(request) as PilotPrincipal;
    sockets.add(p.pilotId, socket);
    socket.on('message', () => undefined); // pilots only listen; pings are answered by ws
    // The socket lives no longer than the token that opened it: the pilot reconnects with its
    // current one (and a revoked or dead token cannot listen on).
    const token = bearerToken(request);
    if (token !== null) {
      void ctx
        .signer()
        .then((signer) => signer.inspect(token))
        .then((t) => {
          const ms = t.expiresAt.getTime() - ctx.clock().getTime();
          if (!Number.isFinite(ms)) return;
          const timer = setTimeout(() => socket.close(4401, 'token expired'), Math.max(0, Math.min(ms, 2 ** 31 - 1)));
          timer.unref();
          socket.on('close', () => clearTimeout(timer));
        })
        .catch(() => socket.close(4401, 'token no longer valid'));
    }
  });

  app.get(
    '/api/pilots',
    {
      onRequest: admins,
      schema: {
        tags: ['pilots'],
        summary: 'Pilots, newest first, with filters',
        operationId: 'listPilots',
        security: BEARER,
        querystring: Type.Object({
          site: Type.Optional(Type.String({ maxLength: 256 })),
          ce: Type.Optional(Type.String({ maxLength: 256 })),
          status: Type.Optional(Type.String({ maxLength: 1000, description: 'comma-separated pilot states' })),
          before: Type.Optional(
            Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'pilots with a smaller id (next page)' }),
          ),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        }),
        response: { 200: ref(PilotListSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const q = request.query;
      let status: PilotState[] | undefined;
      if (q.status) {
        const list = q.status.split(',').map((s) => s.trim());
        const bad = list.filter((s) => !(PILOT_STATES as readonly string[]).includes(s));
        if (bad.length > 0)
          throw new WmsError('WMS_VALIDATION', `unknown pilot status ${bad.join(', ')} (one of ${PILOT_STATES.join(', ')})`);
        status = list as PilotState[];
      }
      const who = identityOf(request);
      // A site admin sees the pilots of its own sites only (one query, whatever their number).
      const sites =
        who.role === 'admin' ? {} : { sites: (who.role === 'site-admin' ? (who.sites ?? []) : []).filter((s) => managesSite(who, s)) };
      const filter = { limit: q.limit ?? 100, ...(q.site ? { site: q.site } : {}), ...(q.ce ? { ce: q.ce } : {}), ...sites };
      const rows = await listPilots(ctx.handle, { ...filter, ...(status ? { status } : {}), ...(q.before ? { beforeId: q.before } : {}) });
      return { pilots: rows.map(pilotView) };
    },
  );

  /** A pilot the caller may see: admins any, site admins those of their sites (others: 404). */
  async function pilotByRef(ref: string, who: Principal): Promise<PilotRow> {
    const pilot = await findPilot(ctx.handle, ref);
    if (!pilot || !managesSite(who, pilot.site))
      throw new WmsError('WMS_NOT_FOUND', `no pilot ${ref} (give its id, stamp or CE reference)`);
    return pilot;
  }

  app.get(
    '/api/pilots/:ref',
    {
      onRequest: admins,
      schema: {
        tags: ['pilots'],
        summary: 'One pilot with its environment report',
        operationId: 'getPilot',
        security: BEARER,
        params: RefParams,
        response: { 200: ref(PilotDetailSchema), ...errorResponses(...AUTH_ERRORS, 404) },
      },
    },
    async (request) => {
      const pilot = await pilotByRef(request.params.ref, identityOf(request));
      return { ...pilotView(pilot), environment: pilot.environment };
    },
  );

  app.get(
    '/api/pilots/:ref/logs',
    {
      onRequest: admins,
      schema: {
        tags: ['pilots'],
        summary: "A pilot's remote log, in order",
        operationId: 'getPilotLogs',
        security: BEARER,
        params: RefParams,
        querystring: Type.Object({
          after: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'lines after this line id' })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 })),
        }),
        response: { 200: ref(PilotLogSchema), ...errorResponses(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (request) => {
      const pilot = await pilotByRef(request.params.ref, identityOf(request));
      const lines = await getPilotLogs(ctx.handle, pilot.id, { afterId: request.query.after ?? 0, limit: request.query.limit ?? 1000 });
      return { pilotId: pilot.id, status: pilot.status, lines: lines.map((l) => ({ id: l.id, at: l.at.toISOString(), line: l.line })) };
    },
  );
};
