/**
 * Agent leases (`agent_leases`, one row per agent): a tick runs only while its process holds
 * the agent's lease, so several agent processes never act twice (pg-boss's conditional-update
 * lease). Taking is ONE statement, `insert … on conflict do update … where <free, expired or
 * ours> returning`: on PostgreSQL a concurrent taker waits for the first one's row lock and then
 * re-evaluates the `where` against the row the first one wrote, so two holders never both win.
 *
 * Scheduled periods: a lease taken for a period (the schedule's firing time, `{ period }`) is
 * taken only when, in the same statement, `last_period_at` is null or earlier than that period,
 * and it is set to it: each period runs once across every process, whichever fires first; the
 * others, firing for the same period a moment later, are refused even once the lease is free.
 * Periods only move forward, so a process whose clock is behind never runs a period again (it
 * is refused until its clock passes the last period taken). This assumes the processes' clocks
 * agree to well within the shortest schedule interval (NTP keeps them within milliseconds): a
 * process whose clock is a whole interval ahead would name the next period while the others
 * name this one. A period more than `MAX_PERIOD_AHEAD_SECONDS` ahead of the database clock is
 * refused, so one badly wrong clock cannot block the others' periods for long.
 *
 * Lease times use the database clock (`now()`), the one clock every process shares; the agents'
 * own thresholds use their injected clock.
 */
import type { DbOrHandle } from '../open-db.js';
import { rows } from './raw.js';

export interface LeaseRow {
  agent: string;
  /** Who holds it now; null when free. */
  holder: string | null;
  expiresAt: Date | null;
  /** When the last tick started (database clock). */
  lastTickAt: Date | null;
  lastDurationMs: number | null;
  /** What the last tick did or why it failed, one line. */
  lastOutcome: string;
}

/** A lease just taken (or renewed). */
export interface TakenLease {
  /** The database's time when the lease was taken: the tick's start on the shared clock. */
  takenAt: Date;
  expiresAt: Date;
  /** When the previous tick of this agent started (by any holder); null before the first. */
  previousTickAt: Date | null;
  /** The period recorded (`last_period_at` after the statement); null for a renewal of a lease never taken for a period. */
  period: Date | null;
}

/**
 * How far ahead of the database clock a scheduled period may be (seconds): beyond it the
 * taker's clock is wrong, and its period is refused rather than recorded.
 */
export const MAX_PERIOD_AHEAD_SECONDS = 5;

/**
 * Which tick the lease is taken for:
 * - `{ period: Date }`: a scheduled period; taken only when no process took this period or a
 *   later one (`last_period_at < period`), which it then records;
 * - `{ period: 'now' }`: a tick outside the schedule (`runOnce`, `--once`): never refused for a
 *   period; records the database's now() (or keeps a later period), so a scheduled firing for
 *   a period before it, late in a process whose clock is behind, does not run again;
 * - `{}`: a renewal while a tick runs: `last_period_at` unchanged.
 */
export interface LeaseFor {
  period?: Date | 'now';
}

/**
 * Takes the lease of `agent` for `seconds` when it is free, expired or already held by
 * `holder` (then it is renewed) and, for a scheduled period, when that period has not run yet
 * (`LeaseFor`); null otherwise. One statement, no transaction needed; the primary key of
 * `agent_leases` decides the race.
 */
export async function takeLease(
  db: DbOrHandle,
  agent: string,
  holder: string,
  seconds: number,
  forTick: LeaseFor = {},
): Promise<TakenLease | null> {
  const mode = forTick.period === undefined ? 'renew' : forTick.period === 'now' ? 'now' : 'period';
  const period = forTick.period instanceof Date ? forTick.period.toISOString() : null;
  // `expires_at` was just set: not null in the row returned. In `period` mode the insert (no
  // row yet) is refused too when the period is too far ahead (`where` of the select).
  const r = await rows<TakenLease>(
    db,
    `insert into agent_leases as l (agent, holder, expires_at, last_period_at)
     select $1::text, $2::text, now() + make_interval(secs => $3::float8),
            case $5::text when 'period' then $4::timestamptz when 'now' then now() end
      where $5::text <> 'period' or $4::timestamptz <= now() + make_interval(secs => $6::float8)
     on conflict (agent) do update
        set holder = excluded.holder, expires_at = excluded.expires_at,
            last_period_at = case $5::text when 'period' then $4::timestamptz
                                           when 'now' then greatest(l.last_period_at, now())
                                           else l.last_period_at end
      where (l.holder is null or l.expires_at is null or l.expires_at <= now() or l.holder = excluded.holder)
        and ($5::text <> 'period' or l.last_period_at is null or l.last_period_at < $4::timestamptz)
     returning now() as "takenAt", l.expires_at as "expiresAt", l.last_tick_at as "previousTickAt",
               l.last_period_at as "period"`,
    [agent, holder, seconds, period, mode, MAX_PERIOD_AHEAD_SECONDS],
  );
  return r[0] ?? null;
}

/** `takeLease` answering only whether `holder` got it. */
export async function tryTakeLease(
  db: DbOrHandle,
  agent: string,
  holder: string,
  seconds: number,
  forTick: LeaseFor = {},
): Promise<boolean> {
  return (await takeLease(db, agent, holder, seconds, forTick)) !== null;
}

export interface TickRecord {
  durationMs: number;
  outcome: string;
  /** When the tick started (`TakenLease.takenAt`); the database's now() when absent. */
  startedAt?: Date;
}

/**
 * Records the tick that just ended (start, duration, outcome: kept whoever holds the lease now,
 * so the row always tells the last tick that finished) and frees the lease if `holder` still
 * has it. Answers whether it did (false: the lease had expired and another holder took it).
 */
export async function releaseLease(db: DbOrHandle, agent: string, holder: string, tick: TickRecord): Promise<boolean> {
  const r = await rows<{ freed: boolean }>(
    db,
    `update agent_leases
        set last_tick_at = coalesce($3::timestamptz, now()), last_duration_ms = $4::int, last_outcome = $5::text,
            expires_at = case when holder = $2::text then null else expires_at end,
            holder = case when holder = $2::text then null else holder end
      where agent = $1::text
     returning holder is null as freed`,
    [agent, holder, tick.startedAt ? tick.startedAt.toISOString() : null, Math.max(0, Math.round(tick.durationMs)), oneLine(tick.outcome)],
  );
  return r[0]?.freed === true;
}

/** Every agent's lease row, by agent name. */
export async function listLeases(db: DbOrHandle): Promise<LeaseRow[]> {
  return rows<LeaseRow>(
    db,
    `select agent, holder, expires_at as "expiresAt", last_tick_at as "lastTickAt", last_duration_ms as "lastDurationMs",
            last_outcome as "lastOutcome"
       from agent_leases order by agent`,
  );
}

/** Outcomes are one line of bounded length (an error's stack or a driver's output never lands here). */
function oneLine(s: string): string {
  const line = s.replace(/\s*\n\s*/g, ' | ').trim();
  return line.length > 1000 ? `${line.slice(0, 997)}...` : line;
}
