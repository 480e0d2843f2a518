/**
 * Agent leases (`agent_leases`, one row per agent): a tick runs only while its process holds
 * the agent's lease, so several agent processes never act twice (pg-boss's conditional-update
 * lease). Taking is ONE statement, `insert … on conflict do update … where <free, expired or
 * ours> returning`: on PostgreSQL a concurrent taker waits for the first one's row lock and then
 * re-evaluates the `where` against the row the first one wrote, so two holders never both win.
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
}

/**
 * Takes the lease of `agent` for `seconds` when it is free, expired or already held by
 * `holder` (then it is renewed); null when another holder has it. One statement, no
 * transaction needed; the primary key of `agent_leases` decides the race.
 */
export async function takeLease(db: DbOrHandle, agent: string, holder: string, seconds: number): Promise<TakenLease | null> {
  // `expires_at` was just set: not null in the row returned.
  const r = await rows<TakenLease>(
    db,
    `insert into agent_leases as l (agent, holder, expires_at)
     values ($1::text, $2::text, now() + make_interval(secs => $3::float8))
     on conflict (agent) do update
        set holder = excluded.holder, expires_at = excluded.expires_at
      where l.holder is null or l.expires_at is null or l.expires_at <= now() or l.holder = excluded.holder
     returning now() as "takenAt", l.expires_at as "expiresAt", l.last_tick_at as "previousTickAt"`,
    [agent, holder, seconds],
  );
  return r[0] ?? null;
}

/** `takeLease` answering only whether `holder` got it. */
export async function tryTakeLease(db: DbOrHandle, agent: string, holder: string, seconds: number): Promise<boolean> {
  return (await takeLease(db, agent, holder, seconds)) !== null;
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
