import { bigint, doublePrecision, index, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { jobStatus } from './enums.js';

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/**
 * One accounting record per finished job (Done, Failed, Killed), written by the accounting
 * agent (db/ops/accounting.ts). Keyed by the job id but with NO foreign key to `jobs`: records
 * outlive job cleaning. Values are copied, not referenced (the pilot row may go too).
 *
 * Normalized CPU follows DIRAC's `CPUNormalizationFactor` semantics:
 * the pilot's DB12 score is taken as HS06-like power per core, so
 * `normalized_cpu_seconds = cpu_seconds × benchmark` (null when the pilot's DB12 is unknown).
 */
export const accounting = pgTable(
  'accounting',
  {
    jobId: bigint('job_id', { mode: 'number' }).primaryKey(),
    owner: text('owner').notNull(),
    ownerGroup: text('owner_group').notNull(),
    vo: text('vo').notNull(),
    site: text('site').notNull(),
    ce: text('ce').notNull().default(''),
    queue: text('queue').notNull().default(''),
    pilotId: bigint('pilot_id', { mode: 'number' }),
    /** The final status: Done, Failed or Killed. */
    status: jobStatus('status').notNull(),
    minorStatus: text('minor_status').notNull().default(''),
    /** Job parameter ExitCode, when the wrapper reported one. */
    exitCode: integer('exit_code'),
    submittedAt: tz('submitted_at').notNull(),
    startedAt: tz('started_at'),
    /** end_exec_at, or the job's last update when it never ran (killed while waiting). */
    endedAt: tz('ended_at').notNull(),
    /** Job parameter `TotalCPUTime(s)`; 0 when not reported. */
    cpuSeconds: doublePrecision('cpu_seconds').notNull().default(0),
    /** Job parameter `WallClockTime(s)`; 0 when not reported. */
    wallSeconds: doublePrecision('wall_seconds').notNull().default(0),
    /** The pilot's DB12 score (null: no pilot, or it never registered one). */
    benchmark: doublePrecision('benchmark'),
    /** cpu_seconds × benchmark (DB12·s, "HS06·s" in DIRAC's words). */
    normalizedCpuSeconds: doublePrecision('normalized_cpu_seconds'),
    /** Processors the job asked for (its task queue's NumberOfProcessors). */
    processors: integer('processors').notNull().default(1),
    recordedAt: tz('recorded_at').notNull().defaultNow(),
  },
  (t) => [
    // Reports: a time window (`since`), all records or one owner's.
    index('accounting_ended').on(t.endedAt),
    index('accounting_owner_ended').on(t.owner, t.endedAt),
  ],
);
