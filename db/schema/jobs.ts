import { sql } from 'drizzle-orm';
import { bigint, bigserial, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex, varchar } from 'drizzle-orm/pg-core';
import { jobStatus } from './enums.js';

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** One row per job (DIRAC's Jobs + JobJDLs). */
export const jobs = pgTable(
  'jobs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    owner: text('owner').notNull(),
    ownerGroup: text('owner_group').notNull(),
    vo: text('vo').notNull(),
    jobName: text('job_name').notNull(),
    jobGroup: text('job_group').notNull(),
    jobType: text('job_type').notNull(),
    /** ANY, the requested site, Multiple; the matched site once matched. */
    site: text('site').notNull().default('ANY'),
    status: jobStatus('status').notNull(),
    minorStatus: text('minor_status').notNull().default(''),
    applicationStatus: text('application_status').notNull().default('Unknown'),
    userPriority: integer('user_priority').notNull().default(1),
    /** The user's CPUTime in normalized (DB12) seconds. */
    cpuTime: integer('cpu_time').notNull(),
    rescheduleCounter: integer('reschedule_counter').notNull().default(0),
    taskQueueId: bigint('task_queue_id', { mode: 'number' }),
    pilotId: bigint('pilot_id', { mode: 'number' }),
    /** Jobs of one submission share it (the first job's id). */
    bulkId: bigint('bulk_id', { mode: 'number' }),
    parameterNumber: integer('parameter_number'),
    jdl: text('jdl').notNull(),
    submittedAt: tz('submitted_at').notNull().defaultNow(),
    lastUpdateAt: tz('last_update_at').notNull().defaultNow(),
    rescheduledAt: tz('rescheduled_at'),
    startExecAt: tz('start_exec_at'),
    endExecAt: tz('end_exec_at'),
    heartbeatAt: tz('heartbeat_at'),
    /**
     * The pilot's id of the match attempt that claimed the job (core/pilot-protocol.ts
     * MAX_CLAIM_ID_LENGTH): a retried claim with the same id answers this job again.
     */
    claimId: varchar('claim_id', { length: 64 }),
    /** The highest report id applied since the job was last matched (0: none yet). */
    reportSeq: integer('report_seq').notNull().default(0),
  },
  (t) => [
    // The matcher's scan: waiting jobs of one task queue in FIFO order. submitted_at is in the
    // key (and the claim orders by it) because with (task_queue_id, id) the planner, seeing a
    // fresh table where every job waits, preferred walking the primary key in id order and
    // filtering: a claim then skips every job already matched (quadratic over a backlog).
    // No other index yields (submitted_at, id) order, so this one is always taken.
    index('jobs_waiting_by_tq')
      .on(t.taskQueueId, t.submittedAt, t.id)
      .where(sql`${t.status} = 'Waiting'`),
    // listJobs / countJobsByStatus: every filter has an index ending in id, so "newest first"
    // pages are read in index order. A user's jobs, optionally by status (counts are
    // index-only scans on it).
    index('jobs_owner_status').on(t.owner, t.status, t.id),
    index('jobs_status').on(t.status, t.id),
    index('jobs_group').on(t.jobGroup, t.id),
    index('jobs_site').on(t.site, t.id),
    // The Jobs page's search: a substring of the name (ILIKE '%…%'), through trigrams (pg_trgm;
    // migration 0004 creates the extension, PGlite loads it in openDb).
    index('jobs_name_trgm').using('gin', sql`${t.jobName} gin_trgm_ops`),
    // Jobs of a pilot; waiting jobs have none, so they stay out of it (cheaper bulk inserts).
    index('jobs_pilot')
      .on(t.pilotId)
      .where(sql`${t.pilotId} is not null`),
    // One job per claim of a pilot: two copies of one claim racing (a retry sent while the
    // first was still being answered) cannot take two jobs; the loser retries and finds the
    // winner's job (db/queries/match.ts claimJob).
    uniqueIndex('jobs_pilot_claim')
      .on(t.pilotId, t.claimId)
      .where(sql`${t.claimId} is not null`),
  ],
);

/** Append-only status history (DIRAC's JobLoggingDB). */
export const jobHistory = pgTable(
  'job_history',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jobId: bigint('job_id', { mode: 'number' })
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    status: jobStatus('status').notNull(),
    minorStatus: text('minor_status').notNull().default(''),
    applicationStatus: text('application_status').notNull().default(''),
    source: text('source').notNull(),
    at: tz('at').notNull().defaultNow(),
  },
  (t) => [index('job_history_job').on(t.jobId, t.id)],
);

/** Named values reported about a job (host, CPU time, DB12, ...). */
export const jobParameters = pgTable(
  'job_parameters',
  {
    jobId: bigint('job_id', { mode: 'number' })
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    value: text('value').notNull(),
    at: tz('at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.name] })],
);

/** Commands to running jobs (Kill), each delivered once (status Received -> Sent). */
export const jobCommands = pgTable(
  'job_commands',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jobId: bigint('job_id', { mode: 'number' })
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    command: text('command').notNull(),
    arguments: text('arguments').notNull().default(''),
    status: text('status').notNull().default('Received'),
    createdAt: tz('created_at').notNull().defaultNow(),
    sentAt: tz('sent_at'),
  },
  (t) => [
    index('job_commands_pending')
      .on(t.jobId)
      .where(sql`${t.status} = 'Received'`),
  ],
);
