/**
 * Sandboxes: tar.gz archives named by their SHA-256 (the bytes live in `sandbox_chunks` on
 * PostgreSQL and on disk on PGlite, see services/sandbox-store.ts), who owns them (everyone who uploaded those bytes; an owner is the
 * pair (VO, user): `alice` of atlas and `alice` of lhcb are two owners), and which job uses
 * which, as input or output.
 */
import { and, asc, eq } from 'drizzle-orm';
import { dbOf, type DbOrHandle } from '../open-db.js';
import { jobSandboxes, sandboxes } from '../schema/index.js';
import { exec, rows } from './raw.js';
import { insertJobSandboxes } from './submit.js';

export type SandboxRow = typeof sandboxes.$inferSelect;

/** A sandbox owner: a user of one VO. */
export interface SandboxOwner {
  owner: string;
  vo: string;
}

/**
 * Records an uploaded archive and adds the uploader (VO, user) to its owners. Idempotent:
 * recording it again (by anyone) refreshes its access time; an owner already there keeps their
 * first group. One statement (the owner row's foreign key is checked at its end, when the archive
 * row exists).
 */
export async function recordSandbox(
  db: DbOrHandle,
  s: { sha256: string; size: number; owner: string; ownerGroup: string; vo: string },
): Promise<void> {
  await exec(
    db,
    `with archive as (
       insert into sandboxes (sha256, size) values ($1, $2)
       on conflict (sha256) do update set last_access_at = now()
     )
     insert into sandbox_owners (sha256, owner, owner_group, vo) values ($1, $3, $4, $5)
     on conflict (sha256, vo, owner) do nothing`,
    [s.sha256, s.size, s.owner, s.ownerGroup, s.vo],
  );
}

export async function getSandbox(db: DbOrHandle, sha256: string): Promise<SandboxRow | null> {
  const [row] = await dbOf(db).select().from(sandboxes).where(eq(sandboxes.sha256, sha256));
  return row ?? null;
}

/**
 * The sha256s among `sha256s` that `who` (VO and user) owns (primary key of sandbox_owners), in
 * input order. The same user name in another VO owns nothing of these.
 */
export async function sandboxesOwnedBy(db: DbOrHandle, sha256s: readonly string[], who: SandboxOwner): Promise<string[]> {
  if (sha256s.length === 0) return [];
  const found = await rows<{ sha256: string }>(
    db,
    'select sha256 from sandbox_owners where sha256 = any($1::text[]) and vo = $2::text and owner = $3::text',
    [[...sha256s], who.vo, who.owner],
  );
  const owned = new Set(found.map((r) => r.sha256));
  return sha256s.filter((s) => owned.has(s));
}

/**
 * Of the (sandbox, VO, user) triples given (parallel arrays), the ones that exist in
 * sandbox_owners, each as `sha256 vo owner` joined by spaces; the owner rows are locked
 * (`FOR SHARE`) until the transaction ends, so that job cleaning cannot remove them meanwhile.
 */
export async function lockSandboxOwners(
  db: DbOrHandle,
  sha256s: readonly string[],
  vos: readonly string[],
  owners: readonly string[],
): Promise<Set<string>> {
  if (sha256s.length === 0) return new Set();
  const found = await rows<{ sha256: string; vo: string; owner: string }>(
    db,
    `select o.sha256, o.vo, o.owner
       from sandbox_owners o
       join unnest($1::text[], $2::text[], $3::text[]) as u(sha256, vo, owner)
         on o.sha256 = u.sha256 and o.vo = u.vo and o.owner = u.owner
     for share of o`,
    [[...sha256s], [...vos], [...owners]],
  );
  return new Set(found.map((r) => `${r.sha256} ${r.vo} ${r.owner}`));
}

/** Of `sha256s`, the archives that exist, locked (`FOR SHARE`) until the transaction ends. */
export async function lockSandboxes(db: DbOrHandle, sha256s: readonly string[]): Promise<Set<string>> {
  if (sha256s.length === 0) return new Set();
  const found = await rows<{ sha256: string }>(db, 'select sha256 from sandboxes where sha256 = any($1::text[]) for share', [[...sha256s]]);
  return new Set(found.map((r) => r.sha256));
}

/** Is `who` (VO and user) one of the owners of sandbox `sha256`? False when there is no such sandbox. */
export async function sandboxOwnedBy(db: DbOrHandle, sha256: string, who: SandboxOwner): Promise<boolean> {
  return (await sandboxesOwnedBy(db, [sha256], who)).length > 0;
}

/**
 * Is sandbox `sha256` linked to job `jobId`, as input or output (primary key of job_sandboxes)?
 * With `owner` (a job token's claims), only when the job also belongs to that (VO, user).
 */
export async function jobUsesSandbox(db: DbOrHandle, jobId: number, sha256: string, owner?: SandboxOwner): Promise<boolean> {
  const found = await rows(
    db,
    `select 1 from job_sandboxes js
      where js.job_id = $1 and js.sha256 = $2
        and ($3::text is null or exists (select 1 from jobs j where j.id = js.job_id and j.vo = $3::text and j.owner = $4::text))
      limit 1`,
    [jobId, sha256, owner?.vo ?? null, owner?.owner ?? null],
  );
  return found.length > 0;
}

/** Links a job to sandboxes (recorded before). Idempotent. */
export async function assignSandboxes(db: DbOrHandle, jobId: number, kind: 'Input' | 'Output', sha256s: readonly string[]): Promise<void> {
  const unique = [...new Set(sha256s)];
  await insertJobSandboxes(
    db,
    unique.map(() => jobId),
    unique,
    kind,
  );
}

/** The sandboxes of one job of one kind, with their sizes. */
export async function jobSandboxesOf(db: DbOrHandle, jobId: number, kind: 'Input' | 'Output'): Promise<{ sha256: string; size: number }[]> {
  const r = await dbOf(db)
    .select({ sha256: sandboxes.sha256, size: sandboxes.size })
    .from(jobSandboxes)
    .innerJoin(sandboxes, eq(sandboxes.sha256, jobSandboxes.sha256))
    .where(and(eq(jobSandboxes.jobId, jobId), eq(jobSandboxes.kind, kind)))
    .orderBy(asc(sandboxes.sha256));
  return r.map((x) => ({ sha256: x.sha256, size: x.size }));
}

/** The largest chunk of an archive stored in the database (`sandbox_chunks.data`). */
export const SANDBOX_CHUNK_BYTES = 1024 * 1024;

/**
 * Stores an archive in the database in ONE transaction: `record(tx)` writes its rows (the
 * `sandboxes` row by `recordSandbox`, its owner, a job's link), then the archive row is locked
 * and, unless its chunks are there already, `chunks()` are written in order (seq 0, 1, ...,
 * each at most SANDBOX_CHUNK_BYTES). A concurrent upload of the same bytes waits on that lock
 * and then finds the chunks written. Anything failing (a chunk that cannot be read, the
 * connection lost) rolls back everything: no row without its bytes. Answers whether the chunks
 * were written by this call.
 */
export async function storeSandboxChunks(
  db: DbOrHandle,
  sha256: string,
  chunks: () => AsyncIterable<Buffer>,
  record: (tx: DbOrHandle) => Promise<void>,
): Promise<boolean> {
  return dbOf(db).transaction(async (tx) => {
    await record(tx);
    const outcome = await writeChunksLocked(tx, sha256, chunks);
    if (outcome === 'gone') throw new Error(`sandbox ${sha256} was not recorded before its chunks`);
    return outcome === 'written';
  });
}

/**
 * In a transaction: locks the archive row (`FOR UPDATE`: a concurrent writer of the same archive
 * waits, then finds the chunks there) and, unless its chunks are there already, writes
 * `chunks()` in order. 'gone': no such row (nothing written).
 */
async function writeChunksLocked(
  tx: DbOrHandle,
  sha256: string,
  chunks: () => AsyncIterable<Buffer>,
): Promise<'written' | 'present' | 'gone'> {
  const locked = await rows(tx, 'select 1 from sandboxes where sha256 = $1 for update', [sha256]);
  if (locked.length === 0) return 'gone';
  const present = await rows(tx, 'select 1 from sandbox_chunks where sha256 = $1 limit 1', [sha256]);
  if (present.length > 0) return 'present';
  let seq = 0;
  for await (const data of chunks()) {
    if (data.length > SANDBOX_CHUNK_BYTES) throw new Error(`sandbox chunk of ${data.length} bytes, over ${SANDBOX_CHUNK_BYTES}`);
    await exec(tx, 'insert into sandbox_chunks (sha256, seq, data) values ($1, $2, $3)', [sha256, seq, data]);
    seq += 1;
  }
  return 'written';
}

/**
 * Stores the chunks of an archive whose row is there already (a file kept on disk by an older
 * version, see services/sandbox-store-pg.ts `importLegacySandboxes`), in ONE transaction, the row
 * locked as in `storeSandboxChunks`: importing the same archive from several replicas at once
 * writes it once. 'present': its chunks were there; 'gone': its row was removed meanwhile.
 * `chunks()` throwing (bytes that do not match) rolls everything back.
 */
export function importSandboxChunks(
  db: DbOrHandle,
  sha256: string,
  chunks: () => AsyncIterable<Buffer>,
): Promise<'written' | 'present' | 'gone'> {
  return dbOf(db).transaction((tx) => writeChunksLocked(tx, sha256, chunks));
}

/** A recorded archive, by `sandboxesWithoutChunks`. */
export interface UnchunkedSandbox {
  sha256: string;
  size: number;
}

/**
 * Of `sha256s`, the archives that have a `sandboxes` row but no chunk (recorded by a version that
 * kept the bytes on disk), with their recorded size, in sha256 order.
 */
export async function sandboxesWithoutChunks(db: DbOrHandle, sha256s: readonly string[]): Promise<UnchunkedSandbox[]> {
  if (sha256s.length === 0) return [];
  return rows<UnchunkedSandbox>(
    db,
    `select s.sha256, s.size from sandboxes s
      where s.sha256 = any($1::text[])
        and not exists (select 1 from sandbox_chunks c where c.sha256 = s.sha256)
      order by s.sha256`,
    [[...sha256s]],
  );
}

/** An archive stored in the database: its recorded size and how many chunks hold it. */
export interface SandboxChunking {
  size: number;
  chunks: number;
}

/** The size and the chunk count of archive `sha256`; null when there is no such archive. */
export async function sandboxChunking(db: DbOrHandle, sha256: string): Promise<SandboxChunking | null> {
  const [row] = await rows<SandboxChunking>(
    db,
    `select s.size, (select count(*) from sandbox_chunks c where c.sha256 = s.sha256) as chunks
       from sandboxes s where s.sha256 = $1`,
    [sha256],
  );
  return row ?? null;
}

/** Chunk `seq` of archive `sha256`, or null when it is missing. */
export async function sandboxChunk(db: DbOrHandle, sha256: string, seq: number): Promise<Buffer | null> {
  const [row] = await rows<{ data: Uint8Array }>(db, 'select data from sandbox_chunks where sha256 = $1 and seq = $2', [sha256, seq], {
    name: 'sandbox_chunk',
  });
  if (!row) return null;
  const { data } = row;
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
