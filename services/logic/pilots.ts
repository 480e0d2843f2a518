/**
 * Pilots calling home, and site admins looking at them (routes: `services/plugins/pilots.ts`).
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
 *
 * Across replicas (db/notices.ts): kills, deletions and new work are announced to every process
 * on the database; each one pushes the kill commands to the pilots whose websockets are on IT
 * (`pushJobCommands`: the commands are taken atomically, so one replica delivers them) and
 * nudges (`{ type: "work" }`) only its pilots whose queue can take the new jobs
 * (`pilotsToNudge`: the ban rules of core/queue-blockers.ts and the match rules of
 * core/matching.ts, as `explainJob` applies them).
 */
import type { Logger } from 'pino';
import type { PilotSettings } from '../../core/config.js';
import { WmsError } from '../../core/errors.js';
import { ANY_VO, managesSite, type PilotPrincipal, type Principal } from '../../core/identity.js';
import { rejectionsFor, type ResourceDescription } from '../../core/matching.js';
import { BAN_KINDS, queueBlockers } from '../../core/queue-blockers.js';
import { pilotTokenDeadMessage, type PilotCommandName, type PilotPush } from '../../core/pilot-protocol.js';
import { isPilotFinal, PILOT_STATES, type PilotState } from '../../core/pilot-states.js';
import {
  appendPilotLogs,
  findPilot,
  getBans,
  getCeQueue,
  getPilotBinding,
  getTaskQueues,
  listCeQueues,
  pilotResource,
  taskQueuesOfJobs,
  type BulkAction,
  type CeQueueView,
  type TaskQueueRow,
  getPilotLogs as readPilotLogs,
  listPilots as listPilotRows,
  pendingCommandsOfJobs,
  registerPilot as registerPilotRow,
  returnJobCommands,
  takeJobCommands,
  updatePilots,
  type PilotBinding,
  type PilotRow,
} from '../../db/index.js';
import type {
  Pilot,
  PilotConfig,
  PilotDetail,
  PilotList,
  PilotLog,
  PilotLogBatch,
  PilotRegistration,
  PilotRegistrationAnswer,
  PilotStatusAnswer,
  PilotStatusReport,
  RenewedToken,
  TimeAnswer,
} from '../../api/index.js';
import type { PilotBundle, ServiceContext } from '../context.js';

/** The pilots connected to this process, as the logic needs them (the sockets stay in the plugin). */
export interface PilotLinks {
  has(pilotId: number): boolean;
  /** Sends to the pilot's open sockets; false when none is open. */
  send(pilotId: number, message: PilotPush): boolean;
  /** Closes the pilot's sockets (its token is dead). */
  close(pilotId: number, reason: string): void;
}

/** The filters of `GET /api/pilots`. */
export interface PilotListQuery {
  site?: string;
  ce?: string;
  /** Comma-separated pilot states. */
  status?: string;
  /** Pilots with a smaller id (next page). */
  before?: number;
  limit?: number;
}

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

/** A short-lived token for the calling pilot (register answer, renewal). */
async function sessionToken(ctx: ServiceContext, p: PilotPrincipal): Promise<RenewedToken> {
  const { token, expiresAt } = await (
    await ctx.signer()
  ).sign({ role: 'pilot', user: p.user, vo: p.vo, pilotId: p.pilotId }, ctx.config.tokens.pilotSessionTtlSeconds);
  return { token, tokenExpiresAt: expiresAt.toISOString() };
}

/** The server clock, for the pilots' clock-skew check. */
export function getTime(ctx: ServiceContext): TimeAnswer {
  return { now: ctx.clock().getTime() };
}

/** The pilot bundle and its SHA-256; 503 while it is not built. */
export async function downloadPilotBundle(ctx: ServiceContext): Promise<PilotBundle> {
  const bundle = await ctx.pilotBundle();
  if (!bundle) throw new WmsError('WMS_UNAVAILABLE', 'the pilot bundle is not built (run npm run build)');
  return bundle;
}

/** The calling pilot's settings. */
export async function getPilotConfig(ctx: ServiceContext, p: PilotPrincipal): Promise<PilotConfig> {
  return pilotConfig(ctx, await selfPilot(ctx, p));
}

/**
 * Registers the calling pilot: refused (and recorded as such) when its clock is off by more
 * than the limit; 409 when it can no longer register. A Running pilot gets a session token.
 */
export async function registerPilot(
  ctx: ServiceContext,
  p: PilotPrincipal,
  input: PilotRegistration,
  log?: Pick<Logger, 'warn'>,
): Promise<PilotRegistrationAnswer> {
  await requireLivePilot(ctx, p);
  const { environment, clockOffsetSeconds, benchmark, benchmarkDetails } = input;
  const limit = ctx.config.pilot.maxClockSkewSeconds;
  const refusal =
    Math.abs(clockOffsetSeconds) > limit ? `clock skew ${Math.abs(clockOffsetSeconds).toFixed(1)} s (limit ${limit} s)` : null;
  const env = benchmarkDetails ? { ...environment, db12: benchmarkDetails } : environment;
  const pilot = await registerPilotRow(ctx.handle, p.pilotId, { environment: env, benchmark, clockOffsetSeconds }, refusal);
  if (!pilot) {
    const current = await selfPilot(ctx, p);
    throw new WmsError('WMS_CONFLICT', `pilot ${p.pilotId} is ${current.status} (${current.statusReason}): it cannot register`);
  }
  await announcePilotChange(ctx, p.pilotId);
  if (refusal) log?.warn({ pilotId: p.pilotId, clockOffsetSeconds }, 'pilot refused: clock skew');
  const answer = { pilotId: pilot.id, status: pilot.status, reason: pilot.statusReason };
  return pilot.status === 'Running' ? { ...answer, ...(await sessionToken(ctx, p)) } : answer;
}

/** Records the calling pilot's status; once final, its sockets here are closed (its token is dead). */
export async function reportPilotStatus(
  ctx: ServiceContext,
  p: PilotPrincipal,
  input: PilotStatusReport,
  links: Pick<PilotLinks, 'close'>,
): Promise<PilotStatusAnswer> {
  const { status, reason, exitCode } = input;
  await requireLivePilot(ctx, p);
  // Guarded in SQL too: a pilot that went final meanwhile stays final.
  await updatePilots(ctx.handle, [p.pilotId], { status, reason, exitCode: exitCode ?? null });
  await announcePilotChange(ctx, p.pilotId);
  const now = (await getPilotBinding(ctx.handle, p.pilotId))?.status ?? 'Deleted';
  if (isPilotFinal(now)) links.close(p.pilotId, `pilot ${p.pilotId} is ${now}`);
  return { status: now };
}

/** Appends a batch of the calling pilot's log lines. */
export async function sendPilotLogs(ctx: ServiceContext, p: PilotPrincipal, input: PilotLogBatch): Promise<void> {
  await requireLivePilot(ctx, p);
  await appendPilotLogs(
    ctx.handle,
    p.pilotId,
    input.lines.map((l) => ({ at: new Date(l.at), line: l.line })),
  );
}

/** A new session token for the calling pilot, while its record is alive. */
export async function renewPilotToken(ctx: ServiceContext, p: PilotPrincipal): Promise<RenewedToken> {
  await requireLivePilot(ctx, p);
  return sessionToken(ctx, p);
}

/**
 * How long a pilot's websocket may stay open: until the token that opened it expires (null: it
 * does not expire). Rejects when the token is no longer valid.
 */
export async function socketLifetimeMs(ctx: ServiceContext, token: string): Promise<number | null> {
  const t = await (await ctx.signer()).inspect(token);
  const ms = t.expiresAt.getTime() - ctx.clock().getTime();
  return Number.isFinite(ms) ? Math.max(0, Math.min(ms, 2 ** 31 - 1)) : null;
}

/** Tells every replica (this one included) that the pilot changed: their event streams read at once. */
async function announcePilotChange(ctx: ServiceContext, pilotId: number): Promise<void> {
  await ctx.notices.publish({ kind: 'pilots-changed', ids: [pilotId] });
}

/**
 * Tells every replica that these jobs were killed, deleted or rescheduled (each pushes the kill
 * commands to its own pilots; rescheduled jobs are new work). Never rejects: notices are hints.
 */
export async function announceJobChanges(ctx: ServiceContext, action: BulkAction, ids: readonly number[]): Promise<void> {
  await ctx.notices.publish({ kind: 'jobs-changed', action, ids: [...ids] });
  if (action === 'reschedule') await announceWork(ctx, ids);
}

/** Tells every replica which task queues these new waiting jobs are in. Never rejects: a hint. */
export async function announceWork(ctx: ServiceContext, jobIds: readonly number[]): Promise<void> {
  try {
    const taskQueues = await taskQueuesOfJobs(ctx.handle, jobIds);
    if (taskQueues.length > 0) await ctx.notices.publish({ kind: 'work', taskQueues });
  } catch {
    // The database is away: the pilots ask for work at their own pace anyway.
  }
}

const NO_PILOTS = { waiting: 0, total: 0 };

/**
 * What a pilot of an unregistered queue offers: what `getPilotConfig` tells it (one processor,
 * no RAM, GPU or tag); its CPU work is unknown, so it is not held against the job.
 */
function placeResource(p: PilotBinding): ResourceDescription {
  const r = { site: p.site, ce: p.ce, queue: p.queue, tags: [], requiredTags: [], processors: 1, ramMb: 0, gpus: 0 };
  return { ...r, cpuWork: Number.MAX_SAFE_INTEGER };
}

/** Whether the pilot's site or CE is banned (a banned place gets no job at all). */
async function placeBanned(ctx: ServiceContext, p: PilotBinding, q: CeQueueView | undefined, now: Date): Promise<boolean> {
  if (q) return queueBlockers(q, NO_PILOTS, now).some((b) => BAN_KINDS.includes(b.kind));
  const bans = await getBans(ctx.handle, p.site, p.ce);
  return bans.site?.banned === true || bans.ce?.banned === true;
}

/** Whether a pilot at this place could be handed a job of one of the task queues. */
async function canTakeAny(
  ctx: ServiceContext,
  p: PilotBinding,
  q: CeQueueView | undefined,
  tqs: readonly TaskQueueRow[],
  now: Date,
): Promise<boolean> {
  if (await placeBanned(ctx, p, q, now)) return false;
  const r = q ? pilotResource(q) : placeResource(p);
  if (p.vo !== ANY_VO) r.vo = p.vo;
  return tqs.some((tq) => rejectionsFor(tq, r).length === 0);
}

/**
 * Of the pilots connected here, those whose queue can take jobs of these task queues (which
 * still have waiting jobs): the same VO (or any, for a pilot of every VO), a site and CE not
 * banned, and the job's needs within what the queue's pilots offer (processors, RAM, GPUs,
 * tags, platform, site and CE lists, CPU time). Decided once per (place, VO) per call.
 */
export async function pilotsToNudge(
  ctx: ServiceContext,
  pilots: Iterable<PilotBinding>,
  taskQueueIds: readonly number[],
): Promise<number[]> {
  const connected = [...pilots];
  if (connected.length === 0 || taskQueueIds.length === 0) return [];
  const tqs = (await getTaskQueues(ctx.handle, taskQueueIds)).filter((tq) => tq.waitingJobs > 0);
  if (tqs.length === 0) return [];
  const queues = new Map((await listCeQueues(ctx.handle)).map((q) => [`${q.site}\0${q.ce}\0${q.queue}`, q]));
  const now = ctx.clock();
  const verdicts = new Map<string, Promise<boolean>>();
  const out: number[] = [];
  for (const p of connected) {
    const place = `${p.site}\0${p.ce}\0${p.queue}`;
    const key = `${place}\0${p.vo}`;
    let verdict = verdicts.get(key);
    if (!verdict) verdicts.set(key, (verdict = canTakeAny(ctx, p, queues.get(place), tqs, now)));
    if (await verdict) out.push(p.id);
  }
  return out;
}

/**
 * After a kill or deletion (a notice from any replica): pushes the pending commands of these
 * jobs to the pilots holding them, when connected here. The commands are taken atomically, so
 * of all replicas only the pilot's one delivers them; one not delivered stays for the heartbeat.
 */
export async function pushJobCommands(
  ctx: ServiceContext,
  links: Pick<PilotLinks, 'has' | 'send'>,
  change: { action: string; ids: readonly number[] },
): Promise<void> {
  if (change.action !== 'kill' && change.action !== 'delete') return;
  const pending = await pendingCommandsOfJobs(ctx.handle, change.ids);
  const byPilot = new Map<number, number[]>();
  for (const { jobId, pilotId } of pending) {
    if (pilotId === null || !links.has(pilotId)) continue;
    byPilot.set(pilotId, [...(byPilot.get(pilotId) ?? []), jobId]);
  }
  for (const [pilotId, ids] of byPilot) {
    const commands = await takeJobCommands(ctx.handle, ids);
    if (commands.length > 0 && !links.send(pilotId, { type: 'commands', commands })) {
      // The socket closed meanwhile: nothing was delivered, so the heartbeat must carry them.
      await returnJobCommands(ctx.handle, commands);
    }
  }
}

/** The pilot states named in a comma-separated filter; 400 naming the unknown ones. */
function statusFilter(status: string | undefined): PilotState[] | undefined {
  if (!status) return undefined;
  const list = status.split(',').map((s) => s.trim());
  const bad = list.filter((s) => !(PILOT_STATES as readonly string[]).includes(s));
  if (bad.length > 0) throw new WmsError('WMS_VALIDATION', `unknown pilot status ${bad.join(', ')} (one of ${PILOT_STATES.join(', ')})`);
  return list as PilotState[];
}

/** Pilots, newest first: admins see every pilot, a site admin those of its own sites. */
export async function listPilots(ctx: ServiceContext, who: Principal, q: PilotListQuery): Promise<PilotList> {
  const status = statusFilter(q.status);
  // A site admin sees the pilots of its own sites only (one query, whatever their number).
  const sites =
    who.role === 'admin' ? {} : { sites: (who.role === 'site-admin' ? (who.sites ?? []) : []).filter((s) => managesSite(who, s)) };
  const filter = { limit: q.limit ?? 100, ...(q.site ? { site: q.site } : {}), ...(q.ce ? { ce: q.ce } : {}), ...sites };
  const rows = await listPilotRows(ctx.handle, { ...filter, ...(status ? { status } : {}), ...(q.before ? { beforeId: q.before } : {}) });
  return { pilots: rows.map(pilotView) };
}

/** A pilot the caller may see: admins any, site admins those of their sites (others: 404). */
async function pilotByRef(ctx: ServiceContext, who: Principal, ref: string): Promise<PilotRow> {
  const pilot = await findPilot(ctx.handle, ref);
  if (!pilot || !managesSite(who, pilot.site)) throw new WmsError('WMS_NOT_FOUND', `no pilot ${ref} (give its id, stamp or CE reference)`);
  return pilot;
}

/** One pilot with its environment report. */
export async function getPilot(ctx: ServiceContext, who: Principal, input: { ref: string }): Promise<PilotDetail> {
  const pilot = await pilotByRef(ctx, who, input.ref);
  return { ...pilotView(pilot), environment: pilot.environment };
}

/** A pilot's remote log, in order. */
export async function getPilotLogs(
  ctx: ServiceContext,
  who: Principal,
  input: { ref: string; after?: number; limit?: number },
): Promise<PilotLog> {
  const pilot = await pilotByRef(ctx, who, input.ref);
  const lines = await readPilotLogs(ctx.handle, pilot.id, { afterId: input.after ?? 0, limit: input.limit ?? 1000 });
  return { pilotId: pilot.id, status: pilot.status, lines: lines.map((l) => ({ id: l.id, at: l.at.toISOString(), line: l.line })) };
}
