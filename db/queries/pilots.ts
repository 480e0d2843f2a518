/**
 * Pilot records (DIRAC's PilotAgentsDB) and their remote logs. A pilot is created by the site
 * director (Submitted, with a stamp) before its computing element names it (the reference);
 * it registers itself (Running, with its environment, DB12 and clock offset) and reports its
 * end (Done or Failed, with a reason and exit code). The first final status written wins: a
 * pilot's own report is never overwritten by a later, vaguer one.
 */
import { PILOT_INITIAL_STATE, pilotSourcesOf, type PilotState } from '../../core/pilot-states.js';
import type { DbOrHandle } from '../open-db.js';
import { exec, rows } from './raw.js';

export interface PilotRow {
  id: number;
  stamp: string;
  reference: string | null;
  site: string;
  ce: string;
  ceType: string;
  queue: string;
  queueId: number | null;
  vo: string;
  status: PilotState;
  statusReason: string;
  benchmark: number | null;
  clockOffsetSeconds: number | null;
  environment: Record<string, unknown>;
  currentJobId: number | null;
  jobsRun: number;
  exitCode: number | null;
  createdAt: Date;
  lastUpdateAt: Date;
}

/** The columns of a `PilotRow`, each named as its field (for `select` and `returning`). */
const PILOT_COLUMNS = `id, stamp, reference, site, ce, ce_type as "ceType", queue, queue_id as "queueId", vo, status,
  status_reason as "statusReason", benchmark, clock_offset_seconds as "clockOffsetSeconds", environment,
  current_job_id as "currentJobId", jobs_run as "jobsRun", exit_code as "exitCode", created_at as "createdAt",
  last_update_at as "lastUpdateAt"`;

/** What the site director knows of a pilot it is about to submit. */
export type NewPilot = Pick<PilotRow, 'stamp' | 'site' | 'ce' | 'ceType' | 'queue' | 'queueId' | 'vo'>;

/** Inserts Submitted pilots (one statement); answers their ids in input order. */
export async function createPilots(db: DbOrHandle, pilots: readonly NewPilot[]): Promise<number[]> {
  if (pilots.length === 0) return [];
  const col = <K extends keyof NewPilot>(k: K) => pilots.map((p) => p[k]);
  const r = await rows<{ id: number; stamp: string }>(
    db,
    `insert into pilots (stamp, site, ce, ce_type, queue, queue_id, vo, status, status_reason)
     select s, si, c, ct, q, qi, v, $8::pilot_status, 'waiting for the computing element'
       from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[])
         as t(s, si, c, ct, q, qi, v)
     returning id, stamp`,
    [col('stamp'), col('site'), col('ce'), col('ceType'), col('queue'), col('queueId'), col('vo'), PILOT_INITIAL_STATE],
  );
  const byStamp = new Map(r.map((x) => [x.stamp, x.id]));
  return pilots.map((p) => byStamp.get(p.stamp)!);
}

/** Records the references the CE gave (status Submitted, reason "submitted to <ce>"). */
export async function setPilotReferences(
  db: DbOrHandle,
  refs: readonly { stamp: string; reference: string }[],
  reason: string,
): Promise<void> {
  if (refs.length === 0) return;
  await exec(
    db,
    `update pilots p set reference = t.r, status_reason = $3::text, last_update_at = now()
       from unnest($1::text[], $2::text[]) as t(s, r)
      where p.stamp = t.s`,
    [refs.map((x) => x.stamp), refs.map((x) => x.reference), reason],
  );
}

/** One pilot by id, stamp or CE reference; null when none. */
export async function findPilot(db: DbOrHandle, ref: string | number): Promise<PilotRow | null> {
  const asId = typeof ref === 'number' ? ref : /^\d{1,15}$/.test(ref) ? Number(ref) : null;
  const r = await rows<PilotRow>(
    db,
    `select ${PILOT_COLUMNS} from pilots
      where ($1::bigint is not null and id = $1::bigint) or stamp = $2::text or reference = $2::text
      order by id limit 1`,
    [asId, String(ref)],
  );
  return r[0] ?? null;
}

/** What a pilot token is bound to: its record's site, CE, queue and VO, and its state now. */
export interface PilotBinding {
  id: number;
  site: string;
  ce: string;
  queue: string;
  vo: string;
  status: PilotState;
}

/** The binding of pilot `id` (one primary-key read of five columns); null when it has no record. */
export async function getPilotBinding(db: DbOrHandle, id: number): Promise<PilotBinding | null> {
  const r = await rows<PilotBinding>(db, `select id, site, ce, queue, vo, status from pilots where id = $1::bigint`, [id]);
  return r[0] ?? null;
}

export interface PilotFilter {
  site?: string;
  /** Only pilots of these sites (a site admin's); empty: none. */
  sites?: readonly string[];
  ce?: string;
  status?: PilotState[];
  /** Pilots with an id below this (paging, newest first). */
  beforeId?: number;
  limit: number;
}

/** Pilots, newest first. */
export async function listPilots(db: DbOrHandle, f: PilotFilter): Promise<PilotRow[]> {
  return rows<PilotRow>(
    db,
    `select ${PILOT_COLUMNS} from pilots
      where ($1::text is null or site = $1::text) and ($2::text is null or ce = $2::text)
        and ($3::text[] is null or status = any($3::text[]::pilot_status[])) and ($4::bigint is null or id < $4::bigint)
        and ($6::text[] is null or site = any($6::text[]))
      order by id desc limit $5::int`,
    [f.site ?? null, f.ce ?? null, f.status ? [...f.status] : null, f.beforeId ?? null, f.limit, f.sites ? [...f.sites] : null],
  );
}

export interface PilotUpdate {
  status: PilotState;
  reason: string;
  exitCode?: number | null;
}

/**
 * Moves pilots to `to` where the pilot transition table allows it from their state now
 * (`pilotSourcesOf`, core/pilot-states.ts): a final pilot stays final (the first final report
 * wins), and an illegal move (Running -> Waiting) changes nothing. With `from`, only pilots in
 * one of those states. Answers the ids changed.
 */
export async function updatePilots(
  db: DbOrHandle,
  ids: readonly number[],
  to: PilotUpdate,
  from?: readonly PilotState[],
): Promise<number[]> {
  if (ids.length === 0) return [];
  const r = await rows<{ id: number }>(
    db,
    `update pilots set status = $2::pilot_status, status_reason = $3::text, exit_code = coalesce($4::int, exit_code),
            last_update_at = now()
      where id = any($1::bigint[]) and status = any($5::text[]::pilot_status[])
        and ($6::text[] is null or status = any($6::text[]::pilot_status[]))
      returning id`,
    [[...ids], to.status, to.reason, to.exitCode ?? null, [...pilotSourcesOf(to.status)], from ? [...from] : null],
  );
  return r.map((x) => x.id);
}

export interface Registration {
  environment: Record<string, unknown>;
  benchmark: number;
  clockOffsetSeconds: number;
}

/**
 * Stores what a pilot measured and sets it Running (or `refusal`: Failed with that reason),
 * where the transition table allows it; null when it does not (the pilot is final).
 */
export async function registerPilot(db: DbOrHandle, id: number, reg: Registration, refusal: string | null): Promise<PilotRow | null> {
  const to: PilotState = refusal === null ? 'Running' : 'Failed';
  const r = await rows<PilotRow>(
    db,
    `update pilots set environment = $2::jsonb, benchmark = $3::float8, clock_offset_seconds = $4::float8,
            status = $6::pilot_status, status_reason = coalesce($5::text, 'registered'), last_update_at = now()
      where id = $1::bigint and status = any($7::text[]::pilot_status[])
      returning ${PILOT_COLUMNS}`,
    [id, JSON.stringify(reg.environment), reg.benchmark, reg.clockOffsetSeconds, refusal, to, [...pilotSourcesOf(to)]],
  );
  return r[0] ?? null;
}

/** Appends log lines of one pilot (one statement). */
export async function appendPilotLogs(db: DbOrHandle, pilotId: number, lines: readonly { at: Date; line: string }[]): Promise<void> {
  if (lines.length === 0) return;
  await exec(
    db,
    `insert into pilot_logs (pilot_id, at, line) select $1::bigint, a, l from unnest($2::timestamptz[], $3::text[]) as t(a, l)`,
    [pilotId, lines.map((l) => l.at.toISOString()), lines.map((l) => l.line)],
  );
}

export interface PilotLogLine {
  id: number;
  at: Date;
  line: string;
}

/** A pilot's log lines in order, after the line `afterId` (paging). */
export async function getPilotLogs(db: DbOrHandle, pilotId: number, opts: { afterId?: number; limit: number }): Promise<PilotLogLine[]> {
  return rows<PilotLogLine>(
    db,
    `select id, at, line from pilot_logs where pilot_id = $1::bigint and id > $2::bigint order by id limit $3::int`,
    [pilotId, opts.afterId ?? 0, opts.limit],
  );
}

/**
 * Per registered queue: its pilots waiting and alive. Waiting counts those not yet at work:
 * Submitted, Waiting, and Running pilots that have not been given a job yet (registered, still
 * measuring or asking); otherwise the site director would send a second pilot for a job the
 * first one is about to take. Alive adds the other Running ones and Unknown.
 */
export async function pilotCountsByQueue(db: DbOrHandle): Promise<Map<number, { waiting: number; total: number }>> {
  const r = await rows<{ queueId: number; waiting: number; total: number }>(
    db,
    `select queue_id as "queueId",
            count(*) filter (where status in ('Submitted', 'Waiting') or (status = 'Running' and current_job_id is null)) as waiting,
            count(*) as total
       from pilots
      where queue_id is not null and status in ('Submitted', 'Waiting', 'Running', 'Unknown')
      group by queue_id`,
  );
  return new Map(r.map((x) => [x.queueId, { waiting: x.waiting, total: x.total }]));
}
