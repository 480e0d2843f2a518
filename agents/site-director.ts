/**
 * The site director (DIRAC's SiteDirector): each tick, for every
 * registered queue whose site and CE are not banned and whose CE type has a driver, it sends
 *
 *   pilots = min(maxPilotsPerCycle, free slots, waiting work − waiting pilots)
 *
 * where free slots = min(maxWaitingPilots − waiting pilots, maxTotalPilots − live pilots, what
 * the CE says it can take), and waiting work = waiting jobs whose task queue fits the queue
 * (counted up to what could be used). Each pilot gets a record (Submitted), a stamp, a pilot
 * token and its own wrapper, with the bundle's SHA-256 embedded. A queue whose pilots keep
 * failing is paused (CE health, `checkHealth`), and so is one whose cycle the CE's driver fails
 * (settings it refuses, an endpoint that does not answer, every pilot refused), with the
 * driver's words as the reason (`submitToQueue`). What stops a queue (banned, paused, a pilot
 * limit full, CE settings invalid) is decided by core/queue-blockers.ts, whose words
 * `wms job explain` shows. Queues are handled in parallel; one failing never stops the others.
 * The registry is read every tick: a queue added or banned while the services run is seen on
 * the next cycle, no restart.
 */
import { randomBytes } from 'node:crypto';
import { ANY_VO, type PilotPrincipal } from '../core/identity.js';
import { mergeCeSettings } from '../core/site-config.js';
import { BAN_KINDS, PILOT_LIMIT_KINDS, queueBlockers, type QueueBlocker } from '../core/queue-blockers.js';
import {
  countWaitingJobsFor,
  createPilots,
  clearQueuePause,
  listCeQueues,
  pauseQueue,
  pilotCountsByQueue,
  queueHealth,
  setPilotReferences,
  updatePilots,
  type CeQueueView,
  type DbHandle,
  type QueueHealth,
} from '../db/index.js';
import type { Agent, AgentContext } from './agent.js';
import type { CeQueueTarget, ComputingElement } from './computing-elements/types.js';
import { loadWrapperTemplate, renderWrapper } from './pilot-wrapper.js';

export interface SiteDirectorDeps {
  /** The driver of a CE (by type and name, with its settings); null when the type has none. */
  drivers: (ce: { type: string; name: string; settings: Record<string, unknown> }) => ComputingElement | null;
  /** Signs a pilot token (the services' signer, handed over by whoever composes the process). */
  signPilotToken: (p: PilotPrincipal) => Promise<string>;
  /** The SHA-256 of the pilot bundle the services serve; null when it is not built. */
  bundleSha256: () => Promise<string | null>;
  /** The URL pilots call home to. */
  serverUrl: () => string;
}

export interface QueueOutcome {
  queue: string;
  submitted: number;
  reason: string;
}

function newStamp(): string {
  return randomBytes(16).toString('hex');
}

function targetOf(q: CeQueueView): CeQueueTarget {
  const limit = q.settings['timeLimitSeconds'];
  return {
    site: q.site,
    ce: q.ce,
    queue: q.queue,
    processors: q.processors,
    ramMb: q.ramMb,
    timeLimitSeconds: typeof limit === 'number' ? limit : 86_400,
    settings: mergeCeSettings(q.ceType, q.ceSettings, q.settings),
  };
}

/** How many pilots one queue gets this cycle, and why (for the tick's outcome line); `blockers` are the queue's. */
export async function pilotsWanted(
  db: DbHandle,
  q: CeQueueView,
  counts: { waiting: number; total: number },
  ceSlots: number | null,
  blockers: readonly QueueBlocker[],
): Promise<{ n: number; why: string }> {
  const full = blockers.filter((b) => PILOT_LIMIT_KINDS.includes(b.kind));
  if (full.length > 0) return { n: 0, why: full.map((b) => b.reason).join('; ') };
  const freeSlots = Math.min(q.maxWaitingPilots - counts.waiting, q.maxTotalPilots - counts.total, ceSlots ?? Infinity);
  if (freeSlots <= 0) return { n: 0, why: `CE ${q.ce} takes no more pilots now` };
  const cap = Math.min(q.maxPilotsPerCycle, freeSlots) + counts.waiting;
  const resource = {
    site: q.site,
    ce: q.ce,
    queue: q.queue,
    tags: q.tags,
    requiredTags: [],
    processors: q.processors,
    ramMb: q.ramMb,
    gpus: q.gpus,
    cpuWork: q.cpuTime,
    ...(q.allowedVos.length === 1 ? { vo: q.allowedVos[0]! } : {}),
    ...(q.platform ? { platform: q.platform } : {}),
  };
  const work = await countWaitingJobsFor(db, resource, cap);
  const n = Math.min(q.maxPilotsPerCycle, freeSlots, work - counts.waiting);
  if (n <= 0) return { n: 0, why: work === 0 ? 'no waiting work' : `${counts.waiting} waiting pilots cover ${work} jobs` };
  return { n, why: `${work}${work >= cap ? '+' : ''} waiting jobs` };
}

/**
 * CE health: a queue whose last `pauseAfterFailedPilots` finished pilots all failed is paused,
 * first for `pauseSeconds`, doubling with each pause in a row up to `maxPauseSeconds`; a pilot
 * that ends Done starts the back-off afresh. Answers the outcome when the queue gets nothing.
 */
async function checkHealth(ctx: AgentContext, q: CeQueueView, health: QueueHealth | undefined): Promise<QueueOutcome | null> {
  if (!health) return null;
  if (health.anyDone && q.pauseCount > 0) await clearQueuePause(ctx.db, q.queueId);
  const s = ctx.config.agentSettings.siteDirector;
  if (health.failedInARow < s.pauseAfterFailedPilots) return null;
  const why = `${health.failedInARow} pilots in a row failed (last: ${health.lastReason ?? 'no reason given'})`;
  return pause(ctx, q, health.anyDone ? 0 : q.pauseCount, why);
}

/**
 * Pauses a queue for CE health's length after `count` pauses in a row (`pauseSeconds`, doubled
 * each time, at most `maxPauseSeconds`), with `why` as its reason: what `wms site status` and
 * the Sites page show.
 */
async function pause(ctx: AgentContext, q: CeQueueView, count: number, why: string): Promise<QueueOutcome> {
  const s = ctx.config.agentSettings.siteDirector;
  const seconds = Math.min(s.maxPauseSeconds, s.pauseSeconds * 2 ** count);
  const until = new Date(ctx.now().getTime() + seconds * 1000);
  const reason = `${why}; paused for ${seconds} s`;
  await pauseQueue(ctx.db, q.queueId, until, reason);
  ctx.log.warn(`${q.site}/${q.ce}/${q.queue}: ${reason}`);
  return { queue: `${q.site}/${q.ce}/${q.queue}`, submitted: 0, reason: `paused: ${reason}` };
}

/** The CE's driver failed (its settings refused, its backend unreachable): the queue's cycle fails. */
class CeFailure extends Error {}

/** Runs a call of the CE's driver; whatever it throws becomes a CeFailure with its words. */
async function driverCall<T>(f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw new CeFailure((e as Error).message, { cause: e });
  }
}

/** A queue the director considers this cycle: its pilots now and what stops it (core/queue-blockers.ts). */
interface QueuePlan {
  q: CeQueueView;
  counts: { waiting: number; total: number };
  blockers: QueueBlocker[];
}

/**
 * One queue's turn: nothing when a blocker other than a full pilot limit stops it (a pause, CE
 * settings its driver cannot work with), else CE health, else its pilots (a full limit is said
 * after the CE is asked for its slots).
 */
async function serveQueue(
  ctx: AgentContext,
  deps: SiteDirectorDeps,
  { q, counts, blockers }: QueuePlan,
  health: QueueHealth | undefined,
  template: string,
  bundleSha256: string,
): Promise<QueueOutcome> {
  const stop = blockers.filter((b) => !PILOT_LIMIT_KINDS.includes(b.kind));
  if (stop.length > 0) {
    const name = `${q.site}/${q.ce}/${q.queue}`;
    const reason = stop.map((b) => b.reason).join('; ');
    // A pause ends by itself; settings the driver cannot work with wait for the site admin.
    if (stop.some((b) => b.kind === 'ce-settings-invalid')) ctx.log.error(`${name}: ${reason}`);
    return { queue: name, submitted: 0, reason };
  }
  return (await checkHealth(ctx, q, health)) ?? (await submitToQueue(ctx, deps, q, counts, blockers, template, bundleSha256));
}

export function createSiteDirector(deps: SiteDirectorDeps, schedule: string): Agent {
  return {
    name: 'site-director',
    schedule,
    async tick(ctx: AgentContext): Promise<string> {
      const sha = await deps.bundleSha256();
      if (!sha) return 'no pilot bundle (run npm run build): nothing submitted';
      const template = await loadWrapperTemplate();
      const registered = await listCeQueues(ctx.db);
      const counts = await pilotCountsByQueue(ctx.db);
      const health = await queueHealth(ctx.db);
      const now = ctx.now();
      const queues = registered
        .map((q): QueuePlan => {
          const c = counts.get(q.queueId) ?? { waiting: 0, total: 0 };
          return { q, counts: c, blockers: queueBlockers(q, c, now) };
        })
        .filter(({ blockers }) => !blockers.some((b) => BAN_KINDS.includes(b.kind)));
      const outcomes = await Promise.all(
        queues.map((plan) =>
          serveQueue(ctx, deps, plan, health.get(plan.q.queueId), template, sha).catch((e: unknown): QueueOutcome => ({
            queue: plan.q.queue,
            submitted: 0,
            reason: `error: ${(e as Error).message}`,
          })),
        ),
      );
      const total = outcomes.reduce((s, o) => s + o.submitted, 0);
      for (const o of outcomes) {
        if (o.submitted > 0 || o.reason.startsWith('error'))
          ctx.log[o.submitted > 0 ? 'info' : 'error'](`${o.queue}: ${o.submitted} pilot(s); ${o.reason}`);
      }
      return `${total} pilot(s) submitted to ${outcomes.filter((o) => o.submitted > 0).length} of ${queues.length} queue(s)`;
    },
  };
}

/**
 * Sends a queue its pilots. A cycle the CE's driver fails (it throws, or refuses every pilot)
 * pauses the queue with the driver's words as the reason, like a queue whose pilots fail, so
 * that it does not fail again every tick unseen.
 */
async function submitToQueue(...args: Parameters<typeof sendPilots>): Promise<QueueOutcome> {
  const [ctx, , q] = args;
  try {
    const outcome = await sendPilots(...args);
    return outcome.failedAll ? await pause(ctx, q, q.pauseCount, `pilot submission failed: ${outcome.failedAll}`) : outcome;
  } catch (e) {
    if (e instanceof CeFailure) return pause(ctx, q, q.pauseCount, `pilot submission failed: ${e.message}`);
    throw e;
  }
}

async function sendPilots(
  ctx: AgentContext,
  deps: SiteDirectorDeps,
  q: CeQueueView,
  counts: { waiting: number; total: number },
  blockers: readonly QueueBlocker[],
  template: string,
  bundleSha256: string,
): Promise<QueueOutcome & { failedAll?: string }> {
  const name = `${q.site}/${q.ce}/${q.queue}`;
  const driver = await driverCall(() => deps.drivers({ type: q.ceType, name: q.ce, settings: q.ceSettings }));
  if (!driver) return { queue: name, submitted: 0, reason: `no driver for CE type ${q.ceType}` };
  const target = targetOf(q);
  const { n, why } = await pilotsWanted(ctx.db, q, counts, await driverCall(() => driver.availableSlots(target)), blockers);
  if (n <= 0) return { queue: name, submitted: 0, reason: why };

  // One allowed VO: the pilot serves it. None (or several, until the registry learns per-VO
  // submission): the pilot may take any VO's jobs.
  const vo = q.allowedVos.length === 1 ? q.allowedVos[0]! : ANY_VO;
  const stamps = Array.from({ length: n }, newStamp);
  const ids = await createPilots(
    ctx.db,
    stamps.map((stamp) => ({ stamp, site: q.site, ce: q.ce, ceType: q.ceType, queue: q.queue, queueId: q.queueId, vo })),
  );
  const settings = q.settings;
  const workDirs = Array.isArray(settings['workDirs']) ? (settings['workDirs'] as string[]) : [];
  const submissions = await Promise.all(
    stamps.map(async (stamp, i) => {
      const token = await deps.signPilotToken({ role: 'pilot', user: `pilot:${ids[i]}`, pilotId: ids[i]!, vo });
      const wrapper = renderWrapper(template, {
        serverUrl: deps.serverUrl(),
        token,
        stamp,
        bundleSha256,
        nodePath: q.nodePath,
        workDirs,
        // The queue's environment is for payloads only: the pilot gets it in its settings.
      });
      return { stamp, wrapper };
    }),
  );
  const { submitted, failed } = await driver
    .submit(target, submissions)
    .catch((e: Error) => ({ submitted: [], failed: stamps.map((stamp) => ({ stamp, reason: e.message })) }));
  await setPilotReferences(ctx.db, submitted, `submitted to ${q.ce}`);
  const idOf = new Map(stamps.map((s, i) => [s, ids[i]!]));
  for (const f of failed) {
    await updatePilots(ctx.db, [idOf.get(f.stamp)!], { status: 'Aborted', reason: `submission failed: ${f.reason}` });
  }
  const failures = failed.length > 0 ? `; ${failed.length} failed: ${failed[0]!.reason}` : '';
  return {
    queue: name,
    submitted: submitted.length,
    reason: `${why}${failures}`,
    ...(submitted.length === 0 && failed.length > 0 ? { failedAll: failed[0]!.reason } : {}),
  };
}
