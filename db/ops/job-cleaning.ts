/**
 * Retention (DIRAC's JobCleaningAgent). Each step is bulk and
 * bounded by a limit, so one call never holds thousands of locks for long; what is left is
 * taken by the next tick. Rows held by someone else right now are skipped (`SKIP LOCKED`).
 *
 * 1. `removeDeletedJobs`: jobs Deleted (since `last_update_at`) before the cut-off are removed
 *    with their history, parameters, heartbeats, commands and sandbox links (cascading keys).
 * 2. `deleteExpiredJobs`: Done, Failed and Killed jobs last updated before the cut-off ->
 *    Deleted "Checking accounting" (DIRAC's minor status of a deletion; history row, source
 *    JobCleaningAgent). So a finished job is removed two retention periods after its end.
 * 3. `removeUnusedSandboxes`: archives no job links, neither created nor accessed since the
 *    cut-off, are removed from the database (with their owners); their sha256s are answered so
 *    the caller deletes the files (rows first, files after: no row ever points to a missing
 *    file; a failed file deletion leaves an orphan file, never a broken row).
 * 4. `purgeHeartbeats`: heartbeat rows older than the cut-off of jobs in a final state
 *    (Done, Completed, Failed, Killed, Deleted).
 */
import { MINOR } from '../../core/job-states.js';
import { dbOf, type DbOrHandle } from '../open-db.js';
import { setStatus } from '../queries/job-status.js';
import { rows } from '../queries/raw.js';

export const JOB_CLEANING_SOURCE = 'JobCleaningAgent';

/** Done, Failed, Killed jobs last updated before `before` -> Deleted; at most `limit`. One transaction. */
export async function deleteExpiredJobs(db: DbOrHandle, opts: { before: Date; limit: number; source?: string }): Promise<number[]> {
  return dbOf(db).transaction(async (tx) => {
    // jobs_status (status, id): the oldest ids first, which are mostly the oldest jobs.
    const r = await rows<{ id: number }>(
      tx,
      `select id from jobs
        where status in ('Done', 'Failed', 'Killed') and last_update_at < $1::timestamptz
        order by id
        limit $2::int
        for update skip locked`,
      [opts.before.toISOString(), opts.limit],
    );
    return setStatus(
      tx,
      r.map((x) => x.id),
      ['Done', 'Failed', 'Killed'],
      { status: 'Deleted', minorStatus: MINOR.checkingAccounting },
      opts.source ?? JOB_CLEANING_SOURCE,
    );
  });
}

/** Removes jobs Deleted before `before` with everything that cascades from them; at most `limit`. One statement. */
export async function removeDeletedJobs(db: DbOrHandle, opts: { before: Date; limit: number }): Promise<number[]> {
  const r = await rows<{ id: number }>(
    db,
    `delete from jobs
      where id in (select id from jobs
                    where status = 'Deleted' and last_update_at < $1::timestamptz
                    order by id
                    limit $2::int
                    for update skip locked)
     returning id`,
    [opts.before.toISOString(), opts.limit],
  );
  return r.map((x) => x.id).sort((a, b) => a - b);
}

/**
 * Removes sandboxes that no job links and that were neither created nor accessed since
 * `before` (their owners go with them); at most `limit`. Answers their sha256s: delete the
 * files. One statement; `job_sandboxes_sha` answers "no job links it".
 */
export async function removeUnusedSandboxes(db: DbOrHandle, opts: { before: Date; limit: number }): Promise<string[]> {
  const r = await rows<{ sha256: string }>(
    db,
    `delete from sandboxes
      where sha256 in (select s.sha256 from sandboxes s
                        where s.created_at < $1::timestamptz and s.last_access_at < $1::timestamptz
                          and not exists (select 1 from job_sandboxes js where js.sha256 = s.sha256)
                        limit $2::int
                        for update skip locked)
     returning sha256`,
    [opts.before.toISOString(), opts.limit],
  );
  return r.map((x) => x.sha256).sort();
}

/** Removes heartbeat rows older than `before` of jobs in a final state; at most `limit`; answers how many. */
export async function purgeHeartbeats(db: DbOrHandle, opts: { before: Date; limit: number }): Promise<number> {
  const r = await rows<{ n: number }>(
    db,
    `with gone as (
       delete from job_heartbeats
        where id in (select h.id from job_heartbeats h
                       join jobs j on j.id = h.job_id
                      where h.at < $1::timestamptz
                        and j.status in ('Done', 'Completed', 'Failed', 'Killed', 'Deleted')
                      order by h.id
                      limit $2::int)
       returning 1
     )
     select count(*) as n from gone`,
    [opts.before.toISOString(), opts.limit],
  );
  return r[0]?.n ?? 0;
}

export interface JobCleaningOptions {
  /** The agent's clock. */
  now: Date;
  retentionSeconds: number;
  /** Jobs marked Deleted per call, jobs removed per call, sandboxes removed per call. */
  batchSize: number;
  /** Heartbeat rows purged per call (default 100 x batchSize). */
  heartbeatBatchSize?: number;
  /** Remove unused sandboxes (only when the caller can delete their files). */
  sandboxes: boolean;
  source?: string;
}

export interface JobCleaningResult {
  /** Jobs removed from the database (they were Deleted for longer than the retention). */
  removed: number[];
  /** Jobs set Deleted. */
  deleted: number[];
  /** Sandboxes removed from the database: delete their files. */
  sandboxes: string[];
  heartbeats: number;
}

/** One round of the four steps, in the order: remove, delete, sandboxes, heartbeats. */
export async function cleanJobs(db: DbOrHandle, opts: JobCleaningOptions): Promise<JobCleaningResult> {
  const before = new Date(opts.now.getTime() - opts.retentionSeconds * 1000);
  const removed = await removeDeletedJobs(db, { before, limit: opts.batchSize });
  const deleted = await deleteExpiredJobs(db, { before, limit: opts.batchSize, ...(opts.source ? { source: opts.source } : {}) });
  const sandboxes = opts.sandboxes ? await removeUnusedSandboxes(db, { before, limit: opts.batchSize }) : [];
  const heartbeats = await purgeHeartbeats(db, { before, limit: opts.heartbeatBatchSize ?? opts.batchSize * 100 });
  return { removed, deleted, sandboxes, heartbeats };
}
