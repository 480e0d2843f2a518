/**
 * The matcher and its explanations.
 *
 * `matchJob` chooses the task queues and their order in this process and claims in one
 * statement (db/queries/match.ts `claimJobs`; the claims of concurrent matches go together,
 * ./claim-batches.ts): the oldest unlocked waiting job of the first queue in that order that has
 * one, set Matched, history appended, pilot linked. A job is never
 * matched twice, whatever the number of service replicas. A banned site or CE gets nothing. A
 * pilot's claim id makes the claim safe to retry: the same id answers the job it already took
 * (in any replica), never a second one.
 *
 * The queues come from a snapshot cached per handle and checked in every claim against the
 * task-queue generation (bumped in the transaction that creates a queue or changes a share), so
 * a new queue is seen by the very next match in every replica. Choosing in SQL meant scanning,
 * filtering and sorting every queue in every claim: 0.6 of the claim's 0.85 ms of PostgreSQL
 * time with the 500 queues of the `match` benchmark, on the 2 cores the server shares with it.
 *
 * `explainResource` and `explainJob` say why, with the same pure predicate of core/matching.ts
 * (`rejectionsFor`), which the tests keep in step with the SQL twin used by the site director;
 * `explainJob` adds what stops the site director from sending a queue pilots, with the rules the
 * director itself applies (core/queue-blockers.ts).
 */
import { WmsError } from '../../core/errors.js';
import { fairShareKeys, normalizeResource, orderByKeys, rejectionsFor, type ResourceDescription } from '../../core/matching.js';
import { isFinal, type JobState } from '../../core/job-states.js';
import { pilotTokenDeadMessage } from '../../core/pilot-protocol.js';
import { isPilotFinal } from '../../core/pilot-states.js';
import { banReason, queueBlockers, type ExplainReasonKind } from '../../core/queue-blockers.js';
import { dbOf, isHandle, type DbOrHandle } from '../open-db.js';
import { getJobs, type JobScope } from '../queries/jobs.js';
import { claimJob, type Claim, type MatchedJob } from '../queries/match.js';
import { claimInBatch } from './claim-batches.js';
import { pilotCountsByQueue } from '../queries/pilots.js';
import { getBans, listCeQueues, type CeQueueView } from '../queries/registry.js';
import { getTaskQueues, loadTaskQueueSnapshot, type TaskQueueRow } from '../queries/task-queues.js';

export type { MatchedJob };

type TaskQueue = Omit<TaskQueueRow, 'waitingJobs'>;

/** The queues at one generation, and per resource description the ones it may take from. */
interface Snapshot {
  generation: number;
  queues: TaskQueue[];
  eligible: Map<string, { ids: number[]; weights: number[] }>;
}

/** Distinct resource descriptions remembered per snapshot before the memo starts afresh. */
const ELIGIBLE_MEMO_SIZE = 1000;
/**
 * Queues offered to the first claim: the front of the draw. Most claims end in the first queue;
 * sending (and sorting) all 500 queues of the `match` benchmark in every claim cost ~11 % of the
 * server's time. Only when these yield nothing does a second claim walk the whole order.
 */
const FIRST_CANDIDATES = 8;
/** Claims retried with a reloaded snapshot when the queues changed meanwhile. */
const STALE_RETRIES = 3;

const snapshots = new WeakMap<object, Snapshot>();

async function loadSnapshot(db: DbOrHandle): Promise<Snapshot> {
  const { generation, queues } = await loadTaskQueueSnapshot(db);
  return { generation, queues, eligible: new Map() };
}

function eligibleQueues(snapshot: Snapshot, r: ResourceDescription): { ids: number[]; weights: number[] } {
  const key = JSON.stringify(r);
  let found = snapshot.eligible.get(key);
  if (!found) {
    const fit = snapshot.queues.filter((tq) => rejectionsFor(tq, r).length === 0);
    found = { ids: fit.map((tq) => tq.id), weights: fit.map((tq) => tq.sharePriority) };
    if (snapshot.eligible.size >= ELIGIBLE_MEMO_SIZE) snapshot.eligible.clear();
    snapshot.eligible.set(key, found);
  }
  return found;
}

export interface MatchOptions {
  pilotId?: number;
  /** History source, default "Matcher". */
  source?: string;
  /** Uniform [0, 1) source for the fair-share draw (tests pass a seeded one). */
  random?: () => number;
  /**
   * A pilot token's match: pilot `pilotId` must have a record that is not final, checked inside
   * the claim statement (no extra round trip); otherwise WMS_FORBIDDEN and nothing is claimed.
   */
  livePilot?: boolean;
  /**
   * The pilot's id of this match attempt (with `pilotId`): a retried attempt whose first answer
   * was lost gets the job it already claimed again, never a second one (db/queries/match.ts).
   */
  claimId?: string;
}

/**
 * Hands one waiting job that fits `resource` to the pilot, or answers null (nothing fits,
 * everything fitting is being claimed by others, or the site or CE is banned). One claim
 * statement; a second (and rarely more) only when the task queues changed since this process
 * last read them.
 */
export async function matchJob(db: DbOrHandle, resource: ResourceDescription, options: MatchOptions = {}): Promise<MatchedJob | null> {
  const r = normalizeResource(resource);
  const random = options.random ?? Math.random;
  // A transaction has no lasting identity to cache on: it reads the queues afresh.
  const cacheKey = isHandle(db) ? db : null;
  let snapshot = cacheKey ? snapshots.get(cacheKey) : undefined;
  for (let attempt = 0; attempt <= STALE_RETRIES; attempt++) {
    if (!snapshot) {
      snapshot = await loadSnapshot(db);
      if (cacheKey) snapshots.set(cacheKey, snapshot);
    }
    const current = snapshot;
    const { ids, weights } = eligibleQueues(current, r);
    const keys = fairShareKeys(weights, random);
    const claim = (taskQueueIds: number[]) => {
      const c: Claim = {
        site: r.site,
        ce: r.ce ?? null,
        taskQueueIds,
        generation: current.generation,
        pilotId: options.pilotId ?? null,
        source: options.source ?? 'Matcher',
        livePilot: options.livePilot === true,
        claimId: options.claimId ?? null,
      };
      // Inside a caller's transaction the claim is its own; on a handle it may share a statement.
      return isHandle(db) ? claimInBatch(db, c) : claimJob(db, c);
    };
    let claimed = await claim(orderByKeys(ids, keys, FIRST_CANDIDATES));
    if (options.livePilot && (claimed.pilotStatus === null || isPilotFinal(claimed.pilotStatus))) {
      throw new WmsError('WMS_FORBIDDEN', pilotTokenDeadMessage(options.pilotId ?? 0, claimed.pilotStatus));
    }
    if (claimed.again) return claimed.job;
    if (claimed.generation === current.generation && !claimed.job && ids.length > FIRST_CANDIDATES) {
      claimed = await claim(orderByKeys(ids, keys));
    }
    if (claimed.generation === current.generation) return claimed.job;
    snapshot = undefined;
  }
  // The queues changed under every attempt (a burst of new queues): the pilot asks again later.
  return null;
}

export interface BanState {
  name: string;
  /** Known to the registry; an unregistered site or CE is not banned. */
  registered: boolean;
  banned: boolean;
  reason: string | null;
}

export type ExplainedTaskQueue = TaskQueueRow & {
  /** The matcher could take a job from it for this resource now. */
  eligible: boolean;
  /** Why not (empty when eligible), including "no waiting jobs". */
  reasons: string[];
};

export interface ExplainResource {
  /** The description as the matcher reads it (required tags added to the tags). */
  resource: ResourceDescription;
  site: BanState;
  ce: BanState | null;
  /** What stops every match for this resource (a banned site or CE); empty otherwise. */
  blockers: string[];
  /** Every task queue, by id. */
  taskQueues: ExplainedTaskQueue[];
}

/** Every task queue with its waiting jobs and the reasons it cannot serve `resource`. */
export async function explainResource(db: DbOrHandle, resource: ResourceDescription): Promise<ExplainResource> {
  const d = dbOf(db);
  const r = normalizeResource(resource);
  const bans = await getBans(d, r.site, r.ce);
  const site: BanState = {
    name: r.site,
    registered: bans.site !== null,
    banned: bans.site?.banned ?? false,
    reason: bans.site?.reason ?? null,
  };
  const ce: BanState | null =
    r.ce === undefined
      ? null
      : { name: r.ce, registered: bans.ce !== null, banned: bans.ce?.banned ?? false, reason: bans.ce?.reason ?? null };
  const blockers: string[] = [];
  if (site.banned) blockers.push(banReason('site', site.name, site.reason));
  if (ce?.banned) blockers.push(banReason('CE', ce.name, ce.reason));
  const taskQueues = (await getTaskQueues(d, null)).map((tq) => {
    const reasons = rejectionsFor(tq, r);
    if (tq.waitingJobs === 0) reasons.push('no waiting jobs');
    return { ...tq, eligible: blockers.length === 0 && reasons.length === 0, reasons };
  });
  return { resource: r, site, ce, blockers, taskQueues };
}

export interface ExplainReason {
  kind: ExplainReasonKind;
  reason: string;
}

export interface ExplainedQueue {
  queueId: number;
  queue: string;
  ce: string;
  ceType: string;
  site: string;
  /** A pilot from this queue could be matched this job (if it were waiting): nothing stops it. */
  canRun: boolean;
  /** The texts of `blockers`, in order. */
  reasons: string[];
  /** Everything that stops it, by kind: the queue's blockers first, then the job's requirements it fails. */
  blockers: ExplainReason[];
  /** When the queue's pause ends (CE health); null when it is not paused now. */
  pausedUntil: Date | null;
  /** Its pilots now and its limits. */
  pilots: { waiting: number; total: number; maxWaiting: number; maxTotal: number };
}

export interface ExplainJob {
  job: {
    id: number;
    status: JobState;
    minorStatus: string;
    site: string;
    owner: string;
    ownerGroup: string;
    vo: string;
    taskQueueId: number | null;
  };
  /** The job is Waiting, i.e. the matcher may hand it out. */
  waiting: boolean;
  /** Set when the job is not waiting for a pilot, saying what it is instead. */
  note: string | null;
  taskQueue: TaskQueueRow | null;
  /** Every registered CE queue, whether a pilot from it could run the job, and what stops it. */
  queues: ExplainedQueue[];
}

/** States a job passes before it waits for a pilot. */
const PRE_WAITING: readonly JobState[] = ['Submitting', 'Received', 'Checking', 'Scouting', 'Staging', 'Rescheduled'];

/** What a job that is not Waiting is, in one sentence: "job 12 is Done: it is not waiting for a pilot". */
function notWaitingNote(job: ExplainJob['job']): string {
  const head = `job ${job.id} is ${job.status}: it is not waiting for a pilot`;
  if (isFinal(job.status)) return head;
  if (PRE_WAITING.includes(job.status)) return `${head} yet (it waits once it is checked)`;
  return `${head} (it has one, at ${job.site})`;
}

/** What a pilot of queue `q` offers the matcher (its queue's row; CPU work = the queue's CPU time). */
export function pilotResource(q: CeQueueView): ResourceDescription {
  const required = q.settings['requiredTags'];
  return {
    site: q.site,
    ce: q.ce,
    queue: q.queue,
    ...(q.platform === null ? {} : { platform: q.platform }),
    tags: q.tags,
    requiredTags: Array.isArray(required) ? required.filter((t): t is string => typeof t === 'string') : [],
    processors: q.processors,
    ramMb: q.ramMb,
    gpus: q.gpus,
    cpuWork: q.cpuTime,
  };
}

/**
 * For one job: its state, its task queue, and for each registered CE queue whether a pilot
 * there could run it and what stops it: what stops the site director from sending the queue
 * pilots at `now` (site or CE banned, queue paused, VO not served, a pilot limit full, CE
 * settings invalid; core/queue-blockers.ts) and what the job needs that the queue's pilots lack (CPU time,
 * processors, RAM, GPUs, tags, required tags, platform, site lists; core/matching.ts). The
 * queue offers what its row says: CPU work = its cpu_time. Unknown job (or another owner's):
 * WMS_JOB_NOT_FOUND.
 */
export async function explainJob(db: DbOrHandle, jobId: number, scope?: JobScope, now: Date = new Date()): Promise<ExplainJob> {
  const d = dbOf(db);
  const [row] = Number.isSafeInteger(jobId) && jobId > 0 ? await getJobs(d, [jobId], scope) : [];
  if (!row) throw new WmsError('WMS_JOB_NOT_FOUND', `job ${jobId} not found`);
  const job = {
    id: row.id,
    status: row.status,
    minorStatus: row.minorStatus,
    site: row.site,
    owner: row.owner,
    ownerGroup: row.ownerGroup,
    vo: row.vo,
    taskQueueId: row.taskQueueId,
  };
  const waiting = job.status === 'Waiting';
  const [taskQueue] = job.taskQueueId === null ? [] : await getTaskQueues(d, [job.taskQueueId]);
  const counts = await pilotCountsByQueue(d);
  const queues = (await listCeQueues(d)).map((q): ExplainedQueue => {
    const c = counts.get(q.queueId) ?? { waiting: 0, total: 0 };
    const blockers: ExplainReason[] = [
      ...queueBlockers(q, c, now, job.vo),
      ...(taskQueue
        ? rejectionsFor(taskQueue, pilotResource(q)).map((reason) => ({ kind: 'requirement' as const, reason }))
        : [{ kind: 'no-task-queue' as const, reason: 'the job has no task queue' }]),
    ];
    return {
      queueId: q.queueId,
      queue: q.queue,
      ce: q.ce,
      ceType: q.ceType,
      site: q.site,
      canRun: blockers.length === 0,
      reasons: blockers.map((b) => b.reason),
      blockers,
      pausedUntil: blockers.some((b) => b.kind === 'queue-paused') ? q.pausedUntil : null,
      pilots: { ...c, maxWaiting: q.maxWaitingPilots, maxTotal: q.maxTotalPilots },
    };
  });
  return { job, waiting, note: waiting ? null : notWaitingNote(job), taskQueue: taskQueue ?? null, queues };
}
