/**
 * THE raw-SQL path: hand-written SQL text with positional parameters (`$1`, `$2`, ...) handed to
 * the driver as they are (`query(text, params)` of node-postgres or PGlite), on a handle, a
 * drizzle database or a transaction alike. The text is never scanned or split here: PostgreSQL
 * binds the parameters, so a `'$1'` inside a string literal stays text, and an array is ONE
 * parameter (an SQL array), never expanded into a list.
 *
 * Rows are plain objects with the same types on both drivers, set once per connection by
 * `openDb` (see `parseInt8` in open-db.ts): int8 (ids, `count(*)`) as a JS number, or an error
 * when beyond 2^53-1; float8 as a number; timestamptz as a Date; jsonb parsed; arrays as arrays.
 * numeric stays a string (no column is numeric; cast a `sum()` of int8 to int8 or float8).
 */
import pg from 'pg';
import type { Db, DbOrHandle } from '../open-db.js';

export interface RawOptions {
  /** A named prepared statement on node-postgres (parsed and planned once per connection); ignored on PGlite. For hot paths. */
  name?: string;
}

/** What both drivers' clients answer to (node-postgres Pool / PoolClient, PGlite / its Transaction). */
interface DriverClient {
  query(textOrConfig: string | { name: string; text: string; values: unknown[] }, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * The driver client behind a drizzle database or transaction: the pool (or the transaction's
 * pooled client) on node-postgres, the PGlite instance (or its transaction) on PGlite. drizzle
 * keeps it as `session.client` on both.
 */
function driverClientOf(db: Db): { client: DriverClient; isPg: boolean } {
  const client = (db._.session as unknown as { client?: DriverClient }).client;
  if (!client || typeof client.query !== 'function') {
    throw new Error('raw SQL: this drizzle database has no driver client (expected node-postgres or PGlite)');
  }
  return { client, isPg: client instanceof pg.Pool || client instanceof pg.Client };
}

function drizzleOf(db: DbOrHandle): Db {
  return 'driver' in db && 'close' in db ? db.db : db;
}

/** Runs `text` with `params` bound by the database and returns its rows. */
export async function rows<T = Record<string, unknown>>(
  db: DbOrHandle,
  text: string,
  params: readonly unknown[] = [],
  options: RawOptions = {},
): Promise<T[]> {
  const { client, isPg } = driverClientOf(drizzleOf(db));
  const values = [...params];
  const result = isPg && options.name ? await client.query({ name: options.name, text, values }) : await client.query(text, values);
  return result.rows as T[];
}

/** Runs a statement for its effect. */
export async function exec(db: DbOrHandle, text: string, params: readonly unknown[] = []): Promise<void> {
  await rows(db, text, params);
}
