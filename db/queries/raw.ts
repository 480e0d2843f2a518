/**
 * Hand-written SQL with positional parameters (`$1`, `$2`, ...), run through drizzle so that it
 * works on a database, a pool or a transaction alike. The text stays plain SQL (it can be pasted
 * into psql); each `$n` becomes a drizzle parameter, so an array is sent as ONE parameter (an SQL
 * array), never expanded into a list. Rows come back as objects; int8 columns may be strings
 * (pg) or numbers (PGlite), and timestamps strings: convert what you read (`Number(r.id)`).
 */
import { sql, type SQL, type SQLChunk } from 'drizzle-orm';
import { dbOf, type DbOrHandle } from '../open-db.js';

/** `text` with `$n` placeholders bound to `params[n - 1]`. */
export function raw(text: string, params: readonly unknown[] = []): SQL {
  const chunks: SQLChunk[] = [];
  let last = 0;
  for (const m of text.matchAll(/\$(\d+)/g)) {
    const n = Number(m[1]);
    if (n < 1 || n > params.length) throw new Error(`SQL parameter $${n} has no value (${params.length} given)`);
    chunks.push(sql.raw(text.slice(last, m.index)), sql.param(params[n - 1]));
    last = m.index + m[0].length;
  }
  chunks.push(sql.raw(text.slice(last)));
  return sql.join(chunks);
}

/** Runs `text` and returns its rows (both drivers answer `{ rows }` for raw SQL). */
export async function rows<T = Record<string, unknown>>(db: DbOrHandle, text: string, params: readonly unknown[] = []): Promise<T[]> {
  const result = (await dbOf(db).execute(raw(text, params))) as unknown as { rows: T[] };
  return result.rows;
}

/** Runs a statement for its effect. */
export async function exec(db: DbOrHandle, text: string, params: readonly unknown[] = []): Promise<void> {
  await dbOf(db).execute(raw(text, params));
}

/** int8 / numeric from either driver as a JS number (null stays null). */
export function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

export function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}
