/**
 * What the pilot-status agent reads and writes (DIRAC's
 * PilotStatusAgent). Every write is guarded so that a pilot's own final report (Done or Failed, written by
 * the pilot) is never overwritten: CE answers are applied only to pilots still in the state the
 * agent read (optimistic check), and the timers only touch transient pilots. All statements use
 * `pilots_status_updated (status, last_update_at)`.
 */
import {
  canPilotTransition,
  PILOT_FINAL_STATES,
  PILOT_TRANSIENT_STATES,
  pilotSourcesOf,
  type PilotState,
} from '../../core/pilot-states.js';
import type { DbOrHandle } from '../open-db.js';
import { rows } from '../queries/raw.js';

/** A pilot as the agent sees it: where it runs and what we believe. */
export interface PilotOnCe {
  id: number;
  reference: string;
  ce: string;
  ceType: string;
  status: PilotState;
  lastUpdateAt: Date;
}

/** The columns of a `PilotOnCe`, each named as its field. */
const ON_CE_COLUMNS = 'id, reference, ce, ce_type as "ceType", status, last_update_at as "lastUpdateAt"';

/** Pilots in a transient state (Submitted, Waiting, Running, Unknown) that have a reference, by CE then id. */
export async function listPilotsToPoll(db: DbOrHandle): Promise<PilotOnCe[]> {
  return rows<PilotOnCe>(
    db,
    `select ${ON_CE_COLUMNS} from pilots
      where status = any($1::text[]::pilot_status[]) and reference is not null
      order by ce_type, ce, id`,
    [[...PILOT_TRANSIENT_STATES]],
  );
}

/** One change decided from a CE's answer. */
export interface PilotStatusChange {
  id: number;
  /** The status the agent read; the change applies only if the pilot is still in it. */
  from: PilotState;
  status: PilotState;
  reason: string;
  exitCode?: number | null;
}

/**
 * Applies CE-derived changes in one statement; a pilot is changed only while it is still in
 * the (transient) state the agent read, so a report written meanwhile by the pilot wins, and
 * only when the transition table allows `from` -> `status` (an illegal change is refused: not
 * applied, not in the answer). Answers the ids changed.
 */
export async function applyPilotStatusChanges(db: DbOrHandle, requested: readonly PilotStatusChange[]): Promise<number[]> {
  const changes = requested.filter((c) => canPilotTransition(c.from, c.status));
  if (changes.length === 0) return [];
  const r = await rows<{ id: number }>(
    db,
    `update pilots p
        set status = t.s, status_reason = t.r, exit_code = coalesce(t.e, p.exit_code), last_update_at = now()
       from unnest($1::bigint[], $2::text[]::pilot_status[], $3::text[]::pilot_status[], $4::text[], $5::int[]) as t(id, f, s, r, e)
      where p.id = t.id and p.status = t.f and p.status = any($6::text[]::pilot_status[])
     returning p.id`,
    [
      changes.map((c) => c.id),
      changes.map((c) => c.from),
      changes.map((c) => c.status),
      changes.map((c) => c.reason),
      changes.map((c) => c.exitCode ?? null),
      [...PILOT_TRANSIENT_STATES],
    ],
  );
  return r.map((x) => x.id).sort((a, b) => a - b);
}

/** A pilot the timers ended, with what its CE needs (reference may be null: never submitted). */
export interface EndedPilot {
  id: number;
  reference: string | null;
  ce: string;
  ceType: string;
}

/** The columns of an `EndedPilot`, each named as its field (in `returning`, of the pilot updated). */
const ENDED_COLUMNS = 'id, reference, ce, ce_type as "ceType"';

/** Pilots Unknown since before `before` -> Aborted with `reason`. One statement. */
export async function abortUnknownPilots(db: DbOrHandle, opts: { before: Date; reason: string }): Promise<EndedPilot[]> {
  const r = await rows<EndedPilot>(
    db,
    `update pilots set status = 'Aborted', status_reason = $2::text, last_update_at = now()
      where status = 'Unknown' and last_update_at < $1::timestamptz
     returning ${ENDED_COLUMNS}`,
    [opts.before.toISOString(), opts.reason],
  );
  return r.sort((a, b) => a.id - b.id);
}

/**
 * Transient pilots not updated since `before`, none of whose jobs was updated or heartbeat since
 * then either (DIRAC's exception for pilots running long jobs) -> Deleted with `reason`.
 * With or without a reference (a site director that died between submitting and recording the
 * reference leaves such pilots). One statement; the jobs side uses `jobs_pilot`.
 */
export async function deleteSilentPilots(db: DbOrHandle, opts: { before: Date; reason: string }): Promise<EndedPilot[]> {
  const r = await rows<EndedPilot>(
    db,
    `update pilots p set status = 'Deleted', status_reason = $2::text, last_update_at = now()
      where p.status = any($3::text[]::pilot_status[]) and p.last_update_at < $1::timestamptz
        and not exists (select 1 from jobs j
                         where j.pilot_id = p.id
                           and greatest(j.last_update_at, j.heartbeat_at) >= $1::timestamptz)
     returning ${ENDED_COLUMNS}`,
    [opts.before.toISOString(), opts.reason, [...pilotSourcesOf('Deleted')]],
  );
  return r.sort((a, b) => a.id - b.id);
}

/**
 * Pilots with a reference that reached a final state (by their own report or the agent's) in
 * the window [`since` - `delaySeconds`, now() - `delaySeconds`) of the database clock: the ones
 * whose CE leftovers need cleaning up. The delay lets a pilot that reported its end finish
 * exiting (its wrapper still removes its work directory) before its CE is asked to clean up;
 * consecutive windows still meet.
 */
export async function pilotsFinishedSince(db: DbOrHandle, since: Date, delaySeconds = 0): Promise<PilotOnCe[]> {
  return rows<PilotOnCe>(
    db,
    `select ${ON_CE_COLUMNS} from pilots
      where status = any($1::text[]::pilot_status[]) and reference is not null
        and last_update_at >= $2::timestamptz - make_interval(secs => $3::float8)
        and last_update_at < now() - make_interval(secs => $3::float8)
      order by ce_type, ce, id`,
    [[...PILOT_FINAL_STATES], since.toISOString(), delaySeconds],
  );
}
