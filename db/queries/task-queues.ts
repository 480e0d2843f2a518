/**
 * Task queues and fair share.
 *
 * A task queue holds the waiting jobs that have identical requirements (core/job-model.ts
 * `JobRequirements`); `key` is their canonical text, unique, so submitting files a job into an
 * existing queue or creates one. Queues are never deleted here: a job keeps its
 * `task_queue_id` for its whole life, which is what a reschedule puts it back into.
 *
 * Fair share (DIRAC's, simplified):
 *   group share      = group_shares.share, default 1000 (DIRAC's JobShare)
 *   owner share      = group share / number of distinct owners with waiting jobs in the group
 *   queue weight     = priority weight of the queue: user Priority 0 -> 1e-5, 10 -> 1e6,
 *                      1..9 as is (DIRAC's __hackJobPriority)
 *   share_priority   = max(owner share x weight / sum of the owner's weights, 0.001)
 * Only queues with waiting jobs count. Shares are recomputed for the touched groups at submit
 * and reschedule (which is when an empty queue gets jobs again), on setGroupShare, and for all
 * groups by the periodic `recomputeSharePriorities(db)` (DIRAC's TaskQueuesAgent, every 120 s).
 * They are NOT recomputed when a match empties a queue (too hot a path): the matcher's walk
 * passes over empty queues, so a drained queue costs its owner nothing but a slightly smaller
 * share for its other queues until the next recompute.
 * Not implemented from DIRAC: JobSharing groups, background queues, summing queues that differ
 * only by site lists, history-based share correction.
 *
 * Locking: everything that writes task_queues rows of a group (upsert, share update) first takes
 * the transaction advisory lock of that group (`lockGroups`, in sorted order), so concurrent
 * submissions and recomputations never deadlock. A writer that creates queues or changes shares
 * then updates the one `task_queue_state` row (after its group locks, so the order is always
 * groups first, then that row). The matcher never locks task queues.
 */
import type { JobRequirements } from '../../core/job-model.js';
import { LOCK_CLASS, type DbOrHandle } from '../open-db.js';
import { exec, rows } from './raw.js';

export interface GroupRef {
  vo: string;
  ownerGroup: string;
}

/** DIRAC's group JobShare default. */
export const DEFAULT_GROUP_SHARE = 1000;

function canon(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}

/** Requirements with every set sorted and de-duplicated, as stored in a task queue. */
export function canonicalRequirements(r: JobRequirements): JobRequirements {
  return {
    owner: r.owner,
    ownerGroup: r.ownerGroup,
    vo: r.vo,
    cpuTime: r.cpuTime,
    priority: r.priority,
    sites: canon(r.sites),
    bannedSites: canon(r.bannedSites),
    gridCEs: canon(r.gridCEs),
    platforms: canon(r.platforms),
    jobTypes: canon(r.jobTypes),
    tags: canon(r.tags),
    processors: r.processors,
    ramMb: r.ramMb,
    gpus: r.gpus,
  };
}

/** The canonical text key of a task queue: equal requirements give equal keys. */
export function taskQueueKey(r: JobRequirements): string {
  const c = canonicalRequirements(r);
  return JSON.stringify([
    c.vo,
    c.ownerGroup,
    c.owner,
    c.cpuTime,
    c.priority,
    c.processors,
    c.ramMb,
    c.gpus,
    c.sites,
    c.bannedSites,
    c.gridCEs,
    c.platforms,
    c.jobTypes,
    c.tags,
  ]);
}

/**
 * Takes the transaction advisory lock of each group, in lock-key order (needs a transaction;
 * on PGlite it is a no-op in effect). Bulk: one statement.
 */
export async function lockGroups(db: DbOrHandle, groups: readonly GroupRef[]): Promise<void> {
  if (groups.length === 0) return;
  // The ORDER BY in the subquery fixes the order in which the outer level takes the locks.
  await exec(
    db,
    `select pg_advisory_xact_lock($1, k)
       from (select distinct hashtext(g.vo || '/' || g.owner_group) as k
               from unnest($2::text[], $3::text[]) as g(vo, owner_group)
              order by 1) s`,
    [LOCK_CLASS.group, groups.map((g) => g.vo), groups.map((g) => g.ownerGroup)],
  );
}

/** Every (vo, group) that has a task queue. */
export async function listTaskQueueGroups(db: DbOrHandle): Promise<GroupRef[]> {
  const r = await rows<{ vo: string; owner_group: string }>(
    db,
    `select distinct vo, owner_group from task_queues order by vo, owner_group`,
  );
  return r.map((x) => ({ vo: x.vo, ownerGroup: x.owner_group }));
}

/**
 * Finds or creates the task queue of each requirement set; answers key -> id. Call with the
 * groups locked (`lockGroups`), in a transaction. Bulk: one statement for all queues.
 */
export async function upsertTaskQueues(db: DbOrHandle, requirements: readonly JobRequirements[]): Promise<Map<string, number>> {
  const byKey = new Map<string, JobRequirements>();
  for (const r of requirements) {
    const key = taskQueueKey(r);
    if (!byKey.has(key)) byKey.set(key, canonicalRequirements(r));
  }
  if (byKey.size === 0) return new Map();
  const records = [...byKey].map(([key, r]) => ({
    key,
    owner: r.owner,
    owner_group: r.ownerGroup,
    vo: r.vo,
    cpu_time: r.cpuTime,
    priority: r.priority,
    processors: r.processors,
    ram_mb: r.ramMb,
    gpus: r.gpus,
    sites: r.sites,
    banned_sites: r.bannedSites,
    grid_ces: r.gridCEs,
    platforms: r.platforms,
    job_types: r.jobTypes,
    tags: r.tags,
  }));
  // New queues come back from `ins`; existing ones from the table (the statement's snapshot does
  // not see `ins`, so the two halves never overlap). ON CONFLICT DO NOTHING rather than a no-op
  // DO UPDATE: no new row version for every existing queue at every submission.
  const found = await rows<{ id: number; key: string; created: boolean }>(
    db,
    `with ins as (
       insert into task_queues (key, owner, owner_group, vo, cpu_time, priority, processors, ram_mb, gpus,
                                sites, banned_sites, grid_ces, platforms, job_types, tags)
       select key, owner, owner_group, vo, cpu_time, priority, processors, ram_mb, gpus,
              sites, banned_sites, grid_ces, platforms, job_types, tags
         from jsonb_to_recordset($1::jsonb) as x(key text, owner text, owner_group text, vo text, cpu_time int,
              priority int, processors int, ram_mb int, gpus int, sites text[], banned_sites text[],
              grid_ces text[], platforms text[], job_types text[], tags text[])
        order by key
       on conflict (key) do nothing
       returning id, key
     )
     select id, key, true as created from ins
     union all
     select id, key, false as created from task_queues where key = any($2::text[])`,
    [JSON.stringify(records), [...byKey.keys()]],
  );
  if (found.some((f) => f.created === true)) await bumpTaskQueueGeneration(db);
  const ids = new Map(found.map((f) => [f.key, f.id]));
  for (const key of byKey.keys()) {
    if (!ids.has(key)) throw new Error(`task queue ${key} was neither found nor created (is its group locked?)`);
  }
  return ids;
}

/**
 * Recomputes `share_priority` of the task queues of `groups` (all groups when null), following
 * the formula at the top of this file. One statement; rows whose value does not change are not
 * written. Call with the groups locked. Queues without waiting jobs keep their old value.
 */
export async function updateSharePriorities(db: DbOrHandle, groups: readonly GroupRef[] | null): Promise<void> {
  const changed = await rows(
    db,
    `with grp as (
       select distinct g.vo, g.owner_group from unnest($1::text[], $2::text[]) as g(vo, owner_group)
     ),
     live as (
       select tq.id, tq.vo, tq.owner_group, tq.owner,
              case when tq.priority <= 0 then 1e-5 when tq.priority >= 10 then 1e6 else tq.priority end::float8 as weight
         from task_queues tq
        where ($3::boolean or (tq.vo, tq.owner_group) in (select vo, owner_group from grp))
          -- jobs_waiting_by_tq
          and exists (select 1 from jobs j where j.task_queue_id = tq.id and j.status = 'Waiting')
     ),
     owners as (
       select vo, owner_group, count(distinct owner) as n from live group by vo, owner_group
     ),
     owner_weights as (
       select vo, owner_group, owner, sum(weight) as total from live group by vo, owner_group, owner
     ),
     target as (
       select l.id,
              greatest(coalesce(gs.share, $4::float8) / o.n * l.weight / ow.total, 0.001) as p
         from live l
         join owners o on o.vo = l.vo and o.owner_group = l.owner_group
         join owner_weights ow on ow.vo = l.vo and ow.owner_group = l.owner_group and ow.owner = l.owner
         left join group_shares gs on gs.vo = l.vo and gs.owner_group = l.owner_group
     )
     update task_queues tq set share_priority = t.p
       from target t
      where tq.id = t.id and tq.share_priority is distinct from t.p
     returning tq.id`,
    [(groups ?? []).map((g) => g.vo), (groups ?? []).map((g) => g.ownerGroup), groups === null, DEFAULT_GROUP_SHARE],
  );
  if (changed.length > 0) await bumpTaskQueueGeneration(db);
}

/**
 * Marks the task-queue set as changed (new queues, new shares): the generation becomes this
 * transaction's id, unique for ever, so matchers holding an older snapshot reload it. Called
 * inside the writing transaction, after its group locks (never before: see Locking above).
 */
export async function bumpTaskQueueGeneration(db: DbOrHandle): Promise<void> {
  await exec(
    db,
    `insert into task_queue_state (id, generation) values (1, txid_current())
     on conflict (id) do update set generation = excluded.generation`,
  );
}

/** Every task queue (no waiting counts) and the generation they belong to, read together. */
export async function loadTaskQueueSnapshot(db: DbOrHandle): Promise<{ generation: number; queues: Omit<TaskQueueRow, 'waitingJobs'>[] }> {
  const r = await rows<TaskQueueSqlRow & { generation: number }>(
    db,
    `with g as (select coalesce((select generation from task_queue_state where id = 1), 0) as generation)
     select g.generation, ${TQ_COLUMNS}, 0 as waiting_jobs
       from g left join task_queues tq on true
      order by tq.id`,
  );
  const generation = r[0]?.generation ?? 0;
  const queues = r
    .filter((x) => x.id !== null)
    .map((x) => {
      const { waitingJobs: _, ...q } = toTaskQueueRow(x);
      return q;
    });
  return { generation, queues };
}

/** Sets (or replaces) a group's share. */
export async function upsertGroupShare(db: DbOrHandle, vo: string, ownerGroup: string, share: number): Promise<void> {
  await exec(
    db,
    `insert into group_shares (vo, owner_group, share) values ($1, $2, $3)
     on conflict (vo, owner_group) do update set share = excluded.share`,
    [vo, ownerGroup, share],
  );
}

/** A group's fair share as configured, or the default. */
export interface GroupShareRow {
  vo: string;
  ownerGroup: string;
  share: number;
  /** False: no row in group_shares, the share is DEFAULT_GROUP_SHARE. */
  configured: boolean;
}

/**
 * The share of every known group: those with a configured share and those that ever had a task
 * queue (distinct on `task_queues_group (vo, owner_group)`), by VO then group. One statement.
 */
export async function listGroupShares(db: DbOrHandle): Promise<GroupShareRow[]> {
  const r = await rows<{ vo: string; owner_group: string; share: number | null }>(
    db,
    `select g.vo, g.owner_group, gs.share
       from (select vo, owner_group from task_queues union select vo, owner_group from group_shares) g
       left join group_shares gs on gs.vo = g.vo and gs.owner_group = g.owner_group
      order by g.vo, g.owner_group`,
  );
  return r.map((x) => ({
    vo: x.vo,
    ownerGroup: x.owner_group,
    share: x.share === null || x.share === undefined ? DEFAULT_GROUP_SHARE : x.share,
    configured: x.share !== null && x.share !== undefined,
  }));
}

/** A task queue as stored (its requirements: what all its jobs share), with the number of its waiting jobs. */
export interface TaskQueueRow extends JobRequirements {
  id: number;
  sharePriority: number;
  waitingJobs: number;
}

interface TaskQueueSqlRow {
  id: number;
  owner: string;
  owner_group: string;
  vo: string;
  cpu_time: number;
  priority: number;
  processors: number;
  ram_mb: number;
  gpus: number;
  sites: string[];
  banned_sites: string[];
  grid_ces: string[];
  platforms: string[];
  job_types: string[];
  tags: string[];
  share_priority: number;
  waiting_jobs: number;
}

function toTaskQueueRow(r: TaskQueueSqlRow): TaskQueueRow {
  return {
    id: r.id,
    owner: r.owner,
    ownerGroup: r.owner_group,
    vo: r.vo,
    cpuTime: r.cpu_time,
    priority: r.priority,
    processors: r.processors,
    ramMb: r.ram_mb,
    gpus: r.gpus,
    sites: r.sites,
    bannedSites: r.banned_sites,
    gridCEs: r.grid_ces,
    platforms: r.platforms,
    jobTypes: r.job_types,
    tags: r.tags,
    sharePriority: r.share_priority,
    waitingJobs: r.waiting_jobs,
  };
}

const TQ_COLUMNS = `tq.id, tq.owner, tq.owner_group, tq.vo, tq.cpu_time, tq.priority, tq.processors, tq.ram_mb, tq.gpus,
  tq.sites, tq.banned_sites, tq.grid_ces, tq.platforms, tq.job_types, tq.tags, tq.share_priority`;

/**
 * Task queues with their waiting-job counts (ids = null: all of them), by id. The counts read
 * `jobs_waiting_by_tq`.
 */
export async function getTaskQueues(db: DbOrHandle, ids: readonly number[] | null): Promise<TaskQueueRow[]> {
  const r = await rows<TaskQueueSqlRow>(
    db,
    `select ${TQ_COLUMNS},
            (select count(*) from jobs j where j.task_queue_id = tq.id and j.status = 'Waiting') as waiting_jobs
       from task_queues tq
      where $1::bigint[] is null or tq.id = any($1::bigint[])
      order by tq.id`,
    [ids === null ? null : [...ids]],
  );
  return r.map(toTaskQueueRow);
}
