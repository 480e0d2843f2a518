import { integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/**
 * One row per agent: a tick runs only while its process holds the lease (taken by a conditional
 * update when free or expired), so several agent processes never act twice.
 */
export const agentLeases = pgTable('agent_leases', {
  agent: text('agent').primaryKey(),
  holder: text('holder'),
  expiresAt: tz('expires_at'),
  lastTickAt: tz('last_tick_at'),
  /**
   * The scheduled period (the schedule's firing time) whose tick was last taken: a period runs
   * once across every process, whichever takes it first.
   */
  lastPeriodAt: tz('last_period_at'),
  lastDurationMs: integer('last_duration_ms'),
  /** What the last tick did or why it failed, one line. */
  lastOutcome: text('last_outcome').notNull().default(''),
});
