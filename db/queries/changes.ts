/**
 * The change feed behind the services' event stream (`GET /api/events`): what changed in jobs,
 * pilots and sites since a cursor, read from the database so that changes made by any service
 * replica or agent process are seen. No schema of its own.
 *
 * - Jobs: `job_history` is append-only with a serial id; rows after an id cursor, by the
 *   primary key. Serial ids are handed out before commit, so a row may become visible after a
 *   bigger id was read (a slow transaction): the reader tracks such gaps and asks for them again
 *   (`jobHistoryByIds`) for a few seconds.
 * - Pilots: `last_update_at` (set to `now()`, the transaction's start) after a time cursor. Many
 *   rows share a timestamp and a late commit can carry an older one, so the reader re-reads a
 *   look-back window and drops what it has already seen (by id and timestamp).
 * - Sites: bans of sites and CEs and pauses of queues. `pauseQueue` does not touch
 *   `updated_at` and a pause also ends by time, so the whole (small) state is read and compared.
 */
import { rows } from './raw.js';
import type { DbOrHandle } from '../open-db.js';
import type { JobState } from '../../core/job-states.js';

/** One row of `job_history` with the job's owner and VO (for scoping) and current site. */
export interface JobHistoryChange {
  /** The history row id (the cursor). */
  historyId: number;
  jobId: number;
  owner: string;
  /** The job's VO: the owner is the pair (VO, owner). */
  vo: string;
  status: JobState;
  minorStatus: string;
  applicationStatus: string;
  site: string;
  at: Date;
}

/** The columns of a `JobHistoryChange` (history row `h`, job `j`), each named as its field. */
const HISTORY_COLUMNS = `h.id as "historyId", h.job_id as "jobId", j.owner, j.vo, h.status::text as status,
  h.minor_status as "minorStatus", h.application_status as "applicationStatus", j.site, h.at`;

/** The newest `job_history` id (0 when empty): where a new reader starts. */
export async function latestJobHistoryId(db: DbOrHandle): Promise<number> {
  const [r] = await rows<{ id: number }>(db, `select coalesce(max(id), 0) as id from job_history`);
  return r?.id ?? 0;
}

/**
 * History rows after `afterId`, oldest first, at most `limit` (primary-key range scan). Rows of
 * jobs already removed are not returned (the join drops them).
 */
export async function jobHistorySince(db: DbOrHandle, afterId: number, limit: number): Promise<JobHistoryChange[]> {
  return rows<JobHistoryChange>(
    db,
    `select ${HISTORY_COLUMNS} from job_history h join jobs j on j.id = h.job_id
      where h.id > $1::bigint order by h.id limit $2::int`,
    [afterId, limit],
  );
}

/** History rows by id (the gaps a reader saw), oldest first. */
export async function jobHistoryByIds(db: DbOrHandle, ids: readonly number[]): Promise<JobHistoryChange[]> {
  if (ids.length === 0) return [];
  return rows<JobHistoryChange>(
    db,
    `select ${HISTORY_COLUMNS} from job_history h join jobs j on j.id = h.job_id
      where h.id = any($1::bigint[]) order by h.id`,
    [[...ids]],
  );
}

/** The current state of a job and the id of its newest history row (events after it are new). */
export type JobStateNow = JobHistoryChange;

/**
 * The current state of jobs (one statement, so state and history id agree), in id order.
 * `scope` restricts to one owner's jobs (`owner` and `vo`: the same name in another VO is
 * another owner); others are absent, as missing ids are. Uses the primary key and
 * `job_history_job (job_id, id)`.
 */
export async function currentJobStates(
  db: DbOrHandle,
  ids: readonly number[],
  scope: { owner?: string; vo?: string } = {},
): Promise<JobStateNow[]> {
  if (ids.length === 0) return [];
  return rows<JobStateNow>(
    db,
    `select coalesce((select max(h.id) from job_history h where h.job_id = j.id), 0) as "historyId", j.id as "jobId",
            j.owner, j.vo, j.status::text as status, j.minor_status as "minorStatus",
            j.application_status as "applicationStatus", j.site, j.last_update_at as at
       from jobs j
      where j.id = any($1::bigint[]) and ($2::text is null or j.owner = $2::text) and ($3::text is null or j.vo = $3::text)
      order by j.id`,
    [[...ids], scope.owner ?? null, scope.vo ?? null],
  );
}

/** A pilot as the event stream shows it. */
export interface PilotChange {
  id: number;
  status: string;
  statusReason: string;
  site: string;
  ce: string;
  at: Date;
  /** `last_update_at` at full precision, as text (with `id`, the key of one change). */
  stamp: string;
}

/** The database clock (pilot cursors are in its time, not the service's). */
export async function databaseNow(db: DbOrHandle): Promise<Date> {
  const [r] = await rows<{ now: Date }>(db, `select now() as now`);
  return r!.now;
}

/**
 * Pilots updated at or after `since` minus `lookbackMs`, by update time then id, at most
 * `limit` (index `pilots_status_updated` does not lead with the time: a sequential scan of the
 * pilots table, fine at the scale of pilots alive).
 */
export async function pilotsChangedSince(db: DbOrHandle, since: Date, lookbackMs: number, limit: number): Promise<PilotChange[]> {
  return rows<PilotChange>(
    db,
    `select id, status, status_reason as "statusReason", site, ce, last_update_at as at, last_update_at::text as stamp
       from pilots
      where last_update_at >= $1::timestamptz - make_interval(secs => $2::double precision / 1000)
      order by last_update_at, id limit $3::int`,
    [since.toISOString(), lookbackMs, limit],
  );
}

/** The ban and pause state of one site, CE or queue. */
export interface SiteState {
  kind: 'site' | 'ce' | 'queue';
  site: string;
  ce: string | null;
  queue: string | null;
  banned: boolean;
  reason: string | null;
  /** Queues: paused now (a pause ends by itself at `pausedUntil`). */
  paused: boolean;
  pausedUntil: Date | null;
}

/**
 * Every site, CE and queue with its ban or pause (registries are small: read whole). A queue's
 * reason stays in its row after its pause ends: it is shown while paused only.
 */
export async function siteStates(db: DbOrHandle): Promise<SiteState[]> {
  return rows<SiteState>(
    db,
    `select 'site' as kind, s.name as site, null::text as ce, null::text as queue, s.banned, s.ban_reason as reason,
            false as paused, null::timestamptz as "pausedUntil" from sites s
     union all
     select 'ce', c.site, c.name, null, c.banned, c.ban_reason, false, null from computing_elements c
     union all
     select 'queue', c.site, c.name, q.name, false, case when p.paused then q.pause_reason end,
            p.paused, case when p.paused then q.paused_until end
       from ce_queues q join computing_elements c on c.id = q.ce_id
            cross join lateral (select coalesce(q.paused_until > now(), false) as paused) p
     order by 1, 2, 3, 4`,
  );
}
