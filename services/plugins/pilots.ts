/**
 * Pilots calling home, and site admins looking at them: the routes, the pilots' websockets and
 * the pushes on them. Who may do what: `services/logic/pilots.ts`.
 *
 * Pushes follow the notices of every replica (`ctx.notices`, db/notices.ts): a kill or deletion
 * pushes the commands to the pilots connected HERE; new work (task-queue ids, gathered for
 * NUDGE_GATHER_MS) nudges those of them whose queue can take it.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { WebSocket } from '@fastify/websocket';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { PilotPrincipal } from '../../core/identity.js';
import type { PilotPush } from '../../core/pilot-protocol.js';
import type { Notice, PilotBinding } from '../../db/index.js';
import type { PluginOptions } from '../context.js';
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
} from '../../api/index.js';
import {
  downloadPilotBundle,
  getPilot,
  getPilotConfig,
  getPilotLogs,
  getTime,
  listPilots,
  pilotsToNudge,
  pushJobCommands,
  registerPilot,
  renewPilotToken,
  reportPilotStatus,
  requireLivePilot,
  sendPilotLogs,
  socketLifetimeMs,
  type PilotLinks,
} from '../logic/pilots.js';
import { AUTH_ERRORS, errorResponses, gzipAnswer } from '../schemas.js';
import { BEARER, bearerToken, identityOf, OPEN, requireRole } from './auth.js';

/** New work is gathered this long, so a burst of submissions costs one look per replica. */
export const NUDGE_GATHER_MS = 20;

/** The websockets of the pilots connected to this process, with each pilot's place (from its record). */
class PilotSockets implements PilotLinks {
  private readonly sockets = new Map<number, Set<WebSocket>>();
  private readonly places = new Map<number, PilotBinding>();
  /** Sockets open here (a pilot may hold two for a moment while it reconnects): `wms_pilot_websockets`. */
  held = 0;

  add(pilot: PilotBinding, socket: WebSocket): void {
    const pilotId = pilot.id;
    let set = this.sockets.get(pilotId);
    if (!set) this.sockets.set(pilotId, (set = new Set()));
    set.add(socket);
    this.held++;
    this.places.set(pilotId, pilot);
    socket.on('close', () => {
      this.held--;
      set.delete(socket);
      if (set.size === 0 && this.sockets.get(pilotId) === set) {
        this.sockets.delete(pilotId);
        this.places.delete(pilotId);
      }
    });
  }

  get size(): number {
    return this.sockets.size;
  }

  has(pilotId: number): boolean {
    return this.sockets.has(pilotId);
  }

  /** The connected pilots' records (id, site, CE, queue, VO) as they were when they connected. */
  pilots(): IterableIterator<PilotBinding> {
    return this.places.values();
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

/**
 * Gathers the task queues of new work for NUDGE_GATHER_MS, then sends `{ type: "work" }` to the
 * connected pilots whose queue can take it (idle ones ask for a job at once).
 */
function workNudger(ctx: PluginOptions['ctx'], sockets: PilotSockets, log: FastifyBaseLogger): (taskQueues: readonly number[]) => void {
  let pending = new Set<number>();
  let timer: NodeJS.Timeout | null = null;
  const flush = async () => {
    timer = null;
    const taskQueues = [...pending];
    pending = new Set();
    for (const id of await pilotsToNudge(ctx, sockets.pilots(), taskQueues)) sockets.send(id, { type: 'work' });
  };
  return (taskQueues) => {
    for (const id of taskQueues) pending.add(id);
    timer ??= setTimeout(() => void flush().catch((e: unknown) => log.warn({ err: e }, 'nudging pilots failed')), NUDGE_GATHER_MS);
    timer.unref();
  };
}

const RefParams = Type.Object({ ref: Type.String({ minLength: 1, maxLength: 256, description: 'pilot id, stamp or CE reference' }) });

export const pilotsPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const sockets = new PilotSockets();
  ctx.metrics.countConnections('pilot-websockets', () => sockets.held);
  const pilotOnly = requireRole(ctx, 'pilot');
  const admins = requireRole(ctx, 'admin', 'site-admin');
  /** The record each pilot's websocket request was checked against (its place, for the nudges). */
  const checked = new WeakMap<FastifyRequest, PilotBinding>();
  /** After pilotOnly: the pilot's record must be alive. */
  const alive = async (request: FastifyRequest) => {
    checked.set(request, await requireLivePilot(ctx, identityOf(request) as PilotPrincipal));
  };

  const nudge = workNudger(ctx, sockets, app.log);
  const unsubscribe = ctx.notices.subscribe((n: Notice) => {
    if (sockets.size === 0) return;
    if (n.kind === 'jobs-changed') {
      pushJobCommands(ctx, sockets, n).catch((e: unknown) => app.log.warn({ err: e }, 'pushing commands to pilots failed'));
    } else if (n.kind === 'work') nudge(n.taskQueues);
  });
  app.addHook('onClose', async () => unsubscribe());

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
    async () => getTime(ctx),
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
      const bundle = await downloadPilotBundle(ctx);
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
    async (request) => getPilotConfig(ctx, identityOf(request) as PilotPrincipal),
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
    async (request) => registerPilot(ctx, identityOf(request) as PilotPrincipal, request.body, request.log),
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
    async (request) => reportPilotStatus(ctx, identityOf(request) as PilotPrincipal, request.body, sockets),
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
      await sendPilotLogs(ctx, identityOf(request) as PilotPrincipal, request.body);
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
    async (request) => renewPilotToken(ctx, identityOf(request) as PilotPrincipal),
  );

  app.get('/api/pilots/self/ws', { onRequest: [pilotOnly, alive], websocket: true, schema: { hide: true } }, (socket, request) => {
    // The pilot's record, as `alive` read it: its id (the token's) and its place, for the nudges.
    const place = checked.get(request);
    if (!place) return socket.close(4403, 'pilot not checked');
    sockets.add(place, socket);
    socket.on('message', () => undefined); // pilots only listen; pings are answered by ws
    // The socket lives no longer than the token that opened it: the pilot reconnects with its
    // current one (and a revoked or dead token cannot listen on).
    const token = bearerToken(request);
    if (token !== null) {
      void socketLifetimeMs(ctx, token)
        .then((ms) => {
          if (ms === null) return;
          const timer = setTimeout(() => socket.close(4401, 'token expired'), ms);
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
    async (request) => listPilots(ctx, identityOf(request), request.query),
  );

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
    async (request) => getPilot(ctx, identityOf(request), request.params),
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
    async (request) => getPilotLogs(ctx, identityOf(request), { ...request.params, ...request.query }),
  );
};
