/**
 * Pilot states in the database: the `pilot_status` enum (migration 0007, also on a database
 * that already has pilots) and the transition table guarding every write (an illegal move
 * changes nothing, as for jobs).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PILOT_STATES } from '../../core/pilot-states.js';
import { migrationsFolder, type DbHandle } from '../../db/index.js';
import { applyPilotStatusChanges } from '../../db/ops/pilot-status.js';
import { createPilots, getPilotBinding, registerPilot, updatePilots } from '../../db/queries/pilots.js';
import { describeDb, describePg } from '../helpers/db.js';

async function newPilot(h: DbHandle, stamp: string): Promise<number> {
  const [id] = await createPilots(h, [{ stamp, site: 'SITE-A', ce: 'ce01', ceType: 'local', queue: 'q', queueId: null, vo: 'vo1' }]);
  return id!;
}

const statusOf = async (h: DbHandle, id: number) => (await getPilotBinding(h, id))!.status;

describeDb('pilot transitions', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('stores the status as the pilot_status enum', async () => {
    const [col] = await ctx.handle.query<{ udt_name: string; column_default: string }>(
      `select udt_name, column_default from information_schema.columns where table_name = 'pilots' and column_name = 'status'`,
    );
    expect(col!.udt_name).toBe('pilot_status');
    expect(col!.column_default).toContain('Submitted');
    await expect(ctx.handle.query(`update pilots set status = 'Sleeping'`)).rejects.toThrow(/invalid input value for enum pilot_status/);
  });

  it('refuses an illegal move and keeps the state (Running -> Waiting, Done -> Running)', async () => {
    const id = await newPilot(ctx.handle, 's1');
    expect(await statusOf(ctx.handle, id)).toBe('Submitted');
    expect(await updatePilots(ctx.handle, [id], { status: 'Running', reason: 'started' })).toEqual([id]);
    // Running over Running is a re-statement (a new reason), not a transition.
    expect(await updatePilots(ctx.handle, [id], { status: 'Running', reason: 'still running' })).toEqual([id]);
    expect(await updatePilots(ctx.handle, [id], { status: 'Waiting', reason: 'back in the queue?' })).toEqual([]);
    expect(await statusOf(ctx.handle, id)).toBe('Running');
    expect(await updatePilots(ctx.handle, [id], { status: 'Done', reason: 'no more jobs', exitCode: 0 })).toEqual([id]);
    // Final: the first final status wins; nothing moves it, not even registering again.
    expect(await updatePilots(ctx.handle, [id], { status: 'Failed', reason: 'late report' })).toEqual([]);
    expect(await updatePilots(ctx.handle, [id], { status: 'Running', reason: 'again' })).toEqual([]);
    expect(await registerPilot(ctx.handle, id, { environment: {}, benchmark: 10, clockOffsetSeconds: 0 }, null)).toBeNull();
    expect(await statusOf(ctx.handle, id)).toBe('Done');
  });

  it('refuses an illegal CE-derived change and applies the legal ones of the same batch', async () => {
    const a = await newPilot(ctx.handle, 'a');
    const b = await newPilot(ctx.handle, 'b');
    await updatePilots(ctx.handle, [a, b], { status: 'Running', reason: 'started' });
    const changed = await applyPilotStatusChanges(ctx.handle, [
      { id: a, from: 'Running', status: 'Waiting', reason: 'CE says idle' },
      { id: b, from: 'Running', status: 'Unknown', reason: 'CE lost it' },
    ]);
    expect(changed).toEqual([b]);
    expect(await statusOf(ctx.handle, a)).toBe('Running');
    expect(await statusOf(ctx.handle, b)).toBe('Unknown');
  });
});

/** A copy of the committed migrations that stops before 0007 (the state of an existing database). */
function migrationsBefore0007(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wms-migrations-'));
  cpSync(migrationsFolder(), dir, { recursive: true });
  const journalPath = join(dir, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { idx: number }[] };
  journal.entries = journal.entries.filter((e) => e.idx < 7);
  writeFileSync(journalPath, JSON.stringify(journal));
  return dir;
}

/** One pilot in each state, stored as text before 0007. */
const INSERT_EVERY_STATE = `insert into pilots (stamp, site, status, status_reason)
  select 'stamp-' || s, 'SITE-A', s, 'before 0007' from unnest($1::text[]) as t(s)`;

async function expectPilotsKept(query: (text: string) => Promise<{ rows: unknown[] }>): Promise<void> {
  const r = await query(`select status::text as status, pg_typeof(status)::text as type from pilots order by id`);
  expect(r.rows).toEqual(PILOT_STATES.map((status) => ({ status, type: 'pilot_status' })));
}

describe('migration 0007 on a database with pilots [pglite]', () => {
  let dir = '';
  beforeAll(() => {
    dir = migrationsBefore0007();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('turns every stored status into the enum', async () => {
    const client = new PGlite({ extensions: { pg_trgm } });
    try {
      const db = drizzlePglite(client);
      await migratePglite(db, { migrationsFolder: dir });
      await client.query(INSERT_EVERY_STATE, [[...PILOT_STATES]]);
      await migratePglite(db, { migrationsFolder: migrationsFolder() });
      await expectPilotsKept((text) => client.query(text));
    } finally {
      await client.close();
    }
  });
});

describePg('migration 0007 on a database with pilots', () => {
  const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `wms_test_mig0007_${process.pid}`;
  const admin = () => new pg.Client({ connectionString: ADMIN_URL });
  let dir = '';
  beforeAll(async () => {
    dir = migrationsBefore0007();
    const c = admin();
    await c.connect();
    await c.query(`drop database if exists ${name} with (force)`);
    await c.query(`create database ${name}`);
    await c.end();
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    const c = admin();
    await c.connect();
    await c.query(`drop database if exists ${name} with (force)`);
    await c.end();
  });

  it('turns every stored status into the enum', async () => {
    const u = new URL(ADMIN_URL);
    u.pathname = `/${name}`;
    const client = new pg.Client({ connectionString: u.toString() });
    await client.connect();
    try {
      const db = drizzlePg(client);
      await migratePg(db, { migrationsFolder: dir });
      await client.query(INSERT_EVERY_STATE, [[...PILOT_STATES]]);
      await migratePg(db, { migrationsFolder: migrationsFolder() });
      await expectPilotsKept((text) => client.query(text));
    } finally {
      await client.end();
    }
  });
});
