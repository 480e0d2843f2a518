import { bigserial, doublePrecision, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, bigint } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { pilotStatus } from './enums.js';
import { jobs } from './jobs.js';

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/**
 * Pilots (DIRAC's PilotAgentsDB). The stamp links batch job, pilot record and jobs. Status is
 * the enum `pilot_status` of core/pilot-states.ts (Submitted, Waiting, Running, Done, Failed, Aborted, Deleted,
 * Unknown); `status_reason` says why, in words a site admin reads ("clock skew 61.2 s").
 */
export const pilots = pgTable(
  'pilots',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    stamp: text('stamp').notNull(),
    /** The backend's reference (batch job id, VM id, pid). */
    reference: text('reference'),
    site: text('site').notNull(),
    ce: text('ce').notNull().default(''),
    /** The CE type (local, slurm, htcondor, opennebula). */
    ceType: text('ce_type').notNull().default(''),
    queue: text('queue').notNull().default(''),
    /** The ce_queues row the site director sent it to (null for self-registered pilots). */
    queueId: bigint('queue_id', { mode: 'number' }),
    vo: text('vo').notNull().default(''),
    /** The SQL enum `pilot_status` (core/pilot-states.ts); moves follow `PILOT_TRANSITIONS`. */
    status: pilotStatus('status').notNull().default('Submitted'),
    statusReason: text('status_reason').notNull().default(''),
    /** The DB12 score measured on the worker node. */
    benchmark: doublePrecision('benchmark'),
    /** Server clock minus worker-node clock, seconds, as the pilot measured it. */
    clockOffsetSeconds: doublePrecision('clock_offset_seconds'),
    /** The check-environment report: OS, CPU, memory, work dir and its file system, ... */
    environment: jsonb('environment')
      .notNull()
      .default(sql`'{}'::jsonb`),
    currentJobId: bigint('current_job_id', { mode: 'number' }),
    jobsRun: integer('jobs_run').notNull().default(0),
    /** Exit code of the wrapper or the pilot, when it reported one. */
    exitCode: integer('exit_code'),
    createdAt: tz('created_at').notNull().defaultNow(),
    lastUpdateAt: tz('last_update_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('pilots_stamp').on(t.stamp),
    index('pilots_site_status').on(t.site, t.ce, t.status),
    index('pilots_queue_status').on(t.queueId, t.status),
    index('pilots_status_updated').on(t.status, t.lastUpdateAt),
  ],
);

/** The remote log of a pilot: its lines, sent in batches (DIRAC's remote pilot logging). */
export const pilotLogs = pgTable(
  'pilot_logs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    pilotId: bigint('pilot_id', { mode: 'number' })
      .notNull()
      .references(() => pilots.id, { onDelete: 'cascade' }),
    /** When the pilot wrote the line (its clock). */
    at: tz('at').notNull(),
    line: text('line').notNull(),
  },
  (t) => [index('pilot_logs_pilot').on(t.pilotId, t.id)],
);

/** What the watchdog reports on each heartbeat (DIRAC's HeartBeatLoggingInfo). */
export const jobHeartbeats = pgTable(
  'job_heartbeats',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jobId: bigint('job_id', { mode: 'number' })
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    at: tz('at').notNull().defaultNow(),
    cpuSeconds: doublePrecision('cpu_seconds').notNull(),
    wallSeconds: doublePrecision('wall_seconds').notNull(),
    rssMb: doublePrecision('rss_mb').notNull(),
    diskFreeMb: doublePrecision('disk_free_mb'),
    loadAverage: doublePrecision('load_average'),
  },
  (t) => [index('job_heartbeats_job').on(t.jobId, t.id)],
);
