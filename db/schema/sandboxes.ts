import { bigint, index, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
import { jobs } from './jobs.js';

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/**
 * tar.gz archives named by their SHA-256; the bytes live on disk under the data directory.
 * Who may use one is in `sandbox_owners`: identical bytes uploaded by two users are one archive
 * with two owners.
 */
export const sandboxes = pgTable('sandboxes', {
  sha256: text('sha256').primaryKey(),
  size: bigint('size', { mode: 'number' }).notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
  lastAccessAt: tz('last_access_at').notNull().defaultNow(),
});

/**
 * Each user who uploaded a sandbox's bytes owns it (with the group of that upload). A user is the
 * pair (VO, name): `alice` of atlas and `alice` of lhcb are two owners.
 */
export const sandboxOwners = pgTable(
  'sandbox_owners',
  {
    sha256: text('sha256')
      .notNull()
      .references(() => sandboxes.sha256, { onDelete: 'cascade' }),
    owner: text('owner').notNull(),
    ownerGroup: text('owner_group').notNull(),
    vo: text('vo').notNull(),
    createdAt: tz('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.sha256, t.vo, t.owner] })],
);

/** Which job uses which sandbox, as input or output. */
export const jobSandboxes = pgTable(
  'job_sandboxes',
  {
    jobId: bigint('job_id', { mode: 'number' })
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    sha256: text('sha256')
      .notNull()
      .references(() => sandboxes.sha256),
    kind: text('kind').notNull(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.sha256, t.kind] }), index('job_sandboxes_sha').on(t.sha256)],
);
