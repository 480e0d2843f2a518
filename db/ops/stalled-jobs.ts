/**
 * The stalled-jobs sweep (DIRAC's StalledJobAgent), in four steps run in this order, each in
 * batches of `batchSize` jobs, each batch one transaction whose jobs are taken with
 * `FOR UPDATE SKIP LOCKED` in id order (a job a heartbeat or a user action holds right now is
 * left for the next tick; the order never deadlocks with the bulk actions, which lock in id
 * order too). Every selection walks `jobs_status (status, id)`.
 *
 * (a) Matched / Running / Completing jobs whose last sign of life, `coalesce(heartbeat_at,
 *     start_exec_at, last_update_at)`, is older than `stalledAfterSeconds` and whose pilot is
 *     alive (Matched) -> Stalled. Matched counts because a pilot starts the payload as soon as
 *     its match is answered and its reports (Running first) may travel behind, for as long as
 *     the services are away: its heartbeats are the sign of life (they keep a Matched job's
 *     `heartbeat_at`, db/ops/job-reports.ts), and a job whose pilot is alive is never handed to
 *     another one (that would run it twice). A Matched job whose pilot is gone is (d)'s. The job's minor status is
 *     KEPT (as DIRAC does: it tells what the job was doing when it went silent, and a heartbeat
 *     that revives the job to Running leaves it correct); the history row's minor status says why:
 *     "Job stalled: no heartbeat for <n> s" (n = the silence, in seconds).
 * (b) Stalled jobs whose pilot is gone (its row is in a final state: Done, Failed, Aborted,
 *     Deleted; or missing; or the job has no pilot) -> rescheduled at once through the reschedule
 *     statement of the bulk actions (counter + 1; past `maxRescheduling` -> Failed "Maximum of
 *     reschedulings reached"), pending commands cancelled, previous parameters removed, shares
 *     of the groups recomputed. A history row "Stalled / Job stalled: pilot not running" (DIRAC's
 *     words; source StalledJobAgent) comes first and says why. No Kill command: nothing is left
 *     to receive it, the reschedule would cancel it anyway (DIRAC#5849), and a payload that is
 *     somehow still alive is stopped by its next heartbeat, which finds the job no longer its own.
 * (c) Stalled jobs whose pilot is still alive and that have been Stalled (`last_update_at`, set
 *     on entering Stalled; any sign of life revives the job) for longer than
 *     `failedAfterSeconds` -> Failed "Stalling for more than <failedAfterSeconds> sec", with a
 *     Kill command queued for the pilot (DIRAC's order: kill, then fail).
 * (d) Matched jobs not started for `matchedTimeoutSeconds` (since the match, `last_update_at`)
 *     whose pilot is gone (final, missing, or none) -> Rescheduled "Matched for more than <n> s
 *     without starting" (the state table allows Matched -> Rescheduled), then rescheduled as in
 *     (b). Only when the pilot is gone: a live pilot may be running the payload with its
 *     reports still on their way, and a silent one is (a)'s.
 *
 * Thresholds are measured against the caller's `now` (the agent's injected clock); the
 * timestamps were written by the database's clock.
 */
import type { JobState } from '../../core/job-states.js';
import { PILOT_FINAL_STATES } from '../../core/pilot-states.js';
import { dbOf, type Db, type DbOrHandle } from '../open-db.js';
import { insertJobCommands, setStatus } from '../queries/job-status.js';
import { rows } from '../queries/raw.js';
import { rescheduleLocked } from './job-actions.js';

/** History source of every change the sweep makes. */
export const STALLED_JOBS_SOURCE = 'StalledJobAgent';

/** Minor statuses written by the sweep. */
export const STALLED_MINOR = {
  /** (a), history row only; n = seconds of silence. */
  noHeartbeat: (n: number) => `Job stalled: no heartbeat for ${n} s`,
  /** (b), history row before the reschedule. */
  pilotNotRunning: 'Job stalled: pilot not running',
  /** (c) */
  stallingTooLong: (n: number) => `Stalling for more than ${n} sec`,
  /** (d) */
  matchedTooLong: (n: number) => `Matched for more than ${n} s without starting`,
} as const;

export interface StalledJobsOptions {
  /** The agent's clock. */
  now: Date;
  stalledAfterSeconds: number;
  failedAfterSeconds: number;
  matchedTimeoutSeconds: number;
  maxRescheduling: number;
  /** Jobs per transaction (default 1000); every eligible job is handled, batch after batch. */
  batchSize?: number;
  /** History source (default "StalledJobAgent"). */
  source?: string;
}

export interface RescheduleOutcome {
  id: number;
  /** Waiting: back in its task queue; Failed: past maxRescheduling. */
  status: 'Waiting' | 'Failed';
}

export interface StalledJobsResult {
  /** (a) moved to Stalled. */
  stalled: number[];
  /** (b) Stalled with their pilot gone, rescheduled. */
  pilotGone: RescheduleOutcome[];
  /** (c) Stalled too long with a live pilot: Failed, Kill queued. */
  failed: number[];
  /** (d) Matched but never started: rescheduled. */
  matchedTimeout: RescheduleOutcome[];
}

const DEFAULT_BATCH = 1000;

function cutoff(now: Date, seconds: number): string {
  return new Date(now.getTime() - seconds * 1000).toISOString();
}

/** Runs `batch` until it handles fewer than `size` jobs (or none changed); answers them all. */
async function drain<T>(size: number, batch: () => Promise<{ taken: number; done: T[] }>): Promise<T[]> {
  const all: T[] = [];
  for (;;) {
    const { taken, done } = await batch();
    all.push(...done);
    if (taken < size || done.length === 0) return all;
  }
}

/**
 * (a) One batch: Matched (with a live pilot) / Running / Completing jobs silent since before `now - stalledAfterSeconds` ->
 * Stalled, minor kept, history "Job stalled: no heartbeat for <n> s". One statement.
 */
export async function markStalledJobs(
  db: DbOrHandle,
  opts: { now: Date; stalledAfterSeconds: number; limit: number; source?: string },
): Promise<number[]> {
  const r = await rows<{ id: number }>(
    db,
    `with cand as (
       select j.id, coalesce(j.heartbeat_at, j.start_exec_at, j.last_update_at) as sign
         from jobs j
        where j.status in ('Matched', 'Running', 'Completing')
          and coalesce(j.heartbeat_at, j.start_exec_at, j.last_update_at) < $1::timestamptz
          and (j.status <> 'Matched'
               or exists (select 1 from pilots p where p.id = j.pilot_id and not (p.status = any($5::text[]::pilot_status[]))))
        order by j.id
        limit $2::int
        for update of j skip locked
     ),
     changed as (
       update jobs j set status = 'Stalled', last_update_at = now()
         from cand c
        where j.id = c.id
       returning j.id, j.application_status, c.sign
     ),
     hist as (
       insert into job_history (job_id, status, minor_status, application_status, source)
       select id, 'Stalled', 'Job stalled: no heartbeat for ' || floor(extract(epoch from ($3::timestamptz - sign)))::bigint || ' s',
              application_status, $4::text
         from changed
     )
     select id from changed order by id`,
    [
      cutoff(opts.now, opts.stalledAfterSeconds),
      opts.limit,
      opts.now.toISOString(),
      opts.source ?? STALLED_JOBS_SOURCE,
      [...PILOT_FINAL_STATES],
    ],
  );
  return r.map((x) => x.id);
}

/**
 * Locks (SKIP LOCKED, by id) up to `limit` jobs in `status`, last updated before `before` when
 * given, whose pilot is gone: none, no record, or in a final state. `jobs_status`, then the
 * pilots' primary key.
 */
async function lockJobsOfGonePilots(tx: Db, status: 'Stalled' | 'Matched', before: string | null, limit: number): Promise<number[]> {
  const r = await rows<{ id: number }>(
    tx,
    `select j.id from jobs j
       left join pilots p on p.id = j.pilot_id
      where j.status = $1::text::job_status
        and ($2::timestamptz is null or j.last_update_at < $2::timestamptz)
        and (j.pilot_id is null or p.id is null or p.status = any($3::text[]::pilot_status[]))
      order by j.id
      limit $4::int
      for update of j skip locked`,
    [status, before, [...PILOT_FINAL_STATES], limit],
  );
  return r.map((x) => x.id);
}

/**
 * One batch, one transaction, of (b) or (d): the jobs of gone pilots locked, noted (`note`:
 * their status and minor status now, with a history row), then rescheduled.
 */
async function rescheduleJobsOfGone(
  db: DbOrHandle,
  opts: { status: 'Stalled' | 'Matched'; before: string | null; limit: number; maxRescheduling: number; source: string },
  note: { status: JobState; minorStatus: string },
): Promise<{ taken: number; done: RescheduleOutcome[] }> {
  return dbOf(db).transaction(async (tx) => {
    const ids = await lockJobsOfGonePilots(tx, opts.status, opts.before, opts.limit);
    const noted = await setStatus(tx, ids, [opts.status], note, opts.source);
    return { taken: ids.length, done: await rescheduleLocked(tx, noted, [note.status], opts.maxRescheduling, opts.source) };
  });
}

/** (b) One batch, one transaction: Stalled jobs whose pilot is gone -> rescheduled. */
export async function rescheduleJobsOfGonePilots(
  db: DbOrHandle,
  opts: { limit: number; maxRescheduling: number; source?: string },
): Promise<{ taken: number; done: RescheduleOutcome[] }> {
  return rescheduleJobsOfGone(
    db,
    { ...opts, status: 'Stalled', before: null, source: opts.source ?? STALLED_JOBS_SOURCE },
    { status: 'Stalled', minorStatus: STALLED_MINOR.pilotNotRunning },
  );
}

/**
 * (c) One batch, one transaction: Stalled since before `now - failedAfterSeconds` with a live
 * pilot -> Kill command queued, then Failed "Stalling for more than <n> sec".
 */
export async function failLongStalledJobs(
  db: DbOrHandle,
  opts: { now: Date; failedAfterSeconds: number; limit: number; source?: string },
): Promise<{ taken: number; done: number[] }> {
  const source = opts.source ?? STALLED_JOBS_SOURCE;
  return dbOf(db).transaction(async (tx) => {
    const r = await rows<{ id: number }>(
      tx,
      `select j.id from jobs j
        where j.status = 'Stalled' and j.last_update_at < $1::timestamptz
          and exists (select 1 from pilots p where p.id = j.pilot_id and not (p.status = any($2::text[]::pilot_status[])))
        order by j.id
        limit $3::int
        for update of j skip locked`,
      [cutoff(opts.now, opts.failedAfterSeconds), [...PILOT_FINAL_STATES], opts.limit],
    );
    const ids = r.map((x) => x.id);
    await insertJobCommands(tx, ids, 'Kill');
    const failed = await setStatus(
      tx,
      ids,
      ['Stalled'],
      { status: 'Failed', minorStatus: STALLED_MINOR.stallingTooLong(opts.failedAfterSeconds) },
      source,
    );
    return { taken: ids.length, done: failed };
  });
}

/**
 * (d) One batch, one transaction: Matched since before `now - matchedTimeoutSeconds` with the
 * pilot gone -> Rescheduled "Matched for more than <n> s without starting", then rescheduled.
 */
export async function rescheduleStuckMatchedJobs(
  db: DbOrHandle,
  opts: { now: Date; matchedTimeoutSeconds: number; limit: number; maxRescheduling: number; source?: string },
): Promise<{ taken: number; done: RescheduleOutcome[] }> {
  return rescheduleJobsOfGone(
    db,
    {
      status: 'Matched',
      before: cutoff(opts.now, opts.matchedTimeoutSeconds),
      limit: opts.limit,
      maxRescheduling: opts.maxRescheduling,
      source: opts.source ?? STALLED_JOBS_SOURCE,
    },
    { status: 'Rescheduled', minorStatus: STALLED_MINOR.matchedTooLong(opts.matchedTimeoutSeconds) },
  );
}

/** The whole sweep, (a) to (d), every eligible job in batches. */
export async function sweepStalledJobs(db: DbOrHandle, opts: StalledJobsOptions): Promise<StalledJobsResult> {
  const limit = opts.batchSize ?? DEFAULT_BATCH;
  const common = { limit, ...(opts.source ? { source: opts.source } : {}) };
  const stalled = await drain(limit, async () => {
    const done = await markStalledJobs(db, { ...common, now: opts.now, stalledAfterSeconds: opts.stalledAfterSeconds });
    return { taken: done.length, done };
  });
  const pilotGone = await drain(limit, () => rescheduleJobsOfGonePilots(db, { ...common, maxRescheduling: opts.maxRescheduling }));
  const failed = await drain(limit, () =>
    failLongStalledJobs(db, { ...common, now: opts.now, failedAfterSeconds: opts.failedAfterSeconds }),
  );
  const matchedTimeout = await drain(limit, () =>
    rescheduleStuckMatchedJobs(db, {
      ...common,
      now: opts.now,
      matchedTimeoutSeconds: opts.matchedTimeoutSeconds,
      maxRescheduling: opts.maxRescheduling,
    }),
  );
  return { stalled, pilotGone, failed, matchedTimeout };
}
