import { bigserial, doublePrecision, index, jsonb, pgTable, text, timestamp, uniqueIndex, bigint } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** Pilots (DIRAC's PilotAgentsDB). The stamp links batch job, pilot record and jobs. */
export const pilots = pgTable(
  'pilots',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    stamp: text('stamp').notNull(),
    /** The backend's reference (batch job id, VM id, pid). */
    reference: text('reference'),
    site: text('site').notNull(),
    ce: text('ce').notNull().default(''),
    queue: text('queue').notNull().default(''),
    vo: text('vo').notNull().default(''),
    status: text('status').notNull().default('Submitted'),
    statusReason: text('status_reason').notNull().default(''),
    benchmark: doublePrecision('benchmark'),
    environment: jsonb('environment').notNull().default(sql`'{}'::jsonb`),
    currentJobId: bigint('current_job_id', { mode: 'number' }),
    createdAt: tz('created_at').notNull().defaultNow(),
    lastUpdateAt: tz('last_update_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('pilots_stamp').on(t.stamp), index('pilots_site_status').on(t.site, t.ce, t.status)],
);
