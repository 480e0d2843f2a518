/**
 * The gauges of `/metrics`, read at scrape time: five grouped counts, one round trip each, no
 * transaction (each count is consistent in itself; a scrape every 15-60 s does not need the
 * five to be one snapshot). Indexes used:
 *
 * - waiting jobs per task queue: `jobs_waiting_by_tq` (partial, status = 'Waiting'), joined to
 *   the few hundred task queues by primary key;
 * - running jobs per site and failed jobs per minor status: `jobs_status` (status, id);
 * - jobs per status: an index-only scan of `jobs_status`;
 * - pilots per site, CE, type and state: `pilots_site_status` (site, ce, status).
 */
import { JOB_STATES, type JobState } from '../../core/job-states.js';
import type { DbOrHandle } from '../open-db.js';
import { rows } from './raw.js';

export interface MetricsGauges {
  /** Waiting jobs per task queue (id), with its VO and group. */
  waitingJobs: { taskQueue: number; vo: string; ownerGroup: string; count: number }[];
  /** Running jobs per site (the matched site). */
  runningJobs: { site: string; count: number }[];
  /** Pilots per site, CE, CE type and state (final states included: the cleaning agent bounds them). */
  pilots: { site: string; ce: string; ceType: string; state: string; count: number }[];
  /** Failed jobs per minor status (DIRAC's failure reason). */
  failedJobs: { minorStatus: string; count: number }[];
  /** Jobs per status; every state is present (0 when none). */
  jobs: Record<JobState, number>;
}

/** Reads every gauge of `/metrics` (five grouped counts; no transaction needed). */
export async function readMetricsGauges(db: DbOrHandle): Promise<MetricsGauges> {
  const waiting = await rows<{ id: number; vo: string; owner_group: string; n: number }>(
    db,
    `select tq.id, tq.vo, tq.owner_group, w.n
       from (select task_queue_id, count(*) as n
               from jobs
              where status = 'Waiting' and task_queue_id is not null
              group by task_queue_id) w
       join task_queues tq on tq.id = w.task_queue_id
      order by tq.id`,
  );
  const running = await rows<{ site: string; n: number }>(
    db,
    `select site, count(*) as n from jobs where status = 'Running' group by site order by site`,
  );
  const pilots = await rows<{ site: string; ce: string; ce_type: string; status: string; n: number }>(
    db,
    `select site, ce, ce_type, status, count(*) as n
       from pilots
      group by site, ce, ce_type, status
      order by site, ce, ce_type, status`,
  );
  const failed = await rows<{ minor_status: string; n: number }>(
    db,
    `select minor_status, count(*) as n from jobs where status = 'Failed' group by minor_status order by minor_status`,
  );
  const byStatus = await rows<{ status: string; n: number }>(db, `select status, count(*) as n from jobs group by status`);
  const jobs = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
  for (const r of byStatus) jobs[r.status as JobState] = r.n;
  return {
    waitingJobs: waiting.map((r) => ({ taskQueue: r.id, vo: r.vo, ownerGroup: r.owner_group, count: r.n })),
    runningJobs: running.map((r) => ({ site: r.site, count: r.n })),
    pilots: pilots.map((r) => ({ site: r.site, ce: r.ce, ceType: r.ce_type, state: r.status, count: r.n })),
    failedJobs: failed.map((r) => ({ minorStatus: r.minor_status, count: r.n })),
    jobs,
  };
}

/** Pilots that became Failed or Aborted in a window, per site, CE, CE type and state. */
export interface PilotsEnded {
  counts: { site: string; ce: string; ceType: string; state: string; count: number }[];
  /** The window's end: pass it as `since` next time (each pilot is counted once). */
  until: Date;
}

/**
 * Pilots set Failed or Aborted after `since` and at least `settleSeconds` ago, on the database's
 * clock (index `pilots_status_updated`). The settle time lets transactions that stamped
 * `last_update_at` earlier but committed later be seen before the window passes them by.
 * Feeds the `wms_pilots_failed_total` counter: the pilot rows themselves are cleaned later, so a
 * count of rows could go down; the windows only add.
 */
export async function readPilotsEnded(db: DbOrHandle, since: Date, settleSeconds = 2): Promise<PilotsEnded> {
  const [bound] = await rows<{ until: Date | string }>(db, `select now() - make_interval(secs => $1::float8) as until`, [settleSeconds]);
  const until = new Date(bound!.until);
  const ended = await rows<{ site: string; ce: string; ce_type: string; status: string; n: number }>(
    db,
    `select site, ce, ce_type, status, count(*) as n
       from pilots
      where status in ('Failed', 'Aborted') and last_update_at > $1::timestamptz and last_update_at <= $2::timestamptz
      group by site, ce, ce_type, status`,
    [since.toISOString(), until.toISOString()],
  );
  return {
    counts: ended.map((r) => ({ site: r.site, ce: r.ce, ceType: r.ce_type, state: r.status, count: r.n })),
    until: until > since ? until : since,
  };
}
