import { bigint, bigserial, doublePrecision, integer, pgTable, text, timestamp, uniqueIndex, index } from 'drizzle-orm/pg-core';

/**
 * Task queues: waiting jobs grouped by identical requirements (see core/job-model.ts
 * JobRequirements). Multi-valued fields are sorted text arrays; an empty array means "no
 * restriction". `key` is the canonical text of the requirements, unique, for upserts.
 * `sharePriority` is the fair-share weight, recomputed when queues of a group appear or vanish.
 */
export const taskQueues = pgTable(
  'task_queues',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    key: text('key').notNull(),
    owner: text('owner').notNull(),
    ownerGroup: text('owner_group').notNull(),
    vo: text('vo').notNull(),
    cpuTime: integer('cpu_time').notNull(),
    priority: integer('priority').notNull(),
    processors: integer('processors').notNull().default(1),
    ramMb: integer('ram_mb').notNull().default(0),
    gpus: integer('gpus').notNull().default(0),
    sites: text('sites').array().notNull().default([]),
    bannedSites: text('banned_sites').array().notNull().default([]),
    gridCEs: text('grid_ces').array().notNull().default([]),
    platforms: text('platforms').array().notNull().default([]),
    jobTypes: text('job_types').array().notNull().default([]),
    tags: text('tags').array().notNull().default([]),
    sharePriority: doublePrecision('share_priority').notNull().default(1),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('task_queues_key').on(t.key), index('task_queues_group').on(t.vo, t.ownerGroup)],
);

/** Fair-share weight of each group (DIRAC's /Registry/Groups/<g>/JobShare, default 1000). */
export const groupShares = pgTable(
  'group_shares',
  {
    vo: text('vo').notNull(),
    ownerGroup: text('owner_group').notNull(),
    share: doublePrecision('share').notNull(),
  },
  (t) => [uniqueIndex('group_shares_pk').on(t.vo, t.ownerGroup)],
);

/**
 * One row (id 1): the generation of the task-queue set, changed in the same transaction as any
 * new task queue or share change (to that transaction's id, so a value never comes back). The
 * matcher caches the queues in each server process and checks the generation in every claim.
 */
export const taskQueueState = pgTable('task_queue_state', {
  id: integer('id').primaryKey(),
  generation: bigint('generation', { mode: 'number' }).notNull(),
});
