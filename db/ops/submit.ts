/** Submission: every job of a request stored, or none. */
import { WmsError } from '../../core/errors.js';
import type { JobDescription } from '../../core/job-model.js';
import { dbOf, type Db, type DbOrHandle } from '../open-db.js';
import { lockSandboxes, lockSandboxOwners } from '../queries/sandboxes.js';
import { allocateJobIds, insertJobs, insertJobSandboxes, type NewJob } from '../queries/submit.js';
import { lockGroups, taskQueueKey, updateSharePriorities, upsertTaskQueues, type GroupRef } from '../queries/task-queues.js';

/** `%j` (DIRAC's placeholder for the job id) replaced by `id`, as DIRAC's JobDB does at insertion. */
function withJobId(text: string, id: number): string {
  return text.replaceAll('%j', String(id));
}

export interface SubmitOptions {
  /** History source of the "Job accepted" row (default JobManager). */
  source?: string;
  /** Input sandboxes (sha256, recorded before) of each job, parallel to `jobs`. */
  inputSandboxes?: string[][];
  /**
   * Which input sandboxes a job may use: `owner` (default) only those its owner, the pair
   * (VO, user), uploaded; `any` every recorded one (an admin's submission).
   */
  sandboxAccess?: 'owner' | 'any';
}

function uploadHint(sha256: string): string {
  return ` (upload it first: PUT /api/sandboxes/${sha256})`;
}

/**
 * Checks, inside the submission's transaction, that each job may use its input sandboxes (see
 * `sandboxAccess`) and locks what it checked until commit. Throws WMS_SANDBOX_NOT_FOUND naming
 * the first sandbox that is missing or not the job owner's (another VO's user of the same name
 * owns nothing of it).
 */
async function checkInputSandboxes(
  tx: Db,
  jobs: readonly JobDescription[],
  sandboxes: readonly string[][],
  access: 'owner' | 'any',
): Promise<void> {
  const wanted = new Map<string, { sha256: string; vo: string; owner: string }>();
  sandboxes.forEach((list, i) => {
    const { vo, owner } = jobs[i]!.requirements;
    for (const sha256 of list) wanted.set(`${sha256} ${vo} ${owner}`, { sha256, vo, owner });
  });
  if (wanted.size === 0) return;
  const all = [...wanted.values()];
  if (access === 'any') {
    const found = await lockSandboxes(tx, [...new Set(all.map((w) => w.sha256))]);
    const missing = all.find((w) => !found.has(w.sha256));
    if (missing)
      throw new WmsError('WMS_SANDBOX_NOT_FOUND', `InputSandbox entry SB:${missing.sha256}: no such sandbox${uploadHint(missing.sha256)}`);
    return;
  }
  const found = await lockSandboxOwners(
    tx,
    all.map((w) => w.sha256),
    all.map((w) => w.vo),
    all.map((w) => w.owner),
  );
  const missing = [...wanted].find(([key]) => !found.has(key))?.[1];
  if (missing) {
    throw new WmsError(
      'WMS_SANDBOX_NOT_FOUND',
      `InputSandbox entry SB:${missing.sha256}: no such sandbox of ${missing.owner} (VO ${missing.vo})${uploadHint(missing.sha256)}`,
    );
  }
}

/**
 * Stores validated jobs in ONE transaction and answers their ids in input order:
 * 1. ids allocated in one round trip; `%j` in each JDL, job name and job group replaced by the
 *    job's id (DIRAC replaces it in the JDL before it reads the name from it, so the name shown
 *    by status and listings carries the id too);
 * 2. the groups of the jobs locked (see db/queries/task-queues.ts), each distinct requirement
 *    set filed into its task queue (created when new), one statement;
 * 3. all jobs inserted as Waiting with their two history rows, one statement (arrays through
 *    `unnest`: 100,000 jobs per call are fine); `bulk_id` = the first id when more than one job;
 * 4. input sandboxes checked (each owned by its job's owner, the pair (VO, user), unless
 *    `sandboxAccess: 'any'`) and linked; the share priorities of the touched groups recomputed.
 * Measured on PostgreSQL 15 here (2 cores): see db/README.md.
 */
export async function submitJobs(db: DbOrHandle, jobs: readonly JobDescription[], opts: SubmitOptions = {}): Promise<number[]> {
  if (jobs.length === 0) return [];
  const sandboxes = opts.inputSandboxes;
  if (sandboxes !== undefined && sandboxes.length !== jobs.length) {
    throw new RangeError(`inputSandboxes has ${sandboxes.length} entries for ${jobs.length} jobs`);
  }
  const source = opts.source ?? 'JobManager';
  return dbOf(db).transaction(async (tx) => {
    if (sandboxes !== undefined) await checkInputSandboxes(tx, jobs, sandboxes, opts.sandboxAccess ?? 'owner');
    const ids = await allocateJobIds(tx, jobs.length);

    const groups = new Map<string, GroupRef>();
    for (const j of jobs) {
      const { vo, ownerGroup } = j.requirements;
      groups.set(JSON.stringify([vo, ownerGroup]), { vo, ownerGroup });
    }
    const touched = [...groups.values()];
    await lockGroups(tx, touched);
    const queues = await upsertTaskQueues(
      tx,
      jobs.map((j) => j.requirements),
    );

    const rows: NewJob[] = jobs.map((j, i) => {
      const id = ids[i]!;
      const r = j.requirements;
      return {
        id,
        owner: r.owner,
        ownerGroup: r.ownerGroup,
        vo: r.vo,
        jobName: withJobId(j.jobName, id),
        jobGroup: withJobId(j.jobGroup, id),
        jobType: j.jobType,
        site: j.site,
        priority: j.priority,
        cpuTime: j.cpuTime,
        taskQueueId: queues.get(taskQueueKey(r))!,
        parameterNumber: j.parametric?.number ?? null,
        jdl: withJobId(j.jdl, id),
      };
    });
    await insertJobs(tx, rows, jobs.length > 1 ? ids[0]! : null, source);

    if (sandboxes !== undefined) {
      const jobIds: number[] = [];
      const shas: string[] = [];
      sandboxes.forEach((list, i) => {
        for (const sha of new Set(list)) {
          jobIds.push(ids[i]!);
          shas.push(sha);
        }
      });
      await insertJobSandboxes(tx, jobIds, shas, 'Input');
    }

    await updateSharePriorities(tx, touched);
    return ids;
  });
}
