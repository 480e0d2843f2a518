import { bigint, customType, index, integer, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
import { jobs } from './jobs.js';

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

const bytea = customType<{ data: Buffer }>({ dataType: () => 'bytea' });

/**
 * tar.gz archives named by their SHA-256. The bytes live in `sandbox_chunks` on PostgreSQL (every
 * replica reads them) and on disk under the data directory on PGlite (services/sandbox-store.ts).
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

/**
 * The bytes of a sandbox stored in the database: consecutive chunks (`seq` from 0) of at most
 * 1 MiB each, written in the transaction that records the sandbox, removed with it.
 */
export const sandboxChunks = pgTable(
  'sandbox_chunks',
  {
    sha256: text('sha256')
      .notNull()
      .references(() => sandboxes.sha256, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    data: bytea('data').notNull(),
  },
  (t) => [primaryKey({ columns: [t.sha256, t.seq] })],
);
