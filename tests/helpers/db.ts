/**
 * Database suites for the `db` test project.
 *
 * `describeDb(name, fn)` defines the suite twice: on an in-memory PGlite and on the real
 * PostgreSQL (`TEST_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/postgres).
 * `describePg(name, fn)` defines it on PostgreSQL only (multi-connection races).
 *
 * - PostgreSQL: each test FILE gets its own database, `wms_test_<pid>_<random>`, cloned from a
 *   template migrated once per migrations content (`wms_tpl_<hash>`; created under an advisory
 *   lock, so parallel test files neither race nor see a half-migrated template), and dropped
 *   after the file. Call describeDb / describePg at the top level of the file.
 * - Each suite gets ONE handle (`ctx.handle`, opened before its first test, closed after its
 *   last) and starts on empty tables. Tests that need a clean slate call `ctx.truncate()`
 *   (e.g. in a beforeEach). `ctx.open()` opens more handles on the same database (a bigger
 *   pool for races, a one-connection pool to pin a session); they are closed after the suite.
 * - PostgreSQL unreachable: under `CI` the suite FAILS (one test that throws and says why);
 *   elsewhere it is skipped with a warning.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { migrationsFolder, openDb, redactUrl, type Db, type DbHandle, type OpenDbOptions } from '../../db/index.js';

export interface DbTestContext {
  readonly driver: 'pg' | 'pglite';
  /** The suite's handle (valid inside hooks and tests). */
  readonly handle: DbHandle;
  readonly db: Db;
  /** Empties every table and restarts the id sequences. */
  truncate(): Promise<void>;
  /** Another handle on the suite's database, closed after the suite (PGlite: the same handle). */
  open(options?: OpenDbOptions): Promise<DbHandle>;
}

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const IN_CI = Boolean(process.env.CI);

async function probe(): Promise<string | null> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Why PostgreSQL cannot be used, or null when it can (probed once per test file). */
const pgProblem = await probe();

function urlFor(database: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

function migrationsHash(): string {
  const dir = migrationsFolder();
  const h = createHash('sha256');
  for (const f of readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort())
    h.update(f).update(readFileSync(`${dir}/${f}`));
  h.update(readFileSync(`${dir}/meta/_journal.json`));
  return h.digest('hex').slice(0, 12);
}

const TEMPLATE_LOCK = 0x574d5399;

async function withAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Creates this file's database from the migrated template (creating the template if needed). */
async function createFileDatabase(): Promise<string> {
  const template = `wms_tpl_${migrationsHash()}`;
  const name = `wms_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withAdmin(async (c) => {
    await c.query('select pg_advisory_lock($1)', [TEMPLATE_LOCK]);
    try {
      const exists = await c.query('select 1 from pg_database where datname = $1', [template]);
      if (exists.rowCount === 0) {
        // Migrate under a temporary name and rename at the end: a crash never leaves a
        // half-migrated template behind under the real name.
        const tmp = `${template}_tmp`;
        await c.query(`drop database if exists ${tmp} with (force)`);
        await c.query(`create database ${tmp}`);
        const h = await openDb(urlFor(tmp), { poolSize: 1 });
        await h.close();
        await c.query(`alter database ${tmp} rename to ${template}`);
      }
      await c.query(`create database ${name} template ${template}`);
    } finally {
      await c.query('select pg_advisory_unlock($1)', [TEMPLATE_LOCK]);
    }
  });
  return name;
}

let fileDatabase: Promise<string> | null = null;

/** This file's database, created on first use; dropped by a file-level afterAll. */
function fileDatabaseUrl(): Promise<string> {
  if (!fileDatabase) fileDatabase = createFileDatabase();
  return fileDatabase.then(urlFor);
}

let dropRegistered = false;
function registerDrop(): void {
  if (dropRegistered) return;
  dropRegistered = true;
  afterAll(async () => {
    if (!fileDatabase) return;
    const name = await fileDatabase;
    await withAdmin((c) => c.query(`drop database if exists ${name} with (force)`));
  });
}

export async function truncateAll(h: DbHandle): Promise<void> {
  const tables = await h.query<{ t: string }>(
    `select quote_ident(tablename) as t from pg_tables where schemaname = 'public' order by tablename`,
  );
  if (tables.length > 0) await h.query(`truncate table ${tables.map((x) => x.t).join(', ')} restart identity cascade`);
}

function suite(driver: 'pg' | 'pglite', name: string, fn: (ctx: DbTestContext) => void): void {
  let handle: DbHandle | null = null;
  const extra: DbHandle[] = [];
  const ctx: DbTestContext = {
    driver,
    get handle() {
      if (!handle) throw new Error('the database handle is only available inside hooks and tests');
      return handle;
    },
    get db() {
      return ctx.handle.db;
    },
    truncate: () => truncateAll(ctx.handle),
    async open(options) {
      if (driver === 'pglite') return ctx.handle;
      const h = await openDb(await fileDatabaseUrl(), { migrate: false, ...options });
      extra.push(h);
      return h;
    },
  };
  describe(`${name} [${driver === 'pg' ? 'postgres' : 'pglite'}]`, () => {
    beforeAll(async () => {
      handle = driver === 'pg' ? await openDb(await fileDatabaseUrl(), { migrate: false, poolSize: 4 }) : await openDb('memory://');
      await truncateAll(handle);
    });
    afterAll(async () => {
      await Promise.all(extra.splice(0).map((h) => h.close()));
      await handle?.close();
      handle = null;
    });
    fn(ctx);
  });
}

function pgSuite(name: string, fn: (ctx: DbTestContext) => void): void {
  if (pgProblem === null) {
    registerDrop();
    suite('pg', name, fn);
    return;
  }
  const why = `PostgreSQL is unreachable at ${redactUrl(ADMIN_URL)} (${pgProblem})`;
  if (IN_CI) {
    describe(`${name} [postgres]`, () => {
      it('needs PostgreSQL', () => {
        throw new Error(`${why}; CI is set, so this suite must not be skipped. Set TEST_DATABASE_URL or start PostgreSQL.`);
      });
    });
    return;
  }
  console.warn(`[db tests] SKIPPING "${name} [postgres]": ${why}. Set TEST_DATABASE_URL to run it.`);
  describe.skip(`${name} [postgres]`, () => fn(unusableContext()));
}

/**
 * This test file's PostgreSQL database (migrated, from the template), dropped after the file;
 * for suites that start whole systems on a URL. Call at collection time (it registers the drop)
 * and only when `postgresProblem()` is null; the answer creates the database on first call.
 */
export function reservePostgresDatabase(): () => Promise<string> {
  registerDrop();
  return fileDatabaseUrl;
}

/** Why PostgreSQL cannot be used here, or null when it can. */
export function postgresProblem(): string | null {
  return pgProblem === null ? null : `PostgreSQL is unreachable at ${redactUrl(ADMIN_URL)} (${pgProblem})`;
}

export { IN_CI };

function unusableContext(): DbTestContext {
  const fail = (): never => {
    throw new Error('PostgreSQL is not available');
  };
  return {
    driver: 'pg',
    get handle() {
      return fail();
    },
    get db() {
      return fail();
    },
    truncate: async () => fail(),
    open: async () => fail(),
  };
}

/** The suite on PGlite and on PostgreSQL. */
export function describeDb(name: string, fn: (ctx: DbTestContext) => void): void {
  suite('pglite', name, fn);
  pgSuite(name, fn);
}

/** The suite on PostgreSQL only (races need several connections). */
export function describePg(name: string, fn: (ctx: DbTestContext) => void): void {
  pgSuite(name, fn);
}
