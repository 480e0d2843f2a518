/**
 * openDb(): one entry point for both drivers. `postgres://` or `postgresql://` opens a
 * node-postgres pool; `memory://` opens an in-memory PGlite; anything else is a directory for
 * an embedded PGlite (created if missing). Committed migrations are applied on open unless
 * `migrate: false`; on PostgreSQL several processes may open (and migrate) at once: the
 * migration runs under a session advisory lock. A PGlite directory is one process's only: its
 * lock file (db/pglite-lock.ts) refuses a second process, naming the one holding it.
 */
import fs, { existsSync, mkdirSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { isWmsError, WmsError } from '../core/errors.js';
import { lockPgliteDir } from './pglite-lock.js';
import { rows, type RawOptions } from './queries/raw.js';
import * as schema from './schema/index.js';

export type Schema = typeof schema;
/** Either driver, typed as drizzle's PostgreSQL base. Transactions have the same type. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

export interface DbHandle {
  db: Db;
  driver: 'pg' | 'pglite';
  /**
   * `rows(handle, ...)` of db/queries/raw.ts, the one raw-SQL path: parameters bound by the
   * database, rows the same shape on both drivers (int8 as numbers, timestamptz as Date).
   * `options.name` makes it a named prepared statement on pg (ignored on PGlite): for hot paths.
   */
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: RawOptions): Promise<T[]>;
  close(): Promise<void>;
}

export interface OpenDbOptions {
  migrate?: boolean;
  /** pg pool size (ignored for PGlite, which has one connection). */
  poolSize?: number;
}

/** Every db function takes either a handle or a drizzle database / transaction. */
export type DbOrHandle = Db | DbHandle;

export function isHandle(x: DbOrHandle): x is DbHandle {
  return 'driver' in x && 'close' in x;
}

/** The drizzle database behind a handle (or the argument itself when it is one already). */
export function dbOf(x: DbOrHandle): Db {
  return isHandle(x) ? x.db : x;
}

/** Advisory lock keys (two-int form: class, object). One place so they never collide. */
export const LOCK_CLASS = {
  /** Session lock held while migrations run. */
  migrate: 0x574d5300,
  /** Transaction lock per (vo, owner group): task-queue upserts and share recomputation. */
  group: 0x574d5301,
  /** Transaction lock around creating the signing key. */
  signingKey: 0x574d5302,
} as const;

/**
 * The committed migrations folder: next to this file when run from source (vitest, tsx), or
 * `../../db/migrations` from the compiled `dist/db/open-db.js`.
 */
export function migrationsFolder(): string {
  const candidates = [new URL('./migrations', import.meta.url), new URL('../../db/migrations', import.meta.url)];
  for (const url of candidates) {
    const dir = fileURLToPath(url);
    if (existsSync(`${dir}/meta/_journal.json`)) return dir;
  }
  throw new WmsError('WMS_CONFIG', `cannot find the migrations folder (tried ${candidates.map((u) => fileURLToPath(u)).join(', ')})`);
}

/** The URL with its password removed, for messages and logs. */
export function redactUrl(target: string): string {
  try {
    const u = new URL(target);
    if (u.password) u.password = '';
    return u.toString();
  } catch {
    return target.replace(/\/\/([^:/@]*):[^@]*@/, '//$1@');
  }
}

/** PostgreSQL type oids read by the parsers below. */
const INT8 = 20;
const INT8_ARRAY = 1016;

/**
 * int8 text -> JS number, for every raw row on both drivers (ids, `count(*)`, bigint columns).
 * Ids are bounded by ID_MAX = 2^53-1 in the API, so a larger value is a bug or a foreign row,
 * never a value to round: it throws (WMS_INTERNAL, naming the value) instead of silently losing
 * precision (node-postgres would answer a string, PGlite a BigInt). The query's promise rejects.
 */
export function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) {
    throw new WmsError('WMS_INTERNAL', `int8 value ${text} is beyond 2^53-1: it cannot be read as a JS number without losing precision`);
  }
  return n;
}

/**
 * node-postgres type parsers of one pool (not the process-wide `pg.types`): int8 and int8[] as
 * numbers. drizzle's typed queries pass their own parsers and map bigint columns themselves.
 */
function pgTypeParsers(): pg.CustomTypesConfig {
  const overrides = new pg.TypeOverrides();
  overrides.setTypeParser(INT8, parseInt8);
  const arrays = pg.types as unknown as {
    arrayParser: { create(source: string, transform: (v: string) => unknown): { parse(): unknown } };
  };
  overrides.setTypeParser(INT8_ARRAY, (v: string) => arrays.arrayParser.create(v, parseInt8).parse());
  return overrides;
}

/** PGlite parsers of one instance: int8 as a number (PGlite derives int8[] from it). */
const PGLITE_PARSERS = { [INT8]: parseInt8 };

export async function openDb(target: string, options: OpenDbOptions = {}): Promise<DbHandle> {
  const migrate = options.migrate ?? true;
  if (/^postgres(ql)?:\/\//.test(target)) return openPg(target, migrate, options.poolSize ?? 10);
  return openPglite(target, migrate);
}

async function openPg(url: string, migrate: boolean, poolSize: number): Promise<DbHandle> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 10_000, types: pgTypeParsers() });
  // A PostgreSQL restart (`pg_ctl restart -m fast`: 57P01 to every backend; `-m immediate`: the
  // sockets just close) makes each open connection emit 'error'. The pool listens on its idle
  // clients ('error' on the pool) but not on a client checked out for a query or a transaction:
  // without a listener of its own, Node turns that 'error' into an uncaught exception and the
  // process dies (seen in 4 of 10 restarts while jobs ran). The query in flight rejects with
  // the same error (the caller maps it to WMS_DB_UNAVAILABLE) and pg discards the broken client
  // when it is released, so the listeners only have to exist.
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (e) {
    await pool.end().catch(() => {});
    throw new WmsError('WMS_DB_UNAVAILABLE', `cannot reach the database at ${redactUrl(url)}: ${(e as Error).message}`, {
      retryable: true,
      cause: e,
    });
  }
  try {
    if (migrate) {
      // Session lock on one connection: the migrator reads the last applied migration before
      // its transaction, so two processes could both decide to apply it without the lock.
      await client.query('select pg_advisory_lock($1, 0)', [LOCK_CLASS.migrate]);
      try {
        await migratePg(drizzlePg(client, { schema }), { migrationsFolder: migrationsFolder() });
      } finally {
        await client.query('select pg_advisory_unlock($1, 0)', [LOCK_CLASS.migrate]);
      }
    }
  } catch (e) {
    client.release();
    await pool.end().catch(() => {});
    throw e;
  }
  client.release();
  const db = drizzlePg(pool, { schema }) as unknown as Db;
  let closed = false;
  return {
    db,
    driver: 'pg',
    query: (text, params, options) => rows(db, text, params, options),
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

/** The directories of the PGlite databases this process opened (absolute, with a trailing separator). */
const pgliteDirs = new Set<string>();

function inPgliteDir(path: unknown): boolean {
  if (typeof path !== 'string') return false;
  const abs = resolve(path);
  for (const dir of pgliteDirs) if (abs.startsWith(dir)) return true;
  return false;
}

/**
 * PGlite's file layer (Emscripten's NODEFS) chmods each file it creates to 0666, whatever the
 * process umask (seen with strace: `chmod(".../pg_wal/000000010000000000000001", 0100666)`),
 * and its WAL holds every row written, the signing key included. Within the PGlite directories
 * of this process, `fs.chmodSync` (the call NODEFS makes, looked up at each call) keeps the
 * owner's bits only; elsewhere it is unchanged.
 */
function keepPgliteFilesPrivate(dir: string): void {
  const first = pgliteDirs.size === 0;
  pgliteDirs.add(resolve(dir) + sep);
  if (!first) return;
  const original = fs.chmodSync;
  fs.chmodSync = function chmodSync(path: fs.PathLike, mode: fs.Mode): void {
    if (inPgliteDir(path)) {
      const bits = typeof mode === 'string' ? parseInt(mode, 8) : mode;
      if (Number.isInteger(bits)) return original(path, bits & ~0o077);
    }
    return original(path, mode);
  };
}

async function openPglite(target: string, migrate: boolean): Promise<DbHandle> {
  let client: PGlite;
  const where = target === 'memory://' ? 'memory' : target;
  let unlock = (): void => {};
  try {
    if (target === 'memory://') {
      client = new PGlite({ extensions: { pg_trgm }, parsers: PGLITE_PARSERS });
    } else {
      mkdirSync(target, { recursive: true, mode: 0o700 });
      // Refused (WMS_CONFIG, naming the holder) while another process has the directory open.
      unlock = lockPgliteDir(target, (line) => process.emitWarning(line));
      keepPgliteFilesPrivate(target);
      client = new PGlite(target, { extensions: { pg_trgm }, parsers: PGLITE_PARSERS });
    }
    await client.waitReady;
  } catch (e) {
    unlock();
    if (isWmsError(e)) throw e;
    throw new WmsError('WMS_DB_UNAVAILABLE', `cannot open the embedded database at ${where}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const pgliteDb = drizzlePglite(client, { schema });
  try {
    if (migrate) await migratePglite(pgliteDb, { migrationsFolder: migrationsFolder() });
  } catch (e) {
    await client.close().catch(() => {});
    unlock();
    throw e;
  }
  let closed = false;
  const db = pgliteDb as unknown as Db;
  return {
    db,
    driver: 'pglite',
    query: (text, params, options) => rows(db, text, params, options),
    async close() {
      if (closed) return;
      closed = true;
      try {
        await client.close();
      } finally {
        unlock();
      }
    },
  };
}

/** errno codes (node's net layer) that mean "the database is not there". */
const UNAVAILABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
]);

/**
 * The driver texts that mean the same when no code comes with them: node-postgres's
 * "Connection terminated unexpectedly" / "Connection terminated due to connection timeout",
 * "Client has encountered a connection error and is not queryable", "Client was closed and is
 * not queryable", the pool's "timeout exceeded when trying to connect", and PGlite's
 * "PGlite is closed".
 */
const UNAVAILABLE_TEXT =
  /Connection terminated|connection error and is not queryable|Client was closed and is not queryable|timeout exceeded when trying to connect|terminating connection due to administrator command|the database system is (starting up|shutting down|in recovery mode)|PGlite is closed/i;

/** How deep the `cause` chain is followed (drizzle wraps pg's error once; callers may wrap again). */
const CAUSE_DEPTH = 6;

/** The SQLSTATE of a database error, looked for along the `cause` chain (drizzle wraps pg's). */
export function sqlStateOf(e: unknown): string | null {
  let cur: unknown = e;
  for (let i = 0; i < 5 && typeof cur === 'object' && cur !== null; i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return null;
}

/**
 * True when `e`, or an error on its `cause` chain (or inside an AggregateError's `errors`, as
 * node's net layer reports a refused dual-stack connect), says the database server cannot be
 * reached or went away: errno ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT...; SQLSTATE class 08
 * (connection exception), 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now),
 * 53300 (too many connections); the driver's connection texts. A WmsError WMS_DB_UNAVAILABLE
 * anywhere on the chain counts too. Pure.
 */
export function isDbUnavailableError(e: unknown): boolean {
  const seen = new Set<unknown>();
  const walk = (x: unknown, depth: number): boolean => {
    if (typeof x !== 'object' || x === null || seen.has(x) || depth > CAUSE_DEPTH) return false;
    seen.add(x);
    const err = x as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
    const code = typeof err.code === 'string' ? err.code : '';
    if (
      code === 'WMS_DB_UNAVAILABLE' ||
      UNAVAILABLE_ERRNO.has(code) ||
      /^08[0-9A-Z]{3}$/.test(code) ||
      code === '57P01' ||
      code === '57P02' ||
      code === '57P03' ||
      code === '53300'
    ) {
      return true;
    }
    // A SQLSTATE of another class is the database answering: not an outage, whatever the text.
    const sqlState = /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('E');
    if (!sqlState && typeof err.message === 'string' && UNAVAILABLE_TEXT.test(err.message)) return true;
    if (Array.isArray(err.errors) && err.errors.some((y) => walk(y, depth + 1))) return true;
    return walk(err.cause, depth + 1);
  };
  return walk(e, 0);
}

/**
 * Maps an error thrown by a db function to `WMS_DB_UNAVAILABLE` (retryable) when it, or any
 * error on its `cause` chain, says the server cannot be reached or went away (see
 * `isDbUnavailableError`); other errors are returned unchanged, and so is a WmsError already
 * WMS_DB_UNAVAILABLE. For the service edge and for loops that must tell an outage from a bug.
 */
export function asDbUnavailable(e: unknown): unknown {
  if (isWmsError(e) && e.code === 'WMS_DB_UNAVAILABLE') return e;
  if (!isDbUnavailableError(e)) return e;
  return new WmsError('WMS_DB_UNAVAILABLE', `the database is unavailable: ${innermostMessage(e)}`, {
    retryable: true,
    cause: e,
  });
}

/**
 * The message of the deepest error on the cause chain (into an AggregateError's first error):
 * the driver's own words, never drizzle's "Failed query: <SQL>". First line only.
 */
function innermostMessage(e: unknown): string {
  let cur: unknown = e;
  let message = 'no reason given';
  for (let i = 0; i <= CAUSE_DEPTH && typeof cur === 'object' && cur !== null; i++) {
    const m = (cur as { message?: unknown }).message;
    if (typeof m === 'string' && m !== '' && !m.startsWith('Failed query:')) message = m;
    const inner = (cur as { errors?: unknown }).errors;
    const cause = (cur as { cause?: unknown }).cause;
    cur = cause ?? (Array.isArray(inner) ? inner[0] : undefined);
  }
  return message.split('\n')[0]!;
}

/**
 * Says a database outage once: the first failure of a streak logs `database unavailable,
 * retrying` (warn), later failures of the same streak are silent, and the first success after
 * it logs `database available again` (info) with how long it lasted. For background loops
 * (the event poller, revocation polling, agent ticks) that retry on their own schedule. An
 * error that is not an outage is logged every time it happens (`other`).
 */
export class DbOutageLog {
  private downSince: number | null = null;
  constructor(
    private readonly what: string,
    private readonly log: { warn(msg: string): void; info(msg: string): void },
    private readonly now: () => number = Date.now,
  ) {}

  /** True while the last attempt failed for an outage. */
  get down(): boolean {
    return this.downSince !== null;
  }

  /**
   * Records a failure. Answers true when it was an outage (logged only if it starts one);
   * false for any other error, which the caller logs itself.
   */
  failed(e: unknown): boolean {
    if (!isDbUnavailableError(e)) return false;
    if (this.downSince === null) {
      this.downSince = this.now();
      this.log.warn(`${this.what}: database unavailable, retrying (${innermostMessage(e)})`);
    }
    return true;
  }

  /** Records a success; logs the recovery when an outage was going on. */
  ok(): void {
    if (this.downSince === null) return;
    const seconds = Math.round((this.now() - this.downSince) / 1000);
    this.downSince = null;
    this.log.info(`${this.what}: database available again after ${seconds} s`);
  }
}

/**
 * Does the database answer? Runs `select 1`; any failure (unreachable server, closed handle)
 * throws WMS_DB_UNAVAILABLE (retryable), the driver's error as its cause. For health checks.
 */
export async function pingDb(db: DbOrHandle): Promise<void> {
  try {
    await dbOf(db).execute(sql`select 1`);
  } catch (e) {
    const mapped = asDbUnavailable(e);
    if (isWmsError(mapped)) throw mapped;
    throw new WmsError('WMS_DB_UNAVAILABLE', `the database is unavailable: ${String((e as { message?: unknown })?.message ?? e)}`, {
      retryable: true,
      cause: e,
    });
  }
}
