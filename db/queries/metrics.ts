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
import { num, rows } from './raw.js';

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
  const waiting = await rows<{ id: unknown; vo: string; owner_group: string; n: unknown }>(
    db,
    `select tq.id, tq.vo, tq.owner_group, w.n
       from (select task_queue_id, count(*) as n
               from jobs
              where status = 'Waiting' and task_queue_id is not null
              group by task_queue_id) w
       join task_queues tq on tq.id = w.task_queue_id
      order by tq.id`,
  );
  const running = await rows<{ site: string; n: unknown }>(
    db,
    `select site, count(*) as n from jobs where status = 'Running' group by site order by site`,
  );
  const pilots = await rows<{ site: string; ce: string; ce_type: string; status: string; n: unknown }>(
    db,
    `select site, ce, ce_type, status, count(*) as n
       from pilots
      group by site, ce, ce_type, status
      order by site, ce, ce_type, status`,
  );
  const failed = await rows<{ minor_status: string; n: unknown }>(
    db,
    `select minor_status, count(*) as n from jobs where status = 'Failed' group by minor_status order by minor_status`,
  );
  const byStatus = await rows<{ status: string; n: unknown }>(db, `select status, count(*) as n from jobs group by status`);
  const jobs = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
  for (const r of byStatus) jobs[r.status as JobState] = num(r.n);
  return {
    waitingJobs: waiting.map((r) => ({ taskQueue: num(r.id), vo: r.vo, ownerGroup: r.owner_group, count: num(r.n) })),
    runningJobs: running.map((r) => ({ site: r.site, count: num(r.n) })),
    pilots: pilots.map((r) => ({ site: r.site, ce: r.ce, ceType: r.ce_type, state: r.status, count: num(r.n) })),
    failedJobs: failed.map((r) => ({ minorStatus: r.minor_status, count: num(r.n) })),
    jobs,
  };
}
