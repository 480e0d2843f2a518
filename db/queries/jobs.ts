/**
 * Reading jobs: by ids, listed with filters, a sort and paging, counted by status, their
 * history, parameters and recent heartbeats. Typed drizzle builders; `scope` restricts to one owner's jobs
 * (a user is the pair (VO, name): `scope.vo` and `scope.owner` together), absent means every job
 * (an admin).
 */
import { and, asc, count, desc, eq, gt, gte, ilike, lte, max, or, sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { JOB_STATES, type JobState } from '../../core/job-states.js';
import { dbOf, type DbOrHandle } from '../open-db.js';
import { jobHeartbeats, jobHistory, jobParameters, jobs } from '../schema/index.js';

/** One job as stored (the whole row, JDL included). */
export type JobRow = Omit<typeof jobs.$inferSelect, 'status'> & { status: JobState };

export interface HistoryRow {
  status: JobState;
  minorStatus: string;
  applicationStatus: string;
  source: string;
  at: Date;
}

/** One watchdog heartbeat of a job (figures as the job wrapper measured them). */
export interface HeartbeatRow {
  /** When the services recorded it (database clock). */
  at: Date;
  cpuSeconds: number;
  wallSeconds: number;
  rssMb: number;
  diskFreeMb: number | null;
  loadAverage: number | null;
}

/** The most heartbeats `getJobHeartbeats` answers. */
export const MAX_HEARTBEATS = 200;

export interface JobScope {
  /** Only this owner's jobs; another owner's job is treated as not found. */
  owner?: string;
  /** Only jobs of this VO (with `owner`: one user; the same name in another VO is another user). */
  vo?: string;
}

export interface JobFilter {
  status?: JobState[];
  site?: string;
  jobGroup?: string;
  owner?: string;
  /** Submitted at or after. */
  since?: Date;
  /** Submitted at or before. */
  until?: Date;
  /** A job id, or a substring of the job name (case-insensitive). */
  search?: string;
  /** The jobs this pilot holds or last ran (a reschedule clears a job's pilot). */
  pilotId?: number;
}

/** The order of a listing: a column and a direction. */
export interface JobSort {
  column: 'id' | 'status' | 'site' | 'group' | 'owner';
  order: 'asc' | 'desc';
}

/** The listing's default order: newest first. */
export const NEWEST_FIRST: JobSort = { column: 'id', order: 'desc' };

/**
 * The ORDER BY of each sort column, all in the sort's direction: the key of an index ending in
 * id (the primary key, jobs_status, jobs_site, jobs_group, jobs_owner_status), so that a page
 * is read in index order, forwards or backwards, and ties go by id. Status sorts in the
 * job_status enum's (lifecycle) order.
 */
const SORT_KEYS: Record<JobSort['column'], PgColumn[]> = {
  id: [jobs.id],
  status: [jobs.status, jobs.id],
  site: [jobs.site, jobs.id],
  group: [jobs.jobGroup, jobs.id],
  owner: [jobs.owner, jobs.status, jobs.id],
};

/** `id = ANY($ids)`: one parameter whatever the number of ids. */
export function idIn(ids: readonly number[]): SQL {
  return sql`${jobs.id} = any(${sql.param([...ids])}::bigint[])`;
}

function ownerIs(scope: JobScope | undefined): SQL | undefined {
  return and(
    scope?.owner === undefined ? undefined : eq(jobs.owner, scope.owner),
    scope?.vo === undefined ? undefined : eq(jobs.vo, scope.vo),
  );
}

/** Jobs by id (in id order); missing ids and other owners' jobs are simply absent. */
export async function getJobs(db: DbOrHandle, ids: readonly number[], scope?: JobScope): Promise<JobRow[]> {
  if (ids.length === 0) return [];
  const r = await dbOf(db)
    .select()
    .from(jobs)
    .where(and(idIn(ids), ownerIs(scope)))
    .orderBy(asc(jobs.id));
  return r as JobRow[];
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function filterWhere(filter: JobFilter, scope: JobScope | undefined): SQL | undefined {
  const search = filter.search?.trim();
  let searchCond: SQL | undefined;
  if (search) {
    const byName = ilike(jobs.jobName, `%${escapeLike(search)}%`);
    searchCond = /^\d{1,15}$/.test(search) ? or(eq(jobs.id, Number(search)), byName) : byName;
  }
  return and(
    ownerIs(scope),
    filter.status && filter.status.length > 0 ? sql`${jobs.status} = any(${sql.param(filter.status)}::text[]::job_status[])` : undefined,
    filter.site !== undefined ? eq(jobs.site, filter.site) : undefined,
    filter.jobGroup !== undefined ? eq(jobs.jobGroup, filter.jobGroup) : undefined,
    filter.pilotId !== undefined ? eq(jobs.pilotId, filter.pilotId) : undefined,
    filter.owner !== undefined ? eq(jobs.owner, filter.owner) : undefined,
    filter.since !== undefined ? gte(jobs.submittedAt, filter.since) : undefined,
    filter.until !== undefined ? lte(jobs.submittedAt, filter.until) : undefined,
    searchCond,
  );
}

/**
 * A page of jobs in `page.sort` order (default newest first) and the total matching the filter.
 * Each single filter has an index ending in `id` (jobs_owner_status, jobs_status, jobs_group,
 * jobs_site; the primary key otherwise), so a newest-first page is read in index order, as is
 * each sort of SORT_KEYS; `total` counts every matching row.
 */
export async function listJobs(
  db: DbOrHandle,
  filter: JobFilter,
  page: { limit: number; offset?: number; sort?: JobSort },
  scope?: JobScope,
): Promise<{ jobs: JobRow[]; total: number }> {
  const where = filterWhere(filter, scope);
  const { column, order } = page.sort ?? NEWEST_FIRST;
  const direction = order === 'asc' ? asc : desc;
  const [list, totals] = await Promise.all([
    dbOf(db)
      .select()
      .from(jobs)
      .where(where)
      .orderBy(...SORT_KEYS[column].map((c) => direction(c)))
      .limit(Math.max(0, Math.floor(page.limit)))
      .offset(Math.max(0, Math.floor(page.offset ?? 0))),
    dbOf(db).select({ n: count() }).from(jobs).where(where),
  ]);
  return { jobs: list as JobRow[], total: totals[0]?.n ?? 0 };
}

/** Number of jobs in each state (every state present, 0 when none) for the filter. */
export async function countJobsByStatus(db: DbOrHandle, filter: JobFilter, scope?: JobScope): Promise<Record<JobState, number>> {
  const r = await dbOf(db).select({ status: jobs.status, n: count() }).from(jobs).where(filterWhere(filter, scope)).groupBy(jobs.status);
  const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
  for (const x of r) out[x.status as JobState] = x.n;
  return out;
}

/** Which part of the jobs matching a filter `jobStates` reads. */
export interface JobStatesRange {
  /** Only these ids. */
  ids?: readonly number[];
  /** Only ids above this one. */
  after?: number;
  /** Only ids up to this one. */
  upTo?: number;
  limit?: number;
  /** Lock the rows (FOR UPDATE, in a transaction): a row changed meanwhile is waited for and the filter checked again. */
  lock?: boolean;
}

/**
 * The id and status of the jobs matching the filter (and `range`), in id order: how the bulk
 * actions walk a selection, a page of ids at a time, never whole rows.
 */
export async function jobStates(
  db: DbOrHandle,
  filter: JobFilter,
  scope: JobScope | undefined,
  range: JobStatesRange = {},
): Promise<{ id: number; status: JobState }[]> {
  let q = dbOf(db)
    .select({ id: jobs.id, status: jobs.status })
    .from(jobs)
    .where(
      and(
        filterWhere(filter, scope),
        range.ids === undefined ? undefined : idIn(range.ids),
        range.after === undefined ? undefined : gt(jobs.id, range.after),
        range.upTo === undefined ? undefined : lte(jobs.id, range.upTo),
      ),
    )
    .orderBy(asc(jobs.id))
    .$dynamic();
  if (range.limit !== undefined) q = q.limit(range.limit);
  if (range.lock) q = q.for('update');
  const r = await q;
  return r.map((x) => ({ id: Number(x.id), status: x.status as JobState }));
}

/** How many jobs match the filter, and the highest id among them (null: none). */
export async function countSelection(
  db: DbOrHandle,
  filter: JobFilter,
  scope?: JobScope,
): Promise<{ count: number; lastId: number | null }> {
  const [r] = await dbOf(db)
    .select({ n: count(), last: max(jobs.id) })
    .from(jobs)
    .where(filterWhere(filter, scope));
  return { count: Number(r?.n ?? 0), lastId: r?.last === null || r?.last === undefined ? null : Number(r.last) };
}

/** The status history of a job, oldest first (empty for an unknown job). */
export async function getJobHistory(db: DbOrHandle, id: number): Promise<HistoryRow[]> {
  const r = await dbOf(db)
    .select({
      status: jobHistory.status,
      minorStatus: jobHistory.minorStatus,
      applicationStatus: jobHistory.applicationStatus,
      source: jobHistory.source,
      at: jobHistory.at,
    })
    .from(jobHistory)
    .where(eq(jobHistory.jobId, id))
    .orderBy(asc(jobHistory.id));
  return r as HistoryRow[];
}

/** The parameters reported for a job, by name. */
export async function getJobParameters(db: DbOrHandle, id: number): Promise<Record<string, string>> {
  const r = await dbOf(db)
    .select({ name: jobParameters.name, value: jobParameters.value })
    .from(jobParameters)
    .where(eq(jobParameters.jobId, id))
    .orderBy(asc(jobParameters.name));
  return Object.fromEntries(r.map((x) => [x.name, x.value]));
}

/**
 * The last `limit` heartbeats of a job (at most MAX_HEARTBEATS), oldest of them first, newest
 * last (empty for an unknown job). Reads the index job_heartbeats_job (job_id, id) backwards
 * from the newest, so a long-running job costs `limit` rows, not all of its heartbeats.
 */
export async function getJobHeartbeats(db: DbOrHandle, id: number, limit = MAX_HEARTBEATS): Promise<HeartbeatRow[]> {
  const n = Math.max(1, Math.min(MAX_HEARTBEATS, Math.floor(limit)));
  const r = await dbOf(db)
    .select({
      at: jobHeartbeats.at,
      cpuSeconds: jobHeartbeats.cpuSeconds,
      wallSeconds: jobHeartbeats.wallSeconds,
      rssMb: jobHeartbeats.rssMb,
      diskFreeMb: jobHeartbeats.diskFreeMb,
      loadAverage: jobHeartbeats.loadAverage,
    })
    .from(jobHeartbeats)
    .where(eq(jobHeartbeats.jobId, id))
    .orderBy(desc(jobHeartbeats.id))
    .limit(n);
  return r.reverse();
}
