/**
 * Guarded status changes. Every update says which states it may leave
 * (`WHERE status = ANY($from)`, with `$from` from `sourcesOf()` in core/job-states.ts) and
 * appends one history row per changed job in the same statement. Bulk: ids as one array.
 */
import { isFinal, MINOR, type JobState } from '../../core/job-states.js';
import type { DbOrHandle } from '../open-db.js';
import { exec, rows } from './raw.js';

/**
 * Locks the jobs (`FOR UPDATE`, in id order so that two bulk actions never deadlock) and answers
 * their current status; missing ids and, with a scope, other owners' jobs (another name, or the
 * same name in another VO) are absent. Needs a transaction.
 */
export async function lockJobs(
  db: DbOrHandle,
  ids: readonly number[],
  scope: { owner?: string; vo?: string } = {},
): Promise<{ id: number; status: JobState }[]> {
  if (ids.length === 0) return [];
  const r = await rows<{ id: number; status: JobState }>(
    db,
    `select id, status from jobs
      where id = any($1::bigint[]) and ($2::text is null or owner = $2::text) and ($3::text is null or vo = $3::text)
      order by id
      for update`,
    [[...ids], scope.owner ?? null, scope.vo ?? null],
  );
  return r.map((x) => ({ id: x.id, status: x.status }));
}

export interface StatusChange {
  status: JobState;
  minorStatus: string;
  /** Kept as is when absent. */
  applicationStatus?: string;
}

/**
 * Moves the jobs among `ids` that are in one of `from` to `to`, appends their history rows
 * (`source`), and answers the ids changed. Entering a final state sets `end_exec_at` once.
 */
export async function setStatus(
  db: DbOrHandle,
  ids: readonly number[],
  from: readonly JobState[],
  to: StatusChange,
  source: string,
): Promise<number[]> {
  if (ids.length === 0) return [];
  const r = await rows<{ id: number }>(
    db,
    `with changed as (
       update jobs
          set status = $3::job_status, minor_status = $4::text,
              application_status = coalesce($5::text, application_status),
              end_exec_at = case when $6::boolean then coalesce(end_exec_at, now()) else end_exec_at end,
              last_update_at = now()
        where id = any($1::bigint[]) and status = any($2::text[]::job_status[])
       returning id, application_status
     ),
     hist as (
       insert into job_history (job_id, status, minor_status, application_status, source)
       select id, $3::job_status, $4::text, application_status, $7::text from changed
     )
     select id from changed order by id`,
    [[...ids], [...from], to.status, to.minorStatus, to.applicationStatus ?? null, isFinal(to.status), source],
  );
  return r.map((x) => x.id);
}

/** Queues one command (status Received) per job. */
export async function insertJobCommands(db: DbOrHandle, ids: readonly number[], command: string, args = ''): Promise<void> {
  if (ids.length === 0) return;
  await exec(
    db,
    `insert into job_commands (job_id, command, arguments)
     select id, $2::text, $3::text from unnest($1::bigint[]) as id`,
    [[...ids], command, args],
  );
}

/**
 * Cancels the commands not yet delivered to these jobs (status Received -> Cancelled), so that
 * a stale Kill cannot stop the job's next life after a reschedule (DIRAC#5849).
 * Uses `job_commands_pending`.
 */
export async function cancelPendingCommands(db: DbOrHandle, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await exec(
    db,
    `update job_commands set status = 'Cancelled'
      where job_id = any($1::bigint[]) and status = 'Received'`,
    [[...ids]],
  );
}

/**
 * The reschedule itself (as DIRAC's JobDB does it): counter + 1; past `maxRescheduling` the
 * job goes to Failed "Maximum of reschedulings reached"; otherwise it goes back to Received
 * "Job Rescheduled" and, there being no optimizer chain, straight on to Waiting "Pilot Agent
 * Submission" in its task queue (history gets both rows), with pilot, execution times and
 * heartbeat cleared, application status Unknown, `rescheduled_at` set, and `site` back to what
 * the requirements say (ANY, the one site, or Multiple). Answers each changed job's outcome.
 */
export async function rescheduleStatement(
  db: DbOrHandle,
  ids: readonly number[],
  from: readonly JobState[],
  maxRescheduling: number,
  source: string,
): Promise<{ id: number; status: 'Waiting' | 'Failed' }[]> {
  if (ids.length === 0) return [];
  const r = await rows<{ id: number; status: 'Waiting' | 'Failed' }>(
    db,
    `with target as (
       select id, reschedule_counter + 1 as n from jobs
        where id = any($1::bigint[]) and status = any($2::text[]::job_status[])
     ),
     failed as (
       update jobs
          set status = 'Failed', minor_status = $5::text, reschedule_counter = t.n,
              end_exec_at = coalesce(end_exec_at, now()), last_update_at = now()
         from target t
        where jobs.id = t.id and t.n > $3::int
       returning jobs.id, jobs.application_status
     ),
     requeued as (
       update jobs
          set status = 'Waiting', minor_status = $7::text, application_status = 'Unknown',
              reschedule_counter = t.n, rescheduled_at = now(), pilot_id = null,
              start_exec_at = null, end_exec_at = null, heartbeat_at = null, last_update_at = now(),
              site = coalesce((select case cardinality(tq.sites) when 0 then 'ANY' when 1 then tq.sites[1] else 'Multiple' end
                                 from task_queues tq where tq.id = jobs.task_queue_id), 'ANY')
         from target t
        where jobs.id = t.id and t.n <= $3::int
       returning jobs.id
     ),
     hist as (
       insert into job_history (job_id, status, minor_status, application_status, source)
       select id, 'Failed'::job_status, $5::text, application_status, $4::text from failed
       union all
       select id, 'Received'::job_status, $6::text, 'Unknown', $4::text from requeued
       union all
       select id, 'Waiting'::job_status, $7::text, 'Unknown', 'JobScheduling' from requeued
     )
     select id, 'Failed'::job_status as status from failed
     union all
     select id, 'Waiting'::job_status as status from requeued`,
    [[...ids], [...from], maxRescheduling, source, MINOR.maxReschedulings, MINOR.jobRescheduled, MINOR.pilotAgentSubmission],
  );
  return r.map((x) => ({ id: x.id, status: x.status })).sort((a, b) => a.id - b.id);
}

/** Removes the parameters reported by the jobs' previous run (DIRAC moves them to its attic). */
export async function deleteJobParameters(db: DbOrHandle, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await exec(db, `delete from job_parameters where job_id = any($1::bigint[])`, [[...ids]]);
}

/** The (vo, owner group) of the task queues of these jobs, for share recomputation. */
export async function groupsOfJobs(db: DbOrHandle, ids: readonly number[]): Promise<{ vo: string; ownerGroup: string }[]> {
  if (ids.length === 0) return [];
  const r = await rows<{ vo: string; owner_group: string }>(
    db,
    `select distinct vo, owner_group from jobs where id = any($1::bigint[]) order by vo, owner_group`,
    [[...ids]],
  );
  return r.map((x) => ({ vo: x.vo, ownerGroup: x.owner_group }));
}
