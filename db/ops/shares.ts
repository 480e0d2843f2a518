/**
 * Fair-share maintenance (formula and locking rules in db/queries/task-queues.ts).
 */
import { dbOf, type DbOrHandle } from '../open-db.js';
import { listTaskQueueGroups, lockGroups, updateSharePriorities, upsertGroupShare, type GroupRef } from '../queries/task-queues.js';

/**
 * Recomputes the share priorities of the task queues of `groups`, or of every group when
 * absent (the periodic pass, DIRAC's TaskQueuesAgent: run it every couple of minutes so that
 * drained queues stop diluting their owners' shares). One transaction, groups locked.
 */
export async function recomputeSharePriorities(db: DbOrHandle, groups?: readonly GroupRef[]): Promise<void> {
  await dbOf(db).transaction(async (tx) => {
    const targets = groups ?? (await listTaskQueueGroups(tx));
    await lockGroups(tx, targets);
    await updateSharePriorities(tx, groups ? targets : null);
  });
}

/** Sets a group's fair share (DIRAC's JobShare; default 1000) and recomputes that group. */
export async function setGroupShare(db: DbOrHandle, vo: string, ownerGroup: string, share: number): Promise<void> {
  if (!Number.isFinite(share) || share < 0) throw new RangeError(`a group share must be a finite number >= 0, got ${share}`);
  await dbOf(db).transaction(async (tx) => {
    await lockGroups(tx, [{ vo, ownerGroup }]);
    await upsertGroupShare(tx, vo, ownerGroup, share);
    await updateSharePriorities(tx, [{ vo, ownerGroup }]);
  });
}
