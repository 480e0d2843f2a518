/**
 * The site registry as site admins change it: a whole document (`wms site apply FILE`) applied
 * in one transaction (sites, computing elements and queues created or updated, nothing
 * removed), the registry read back, one site's status, and the queues' health (CE health:
 * after consecutive failed pilots a queue is paused, with a back-off that grows while no pilot
 * ends well).
 */
import { WmsError } from '../../core/errors.js';
import type { SiteRegistry } from '../../core/site-config.js';
import { PILOT_STATES, type PilotState } from '../../core/pilot-states.js';
import { dbOf, type DbOrHandle } from '../open-db.js';
import { exec, rows } from '../queries/raw.js';
import {
  computingElementSites,
  listCeQueues,
  upsertCeQueue,
  upsertComputingElement,
  upsertSite,
  type CeQueueView,
} from '../queries/registry.js';

export interface ApplyResult {
  sites: number;
  computingElements: number;
  queues: { created: number; updated: number };
}

/**
 * Who applies a document: `siteRefusal(site)` answers why the caller may not change `site`
 * (null: it may). Called, inside the transaction and before anything is written, for every
 * site the document names and for the current site of every computing element it names that
 * already exists (a CE moved from another site changes that site too).
 */
export interface ApplyAuthority {
  siteRefusal(site: string): string | null;
}

/**
 * Creates or updates everything the document names, in one transaction. With `authority`, a
 * refused site throws WMS_FORBIDDEN naming it, and nothing is written.
 */
export async function applySiteRegistry(db: DbOrHandle, reg: SiteRegistry, authority?: ApplyAuthority): Promise<ApplyResult> {
  return dbOf(db).transaction(async (tx) => {
    if (authority) {
      const refusals: string[] = [];
      for (const site of reg.sites) {
        const why = authority.siteRefusal(site.name);
        if (why) refusals.push(`site ${site.name}: ${why}`);
      }
      const names = reg.sites.flatMap((s) => s.computingElements.map((ce) => ({ ce: ce.name, site: s.name })));
      const current = await computingElementSites(
        tx,
        names.map((n) => n.ce),
      );
      for (const { ce, site } of names) {
        const now = current.get(ce);
        if (now === undefined || now === site) continue;
        const why = authority.siteRefusal(now);
        if (why) refusals.push(`computing element ${ce} belongs to site ${now}: ${why}`);
      }
      if (refusals.length > 0) {
        throw new WmsError('WMS_FORBIDDEN', `nothing applied: ${refusals[0]}`, {
          details: { problems: refusals.map((message) => ({ message })) },
        });
      }
    }
    const before = new Set((await listCeQueues(tx)).map((q) => `${q.ce}/${q.queue}`));
    const result: ApplyResult = { sites: 0, computingElements: 0, queues: { created: 0, updated: 0 } };
    for (const site of reg.sites) {
      await upsertSite(tx, { name: site.name, ...(site.description !== undefined ? { description: site.description } : {}) });
      result.sites++;
      for (const ce of site.computingElements) {
        await upsertComputingElement(tx, { site: site.name, name: ce.name, type: ce.type, settings: ce.settings ?? {} });
        result.computingElements++;
        for (const q of ce.queues) {
          const settings: Record<string, unknown> = { ...(q.settings ?? {}) };
          if (q.timeLimitSeconds !== undefined) settings['timeLimitSeconds'] = q.timeLimitSeconds;
          if (q.environment !== undefined) settings['environment'] = q.environment;
          if (q.workDirs !== undefined) settings['workDirs'] = q.workDirs;
          if (q.isolation !== undefined) settings['isolation'] = q.isolation;
          if (q.payloadUser !== undefined) settings['payloadUser'] = q.payloadUser;
          if (q.bwrapPath !== undefined) settings['bwrapPath'] = q.bwrapPath;
          if (q.requiredTags !== undefined) settings['requiredTags'] = q.requiredTags;
          await upsertCeQueue(tx, {
            ce: ce.name,
            name: q.name,
            ...(q.cpuTime !== undefined ? { cpuTime: q.cpuTime } : {}),
            ...(q.processors !== undefined ? { processors: q.processors } : {}),
            ...(q.ramMb !== undefined ? { ramMb: q.ramMb } : {}),
            ...(q.gpus !== undefined ? { gpus: q.gpus } : {}),
            platform: q.platform ?? null,
            ...(q.tags !== undefined ? { tags: q.tags } : {}),
            ...(q.allowedVos !== undefined ? { allowedVos: q.allowedVos } : {}),
            ...(q.maxWaitingPilots !== undefined ? { maxWaitingPilots: q.maxWaitingPilots } : {}),
            ...(q.maxTotalPilots !== undefined ? { maxTotalPilots: q.maxTotalPilots } : {}),
            ...(q.maxPilotsPerCycle !== undefined ? { maxPilotsPerCycle: q.maxPilotsPerCycle } : {}),
            nodePath: q.nodePath ?? null,
            settings,
          });
          if (before.has(`${ce.name}/${q.name}`)) result.queues.updated++;
          else result.queues.created++;
        }
      }
    }
    return result;
  });
}

/** A queue's pilots by state and the last reasons its pilots failed. */
export interface QueueStatus {
  queue: CeQueueView;
  pilots: Partial<Record<PilotState, number>>;
  lastFailures: { pilotId: number; status: PilotState; reason: string; at: Date }[];
}

/** Every queue of `site` with its pilots by state and its last failure reasons; null: no such site. */
export async function siteStatus(db: DbOrHandle, site: string, failures = 5): Promise<QueueStatus[] | null> {
  const [exists] = await rows(db, `select 1 from sites where name = $1::text`, [site]);
  if (!exists) return null;
  const queues = (await listCeQueues(db)).filter((q) => q.site === site);
  const ids = queues.map((q) => q.queueId);
  const counts = await rows<{ queue_id: number; status: PilotState; n: number }>(
    db,
    `select queue_id, status, count(*) as n from pilots where queue_id = any($1::bigint[]) group by queue_id, status`,
    [ids],
  );
  const recent = await rows<{ id: number; queue_id: number; status: PilotState; status_reason: string; last_update_at: string }>(
    db,
    `select id, queue_id, status, status_reason, last_update_at from (
       select p.*, row_number() over (partition by queue_id order by last_update_at desc, id desc) as rn
         from pilots p where queue_id = any($1::bigint[]) and status in ('Failed', 'Aborted')
     ) x where rn <= $2::int order by queue_id, rn`,
    [ids, failures],
  );
  return queues.map((queue) => ({
    queue,
    pilots: Object.fromEntries(
      PILOT_STATES.map((st) => [st, counts.find((c) => c.queue_id === queue.queueId && c.status === st)?.n ?? 0] as const).filter(
        ([, n]) => n > 0,
      ),
    ),
    lastFailures: recent
      .filter((r) => r.queue_id === queue.queueId)
      .map((r) => ({ pilotId: r.id, status: r.status, reason: r.status_reason, at: new Date(r.last_update_at) })),
  }));
}

export interface QueueHealth {
  /** Finished pilots in a row, newest first, that did not end Done (since the last pause). */
  failedInARow: number;
  lastReason: string | null;
  /** A pilot ended Done since the last pause. */
  anyDone: boolean;
}

/** Per queue with finished pilots (since its last pause, within a day): its failure streak. */
export async function queueHealth(db: DbOrHandle): Promise<Map<number, QueueHealth>> {
  const r = await rows<{ queue_id: number; streak: number; last_reason: string | null; any_done: boolean }>(
    db,
    `with recent as (
       select p.queue_id, p.status, p.status_reason,
              row_number() over (partition by p.queue_id order by p.last_update_at desc, p.id desc) as rn
         from pilots p join ce_queues q on q.id = p.queue_id
        where p.status in ('Done', 'Failed', 'Aborted')
          and p.created_at > coalesce(q.paused_until, '-infinity'::timestamptz)
          and p.last_update_at > now() - interval '1 day'
     )
     select queue_id,
            coalesce(min(rn) filter (where status = 'Done'), max(rn) + 1) - 1 as streak,
            (array_agg(status_reason order by rn) filter (where status <> 'Done'))[1] as last_reason,
            bool_or(status = 'Done') as any_done
       from recent where rn <= 100 group by queue_id`,
  );
  return new Map(r.map((x) => [x.queue_id, { failedInARow: x.streak, lastReason: x.last_reason, anyDone: Boolean(x.any_done) }]));
}

/** Pauses a queue until `until` (one more pause in a row). */
export async function pauseQueue(db: DbOrHandle, queueId: number, until: Date, reason: string): Promise<void> {
  await exec(
    db,
    `update ce_queues set paused_until = $2::timestamptz, pause_reason = $3::text, pause_count = pause_count + 1 where id = $1::bigint`,
    [queueId, until.toISOString(), reason],
  );
}

/** A pilot ended well: the queue's back-off starts afresh. */
export async function clearQueuePause(db: DbOrHandle, queueId: number): Promise<void> {
  await exec(db, `update ce_queues set pause_count = 0, pause_reason = null where id = $1::bigint and pause_count > 0`, [queueId]);
}
