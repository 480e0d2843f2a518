/**
 * The matcher's SQL: which task queues a resource may take from, and the claim of one job.
 *
 * The claim does not evaluate the predicate: db/ops/match.ts chooses and orders the eligible
 * queues with `rejectionsFor()` of core/matching.ts over its cached snapshot of the queues, and
 * the claim walks them. The SQL predicate below (`findFittingTaskQueues`, for the site director)
 * is that function's twin; tests/db/matching-agreement.test.ts keeps the two equal.
 */
import { normalizeResource, TAG_LADDER_TOP, type ResourceDescription } from '../../core/matching.js';
import { PILOT_FINAL_STATES, type PilotState } from '../../core/pilot-states.js';
import { sqlStateOf, type DbOrHandle } from '../open-db.js';
import { rows } from './raw.js';

/**
 * The resource description as a one-row CTE `res`, parameters $1..$12, so that the predicate
 * reads `r.site` rather than repeating positional parameters. `tags` adds to the given tags the
 * ones DIRAC's Matcher derives from the numbers (core/matching.ts impliedTag): `2Processors` ..
 * `<n>Processors` and `MultiProcessor` from the processors, `2GB` .. `<k>GB` from the memory
 * (k = MB / 1000 rounded down), both ladders stopping at 1024 (TAG_LADDER_TOP).
 */
const RESOURCE_CTE = `res as (
  select $1::text as site, $2::text as ce, $3::text as platform,
         $4::text[]
           || array(select g::text || 'Processors' from generate_series(2, greatest(least(floor($6::float8), ${TAG_LADDER_TOP}), 1)::int) g)
           || array(select g::text || 'GB' from generate_series(2, greatest(least(floor($7::float8 / 1000), ${TAG_LADDER_TOP}), 1)::int) g)
           || case when floor($6::float8) > 1 then array['MultiProcessor'] else array[]::text[] end
           as tags,
         $5::text[] as required_tags,
         $6::float8 as processors, $7::float8 as ram_mb, $8::float8 as gpus, $9::float8 as cpu_work,
         $10::text as vo, $11::text[] as owner_groups, $12::text[] as job_types
)`;

/** The parameters of RESOURCE_CTE, in order. */
export function resourceParams(resource: ResourceDescription): unknown[] {
  const r = normalizeResource(resource);
  return [
    r.site,
    r.ce ?? null,
    r.platform ?? null,
    r.tags,
    r.requiredTags,
    r.processors,
    r.ramMb,
    r.gpus,
    r.cpuWork,
    r.vo ?? null,
    r.ownerGroups ?? null,
    r.jobTypes ?? null,
  ];
}

/** Task queue `tq` fits resource `r` (core/matching.ts rejectionsFor, same order). */
const TQ_FITS = `
      (r.vo is null or tq.vo = r.vo)
  and (r.owner_groups is null or tq.owner_group = any(r.owner_groups))
  and tq.cpu_time <= r.cpu_work
  and (cardinality(tq.sites) = 0 or r.site = any(tq.sites))
  and not (r.site = any(tq.banned_sites))
  and (cardinality(tq.grid_ces) = 0 or coalesce(r.ce = any(tq.grid_ces), false))
  and (cardinality(tq.platforms) = 0 or coalesce(r.platform = any(tq.platforms), false))
  and (r.job_types is null or cardinality(tq.job_types) = 0 or tq.job_types && r.job_types)
  and tq.tags <@ r.tags
  and tq.tags @> r.required_tags
  and tq.processors <= r.processors
  and tq.ram_mb <= r.ram_mb
  and tq.gpus <= r.gpus`;

/**
 * Ids of the task queues whose requirements fit the resource, ignoring bans and whether they
 * hold waiting jobs (`withWaitingJobs` adds that condition). For explain, the site director and
 * the agreement tests; the claim below inlines the same predicate.
 */
export async function findFittingTaskQueues(
  db: DbOrHandle,
  resource: ResourceDescription,
  options: { withWaitingJobs?: boolean } = {},
): Promise<number[]> {
  const waiting = options.withWaitingJobs ? `and exists (select 1 from jobs w where w.task_queue_id = tq.id and w.status = 'Waiting')` : '';
  const r = await rows<{ id: number }>(
    db,
    `with ${RESOURCE_CTE}
     select tq.id from task_queues tq, res r
      where ${TQ_FITS} ${waiting}
      order by tq.id`,
    resourceParams(resource),
  );
  return r.map((x) => x.id);
}

/**
 * Waiting jobs a resource could take, counted up to `cap` (the site director needs "at least
 * this many", never an exact count over a million-job backlog). Bans are the caller's business.
 */
export async function countWaitingJobsFor(db: DbOrHandle, resource: ResourceDescription, cap: number): Promise<number> {
  const r = await rows<{ n: number }>(
    db,
    `with ${RESOURCE_CTE}
     select count(*) as n from (
       select 1 from task_queues tq, res r, lateral (
         select 1 from jobs w where w.task_queue_id = tq.id and w.status = 'Waiting' limit $13::int
       ) w
        where ${TQ_FITS}
        limit $13::int
     ) x`,
    [...resourceParams(resource), cap],
  );
  return r[0]?.n ?? 0;
}

export interface MatchedJob {
  id: number;
  jdl: string;
  owner: string;
  ownerGroup: string;
  vo: string;
}

/** SQLSTATE unique_violation. */
export const UNIQUE_VIOLATION = '23505';

/** One claim of a batch (see claimJobs). */
export interface Claim {
  site: string;
  ce: string | null;
  /** The eligible task queues, in the order to walk them. */
  taskQueueIds: readonly number[];
  /** The generation of the snapshot the queues came from. */
  generation: number;
  pilotId: number | null;
  /** History source. */
  source: string;
  /** Claim nothing unless pilot `pilotId` has a record in a state that is not final. */
  livePilot?: boolean;
  /** The pilot's id of this match attempt: a retry with the same id answers the same job. */
  claimId?: string | null;
}

export interface ClaimResult {
  /** The current generation of the task-queue set: not the claim's means its snapshot is stale. */
  generation: number;
  /** The pilot's state (null without a pilot or its record). */
  pilotStatus: PilotState | null;
  job: MatchedJob | null;
  /** The job came from an earlier attempt with the same claim id. */
  again: boolean;
}

/**
 * Claims, several in ONE statement (so one transaction, one round trip): the function
 * `wms_claim_jobs` of migration 0009 takes claim i's arguments from the i-th element of each
 * array and walks them in order. For each claim:
 *
 * 0. a claim retried (its first answer was lost) answers the job that claim already took, when
 *    its pilot still holds it (Matched, Running, Completing, Stalled), instead of a second one
 *    (`jobs_pilot_claim`; a claim id of another pilot finds nothing of it);
 * 1. nothing is claimed when the task-queue generation is not the claim's (the caller's snapshot
 *    is stale: new queues or shares since), the site or CE is banned, or (`livePilot`) the pilot
 *    has no record or is in a final state (its token no longer works);
 * 2. otherwise, for the queues in the given order, the oldest waiting job of the queue that no
 *    other transaction holds (`jobs_waiting_by_tq`, (submitted_at, id) order, FOR UPDATE SKIP
 *    LOCKED), stopping at the first queue that yields one: Waiting -> Matched / Assigned,
 *    application status Unknown, site, pilot and claim id set, the report sequence back to 0 and
 *    the last heartbeat forgotten (a new life); a history row; the pilot linked to the job.
 *
 * A claim sees the jobs the claims before it in the batch took (no longer Waiting), so a batch
 * never hands one job out twice. Measured here (PostgreSQL 15, 2 cores, one connection): 267 us
 * of backend CPU per claim one at a time, 130 us in batches of 8. Two copies of one claim racing
 * in two transactions: the unique `jobs_pilot_claim` makes the second wait for the first and
 * fail (23505); see claimJob.
 */
const CLAIM_JOBS_SQL = `select r_ord, r_generation, r_pilot_status, r_id, r_jdl, r_owner, r_owner_group, r_vo, r_again
  from wms_claim_jobs($1::text[], $2::text[], $3::bigint[], $4::int[], $5::bigint[], $6::text[]::bigint[],
                      $7::text[], $8::boolean[], $9::text[], $10::text[]::pilot_status[])`;

/** Claims `claims` in one statement; one answer per claim, in their order. */
export async function claimJobs(db: DbOrHandle, claims: readonly Claim[]): Promise<ClaimResult[]> {
  type Row = {
    r_ord: number;
    r_generation: number;
    r_pilot_status: PilotState | null;
    r_id: number | null;
    r_jdl: string;
    r_owner: string;
    r_owner_group: string;
    r_vo: string;
    r_again: boolean;
  };
  const ends: number[] = [];
  const taskQueueIds: number[] = [];
  for (const c of claims) {
    taskQueueIds.push(...c.taskQueueIds);
    ends.push(taskQueueIds.length);
  }
  const params = [
    claims.map((c) => c.site),
    claims.map((c) => c.ce),
    taskQueueIds,
    ends,
    claims.map((c) => c.generation),
    claims.map((c) => (c.pilotId === null ? null : String(c.pilotId))),
    claims.map((c) => c.source),
    claims.map((c) => c.livePilot ?? false),
    claims.map((c) => (c.pilotId === null ? null : (c.claimId ?? null))),
    [...PILOT_FINAL_STATES],
  ];
  // A named prepared statement (on pg): parsed and planned once per connection.
  const r = await rows<Row>(db, CLAIM_JOBS_SQL, params, { name: 'wms_claim_jobs' });
  const answers: ClaimResult[] = claims.map(() => ({ generation: 0, pilotStatus: null, job: null, again: false }));
  for (const m of r) {
    answers[m.r_ord - 1] = {
      generation: m.r_generation,
      pilotStatus: m.r_pilot_status,
      job: m.r_id === null ? null : { id: m.r_id, jdl: m.r_jdl, owner: m.r_owner, ownerGroup: m.r_owner_group, vo: m.r_vo },
      again: m.r_again,
    };
  }
  return answers;
}

/**
 * One claim (claimJobs of one). Two copies of one claim that raced, this one the loser
 * (23505 on `jobs_pilot_claim`): the winner has committed by now, and the claim run again finds
 * its job.
 */
export async function claimJob(db: DbOrHandle, claim: Claim): Promise<ClaimResult> {
  try {
    return (await claimJobs(db, [claim]))[0]!;
  } catch (e) {
    if (sqlStateOf(e) !== UNIQUE_VIOLATION || claim.pilotId === null || !claim.claimId) throw e;
    return (await claimJobs(db, [claim]))[0]!;
  }
}
