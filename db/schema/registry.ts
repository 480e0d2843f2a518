import { sql } from 'drizzle-orm';
import { bigserial, boolean, integer, jsonb, pgTable, text, timestamp, uniqueIndex, bigint } from 'drizzle-orm/pg-core';

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** Sites lent by partners; a banned site gets no work. */
export const sites = pgTable('sites', {
  name: text('name').primaryKey(),
  description: text('description').notNull().default(''),
  banned: boolean('banned').notNull().default(false),
  banReason: text('ban_reason'),
  updatedAt: tz('updated_at').notNull().defaultNow(),
});

/** Computing elements of a site (local, slurm, htcondor, opennebula). */
export const computingElements = pgTable(
  'computing_elements',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    site: text('site')
      .notNull()
      .references(() => sites.name, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    type: text('type').notNull(),
    banned: boolean('banned').notNull().default(false),
    banReason: text('ban_reason'),
    /** Backend settings; secrets are references (env var or file), never values. */
    settings: jsonb('settings')
      .notNull()
      .default(sql`'{}'::jsonb`),
    updatedAt: tz('updated_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('computing_elements_name').on(t.name)],
);

/** Batch queues (or VM templates) of a computing element, with what a pilot there offers. */
export const ceQueues = pgTable(
  'ce_queues',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    ceId: bigint('ce_id', { mode: 'number' })
      .notNull()
      .references(() => computingElements.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    /** CPU time a pilot there has, in normalized (DB12) seconds. */
    cpuTime: integer('cpu_time').notNull().default(86400),
    processors: integer('processors').notNull().default(1),
    ramMb: integer('ram_mb').notNull().default(2048),
    gpus: integer('gpus').notNull().default(0),
    platform: text('platform'),
    tags: text('tags').array().notNull().default([]),
    allowedVos: text('allowed_vos').array().notNull().default([]),
    maxWaitingPilots: integer('max_waiting_pilots').notNull().default(10),
    maxTotalPilots: integer('max_total_pilots').notNull().default(100),
    maxPilotsPerCycle: integer('max_pilots_per_cycle').notNull().default(10),
    nodePath: text('node_path'),
    settings: jsonb('settings')
      .notNull()
      .default(sql`'{}'::jsonb`),
    /** CE health: no pilots before this time (after consecutive failed pilots), and why. */
    pausedUntil: tz('paused_until'),
    pauseReason: text('pause_reason'),
    /** Pauses in a row without a pilot that ended well: the back-off grows with it. */
    pauseCount: integer('pause_count').notNull().default(0),
    updatedAt: tz('updated_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('ce_queues_name').on(t.ceId, t.name)],
);
