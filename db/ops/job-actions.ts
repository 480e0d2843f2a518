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
 *
 * `bulkAction` is what the API runs: the jobs by ids (one transaction, as above) or every job of
 * a filter (in batches of BULK_BATCH ids, one transaction each, walked in id order up to the
 * last id the caller counted, so jobs submitted meanwhile are left alone); a job already where
 * the action leads (SKIPPED_STATES) is counted, not failed; a dry run reads and changes nothing.
 */
import type { ErrorCode } from '../../core/errors.js';
import { isFinal, JOB_STATES, MINOR, RESCHEDULABLE_STATES, sourcesOf, type JobState } from '../../core/job-states.js';
import { dbOf, type Db, type DbOrHandle } from '../open-db.js';
import { jobStates, type JobFilter, type JobScope } from '../queries/jobs.js';
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

/** Kills the killable jobs among `locked`; answers those killed. */
async function killAccepted(tx: Db, locked: Map<number, JobState>, source: string): Promise<number[]> {
  return killLocked(tx, locked, withStatus(locked, sourcesOf('Killed')), source);
}

export async function killJobs(db: DbOrHandle, ids: readonly number[], opts: ActionOptions): Promise<BulkResult> {
  return bulk(db, ids, opts.scope, 'killed', async (tx, locked) => new Set(await killAccepted(tx, locked, opts.source)));
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

/** Reschedules the reschedulable jobs among `locked`; answers those rescheduled (or failed past the maximum). */
async function rescheduleAccepted(tx: Db, locked: Map<number, JobState>, source: string, maxRescheduling: number): Promise<number[]> {
  const eligible = withStatus(locked, RESCHEDULABLE_STATES);
  const outcomes = await rescheduleLocked(tx, eligible, RESCHEDULABLE_STATES, maxRescheduling, source);
  return outcomes.map((o) => o.id);
}

export async function rescheduleJobs(
  db: DbOrHandle,
  ids: readonly number[],
  opts: ActionOptions & { maxRescheduling: number },
): Promise<BulkResult> {
  return bulk(
    db,
    ids,
    opts.scope,
    'rescheduled',
    async (tx, locked) => new Set(await rescheduleAccepted(tx, locked, opts.source, opts.maxRescheduling)),
  );
}

/** Deletes the deletable jobs among `locked` (killing first those that cannot go to Deleted directly); answers those deleted. */
async function deleteAccepted(tx: Db, locked: Map<number, JobState>, source: string): Promise<number[]> {
  const direct = withStatus(locked, sourcesOf('Deleted'));
  const directSet = new Set(direct);
  const killFirst = withStatus(locked, sourcesOf('Killed')).filter((id) => !directSet.has(id));
  const killed = await killLocked(tx, locked, killFirst, source);
  return setStatus(tx, [...direct, ...killed], sourcesOf('Deleted'), { status: 'Deleted', minorStatus: MINOR.checkingAccounting }, source);
}

export async function deleteJobs(db: DbOrHandle, ids: readonly number[], opts: ActionOptions): Promise<BulkResult> {
  return bulk(db, ids, opts.scope, 'deleted', async (tx, locked) => new Set(await deleteAccepted(tx, locked, opts.source)));
}

// ---------------------------------------------------------------------------------------------
// The API's bulk actions: by ids or by filter, skipped jobs counted, dry runs

export type BulkAction = 'kill' | 'reschedule' | 'delete';

/** The states each action changes a job from. */
const ACCEPTED_STATES: Record<BulkAction, readonly JobState[]> = {
  kill: sourcesOf('Killed'),
  reschedule: RESCHEDULABLE_STATES,
  delete: JOB_STATES.filter((s) => sourcesOf('Deleted').includes(s) || sourcesOf('Killed').includes(s)),
};

/**
 * The states in which a job is already where the action leads: kill, final (Done, Completed,
 * Failed, Killed, Deleted); reschedule and delete, Deleted. Such jobs are counted as skipped,
 * not failed. Any other state the action does not accept (delete: Completed) fails WMS_JOB_STATE.
 */
export const SKIPPED_STATES: Readonly<Record<BulkAction, readonly JobState[]>> = {
  kill: JOB_STATES.filter(isFinal),
  reschedule: ['Deleted'],
  delete: ['Deleted'],
};

const VERBS: Record<BulkAction, Verb> = { kill: 'killed', reschedule: 'rescheduled', delete: 'deleted' };

/** Ids per transaction when a filter selects the jobs. */
export const BULK_BATCH = 1000;

/** The jobs a bulk action takes: these ids, or every job of the filter up to `upTo` (the last id counted). */
export type BulkSelection = { ids: readonly number[] } | { filter: JobFilter; upTo: number };

export interface BulkActionOptions extends ActionOptions {
  maxRescheduling: number;
  /** Read only: answer what would change. */
  dryRun: boolean;
  /** At most this many ids are listed in `succeeded` and in `failed` (the counts stay whole). */
  listed?: number;
  /** Told the ids each transaction changed, once it committed. */
  onChanged?(ids: number[]): void;
}

export interface BulkOutcome extends BulkResult {
  /** Jobs changed (dry run: that would change), listed in `succeeded` or not. */
  succeededCount: number;
  /** Jobs already where the action leads, by state (every state). */
  skippedByStatus: Record<JobState, number>;
  /** Jobs selected that are in scope. */
  matched: number;
}

/** Changes the accepted jobs among `locked` in `tx`; answers those changed. */
function applyAction(tx: Db, action: BulkAction, locked: Map<number, JobState>, opts: BulkActionOptions): Promise<number[]> {
  if (action === 'kill') return killAccepted(tx, locked, opts.source);
  if (action === 'reschedule') return rescheduleAccepted(tx, locked, opts.source, opts.maxRescheduling);
  return deleteAccepted(tx, locked, opts.source);
}

/** The answer being built, batch after batch. */
class Tally {
  readonly outcome: BulkOutcome = {
    succeeded: [],
    failed: [],
    succeededCount: 0,
    skippedByStatus: Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>,
    matched: 0,
  };
  /** Jobs refused for their state: `failed` entries, in id order. */
  readonly refused = new Map<number, JobState>();

  constructor(
    private readonly action: BulkAction,
    private readonly listed: number,
  ) {}

  /** Counts one batch: `seen` (id -> state) in scope, `changed` those changed (or that would be). */
  add(seen: Map<number, JobState>, changed: readonly number[]): void {
    const done = new Set(changed);
    this.outcome.matched += seen.size;
    this.outcome.succeededCount += done.size;
    for (const id of changed) if (this.outcome.succeeded.length < this.listed) this.outcome.succeeded.push(id);
    for (const [id, status] of seen) {
      if (done.has(id)) continue;
      if (SKIPPED_STATES[this.action].includes(status)) this.outcome.skippedByStatus[status] += 1;
      else if (this.refused.size < this.listed) this.refused.set(id, status);
    }
  }

  /** The answer: `failed` lists `notFound` (in their order), then the refused jobs. */
  result(notFound: readonly number[] = []): BulkOutcome {
    const verb = VERBS[this.action];
    const failed = [
      ...notFound.map((id) => ({ id, code: 'WMS_JOB_NOT_FOUND' as const, message: `job ${id} not found` })),
      ...[...this.refused].map(([id, status]) => ({
        id,
        code: 'WMS_JOB_STATE' as const,
        message: `job ${id} is ${status}: it cannot be ${verb}`,
      })),
    ];
    return { ...this.outcome, failed };
  }
}

/** What the action would change among `rows` (a dry run). */
function foresee(
  action: BulkAction,
  rows: readonly { id: number; status: JobState }[],
): { seen: Map<number, JobState>; changed: number[] } {
  const seen = new Map(rows.map((r) => [r.id, r.status]));
  return { seen, changed: withStatus(seen, ACCEPTED_STATES[action]) };
}

/** One transaction: the selected jobs locked (and read again under the lock), the action applied. */
async function applyBatch(
  db: DbOrHandle,
  action: BulkAction,
  filter: JobFilter,
  range: { ids?: readonly number[]; after?: number; upTo?: number },
  opts: BulkActionOptions,
): Promise<{ seen: Map<number, JobState>; changed: number[] }> {
  const batch = await dbOf(db).transaction(async (tx) => {
    const seen = new Map((await jobStates(tx, filter, opts.scope, { ...range, lock: true })).map((r) => [r.id, r.status]));
    return { seen, changed: await applyAction(tx, action, seen, opts) };
  });
  if (batch.changed.length > 0) opts.onChanged?.(batch.changed);
  return batch;
}

/**
 * Runs `action` on the selection and answers per job: by ids, in one transaction, each id
 * answered (unknown or out of scope: WMS_JOB_NOT_FOUND, in the order given); by filter, in
 * transactions of BULK_BATCH jobs walked in id order up to `selection.upTo` (rows read again
 * under their lock: a job that no longer matches is left alone). A dry run only reads.
 */
export async function bulkAction(
  db: DbOrHandle,
  action: BulkAction,
  selection: BulkSelection,
  opts: BulkActionOptions,
): Promise<BulkOutcome> {
  const tally = new Tally(action, opts.listed ?? Infinity);
  if ('ids' in selection) {
    const ids = [...new Set(selection.ids)];
    const batch = opts.dryRun
      ? foresee(action, await jobStates(db, {}, opts.scope, { ids }))
      : await applyBatch(db, action, {}, { ids }, opts);
    tally.add(batch.seen, batch.changed);
    return tally.result(ids.filter((id) => !batch.seen.has(id)));
  }
  let after = 0;
  for (;;) {
    const page = await jobStates(db, selection.filter, opts.scope, { after, upTo: selection.upTo, limit: BULK_BATCH });
    const last = page.at(-1);
    if (last === undefined) break;
    const batch = opts.dryRun ? foresee(action, page) : await applyBatch(db, action, selection.filter, { after, upTo: last.id }, opts);
    tally.add(batch.seen, batch.changed);
    if (page.length < BULK_BATCH) break;
    after = last.id;
  }
  return tally.result();
}
