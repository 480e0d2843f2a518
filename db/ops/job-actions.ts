/**
 * Bulk actions on jobs, answered per job (`{ succeeded, failed }`), each in one transaction:
 * the jobs are locked (FOR UPDATE, id order), the ones whose state allows the action are
 * changed by guarded updates (`status = ANY(sourcesOf(target))`), the others answered
 * WMS_JOB_STATE naming their state; unknown ids, and other owners' jobs when a scope is set
 * (`scope.owner` and `scope.vo`: the same name in another VO is another owner), are
 * WMS_JOB_NOT_FOUND.
 *
 * - kill: to Killed "Marked for termination"; a `Kill` command is queued for jobs a pilot holds
 *   (Matched, Running, Stalled, Completing) and delivered on its next heartbeat.
 * - reschedule (as DIRAC's JobDB does it): from any state but Deleted; counter + 1, past
 *   `maxRescheduling` to Failed "Maximum of reschedulings reached" (still a success: the action
 *   decided it), else Received "Job Rescheduled" then Waiting in its task queue. Pending
 *   commands are cancelled (DIRAC#5849: a stale Kill must not kill the job's next life) and the
 *   previous run's parameters removed (DIRAC moves them to an attic table).
 * - delete: to Deleted "Checking accounting"; a job that cannot go to Deleted directly but can
 *   be killed (Running, Matched, Stalled, Completing, Scouting, Staging) is killed first (both
 *   history rows). Completed and Deleted jobs cannot be deleted.
 */
import type { ErrorCode } from '../../core/errors.js';
import { MINOR, RESCHEDULABLE_STATES, sourcesOf, type JobState } from '../../core/job-states.js';
import { dbOf, type Db, type DbOrHandle } from '../open-db.js';
import type { JobScope } from '../queries/jobs.js';
import {
  cancelPendingCommands,
  deleteJobParameters,
  groupsOfJobs,
  insertJobCommands,
  lockJobs,
  rescheduleStatement,
  setStatus,
} from '../queries/job-status.js';
import { lockGroups, updateSharePriorities } from '../queries/task-queues.js';

export interface BulkResult {
  succeeded: number[];
  failed: { id: number; code: ErrorCode; message: string }[];
}

export interface ActionOptions {
  scope?: JobScope;
  /** History source, e.g. `JobManager:alice`. */
  source: string;
}

/** States in which a pilot holds the job: killing it needs a command to that pilot. */
const HELD_BY_PILOT: readonly JobState[] = ['Matched', 'Running', 'Stalled', 'Completing'];

type Verb = 'killed' | 'rescheduled' | 'deleted';

/** Runs `act` on the locked jobs and turns everything into a per-job answer, in input order. */
async function bulk(
  db: DbOrHandle,
  ids: readonly number[],
  scope: JobScope | undefined,
  verb: Verb,
  act: (tx: Db, locked: Map<number, JobState>) => Promise<Set<number>>,
): Promise<BulkResult> {
  const unique = [...new Set(ids)];
  const valid = unique.filter((id) => Number.isSafeInteger(id) && id > 0);
  const { locked, changed } = await dbOf(db).transaction(async (tx) => {
    const rows = await lockJobs(tx, valid, scope);
    const locked = new Map(rows.map((r) => [r.id, r.status]));
    return { locked, changed: await act(tx, locked) };
  });
  const result: BulkResult = { succeeded: [], failed: [] };
  for (const id of unique) {
    const status = locked.get(id);
    if (status === undefined) {
      result.failed.push({ id, code: 'WMS_JOB_NOT_FOUND', message: `job ${id} not found` });
    } else if (changed.has(id)) {
      result.succeeded.push(id);
    } else {
      result.failed.push({ id, code: 'WMS_JOB_STATE', message: `job ${id} is ${status}: it cannot be ${verb}` });
    }
  }
  return result;
}

function withStatus(locked: Map<number, JobState>, allowed: readonly JobState[]): number[] {
  return [...locked].filter(([, s]) => allowed.includes(s)).map(([id]) => id);
}

/** Kills jobs (in a transaction the caller holds); answers the ids killed. */
async function killLocked(tx: Db, locked: Map<number, JobState>, ids: readonly number[], source: string): Promise<number[]> {
  const killed = await setStatus(tx, ids, sourcesOf('Killed'), { status: 'Killed', minorStatus: MINOR.markedForTermination }, source);
  await insertJobCommands(
    tx,
    killed.filter((id) => HELD_BY_PILOT.includes(locked.get(id)!)),
    'Kill',
  );
  return killed;
}

export async function killJobs(db: DbOrHandle, ids: readonly number[], opts: ActionOptions): Promise<BulkResult> {
  return bulk(db, ids, opts.scope, 'killed', async (tx, locked) => {
    const killable = withStatus(locked, sourcesOf('Killed'));
    return new Set(await killLocked(tx, locked, killable, opts.source));
  });
}

/**
 * The reschedule on jobs already locked in `tx`, from `from` only: counter + 1 (past
 * `maxRescheduling` -> Failed), pending commands cancelled, previous parameters removed, and
 * the shares of the groups whose queues they went back to recomputed (those queues may have
 * been empty). Shared by `rescheduleJobs` and the stalled-jobs sweep.
 */
export async function rescheduleLocked(
  tx: Db,
  ids: readonly number[],
  from: readonly JobState[],
  maxRescheduling: number,
  source: string,
): Promise<{ id: number; status: 'Waiting' | 'Failed' }[]> {
  const outcomes = await rescheduleStatement(tx, ids, from, maxRescheduling, source);
  const requeued = outcomes.filter((o) => o.status === 'Waiting').map((o) => o.id);
  await cancelPendingCommands(tx, requeued);
  await deleteJobParameters(tx, requeued);
  const groups = await groupsOfJobs(tx, requeued);
  await lockGroups(tx, groups);
  await updateSharePriorities(tx, groups);
  return outcomes;
}

export async function rescheduleJobs(
  db: DbOrHandle,
  ids: readonly number[],
  opts: ActionOptions & { maxRescheduling: number },
): Promise<BulkResult> {
  return bulk(db, ids, opts.scope, 'rescheduled', async (tx, locked) => {
    const eligible = withStatus(locked, RESCHEDULABLE_STATES);
    const outcomes = await rescheduleLocked(tx, eligible, RESCHEDULABLE_STATES, opts.maxRescheduling, opts.source);
    return new Set(outcomes.map((o) => o.id));
  });
}

export async function deleteJobs(db: DbOrHandle, ids: readonly number[], opts: ActionOptions): Promise<BulkResult> {
  return bulk(db, ids, opts.scope, 'deleted', async (tx, locked) => {
    const direct = withStatus(locked, sourcesOf('Deleted'));
    const directSet = new Set(direct);
    const killFirst = withStatus(locked, sourcesOf('Killed')).filter((id) => !directSet.has(id));
    const killed = await killLocked(tx, locked, killFirst, opts.source);
    const deleted = await setStatus(
      tx,
      [...direct, ...killed],
      sourcesOf('Deleted'),
      { status: 'Deleted', minorStatus: MINOR.checkingAccounting },
      opts.source,
    );
    return new Set(deleted);
  });
}
