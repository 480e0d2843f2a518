/**
 * The database sandbox store (on PostgreSQL): the bytes of each archive in `sandbox_chunks`,
 * chunks of at most 1 MiB, so that every replica on the database reads every sandbox.
 *
 * - Upload: spooled to a private temporary file and checked exactly as in the directory store
 *   (`sandbox-spool.ts`: same limits, same errors), then copied chunk by chunk in ONE transaction
 *   with the archive's rows (`storeSandboxChunks`): nothing half written when anything fails,
 *   and identical bytes uploaded at the same time are written once. The temporary file is
 *   removed whatever happens.
 * - Download: one chunk in memory at a time (fetched when the reader wants more), the SHA-256
 *   and the size checked as they pass; the last chunk is sent only once the whole archive has
 *   been found to hash to its name. A damaged archive is never served whole: a missing chunk
 *   or a wrong hash destroys the stream with WMS_INTERNAL (before any byte when the archive is
 *   one chunk, which then answers 500).
 * - Removal: the job-cleaning agent deletes the `sandboxes` rows; their chunks go with them.
 * - Upgrade (`importLegacySandboxes`, run once in the background by `startServer`): versions
 *   before this store kept the bytes at `<data-dir>/sandboxes/ab/abcdef…` on PostgreSQL too. A
 *   file there whose row has no chunks is copied into chunks, its size and SHA-256 checked as it
 *   passes (a file that does not match is left where it is and named in a warning), each archive
 *   in its own transaction with its row locked (replicas importing at once write it once); the
 *   file is removed once its chunks are committed.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { WmsError } from '../core/errors.js';
import {
  importSandboxChunks,
  SANDBOX_CHUNK_BYTES,
  sandboxChunk,
  sandboxChunking,
  sandboxesWithoutChunks,
  storeSandboxChunks,
  type DbOrHandle,
  type SandboxChunking,
  type UnchunkedSandbox,
} from '../db/index.js';
import type { ArchiveChecker } from './archive-check.js';
import type { PutResult, RecordSandbox, SandboxStore, StoredArchive } from './sandbox-store.js';
import { defaultChecker, isSha256, requireSha256, spoolUpload } from './sandbox-spool.js';

function damaged(sha256: string, why: string): WmsError {
  return new WmsError('WMS_INTERNAL', `sandbox ${sha256} is damaged in the database (${why}): not served`);
}

/** The chunks of a file, each at most SANDBOX_CHUNK_BYTES. */
async function* fileChunks(file: string): AsyncGenerator<Buffer> {
  for await (const data of createReadStream(file, { highWaterMark: SANDBOX_CHUNK_BYTES })) {
    const buf = data as Buffer;
    for (let at = 0; at < buf.length; at += SANDBOX_CHUNK_BYTES) yield buf.subarray(at, at + SANDBOX_CHUNK_BYTES);
  }
}

/** Counts and hashes an archive's chunks as they are read, and judges each against the row. */
class ChunkCheck {
  private readonly hash: Hash = createHash('sha256');
  private seen = 0;

  constructor(
    private readonly sha256: string,
    private readonly expected: SandboxChunking,
  ) {}

  /** Takes chunk `seq` (null: missing); throws when the archive is damaged, as far as can be told yet. */
  take(seq: number, data: Buffer | null): Buffer {
    if (data === null) throw damaged(this.sha256, `chunk ${seq} of ${this.expected.chunks} is missing`);
    this.seen += data.length;
    this.hash.update(data);
    const last = seq === this.expected.chunks - 1;
    if (this.seen > this.expected.size || (last && this.seen !== this.expected.size)) {
      throw damaged(
        this.sha256,
        `its chunks hold ${last ? this.seen : `over ${this.expected.size}`} bytes, its row says ${this.expected.size}`,
      );
    }
    if (last) {
      const digest = this.hash.digest('hex');
      if (digest !== this.sha256) throw damaged(this.sha256, `its bytes hash to ${digest}`);
    }
    return data;
  }
}

export class DatabaseSandboxStore implements SandboxStore {
  /** Measures each upload before it is kept; null: no check (bytes only). */
  readonly checker: ArchiveChecker | null;

  constructor(
    private readonly db: DbOrHandle,
    /** Where uploads are spooled (private to this process). */
    readonly tmpDir: string,
    readonly maxBytes: number,
    checker?: ArchiveChecker | null,
  ) {
    this.checker = checker === undefined ? defaultChecker(maxBytes) : checker;
  }

  async put(sha256: string, body: Readable, record: RecordSandbox): Promise<PutResult> {
    const spooled = await spoolUpload(sha256, body, { tmpDir: this.tmpDir, maxBytes: this.maxBytes, checker: this.checker });
    try {
      await storeSandboxChunks(
        this.db,
        sha256,
        () => fileChunks(spooled.file),
        (tx) => record(tx, { sha256, size: spooled.size }),
      );
    } finally {
      await rm(spooled.file, { force: true });
    }
    return { sha256, size: spooled.size, problems: spooled.problems };
  }

  async has(sha256: string): Promise<boolean> {
    requireSha256(sha256);
    return ((await sandboxChunking(this.db, sha256))?.chunks ?? 0) > 0;
  }

  /**
   * The first chunk is read (and, when it is the only one, checked) before the answer, so that a
   * small damaged archive fails before any byte is sent.
   */
  async open(sha256: string): Promise<StoredArchive | null> {
    requireSha256(sha256);
    const chunking = await sandboxChunking(this.db, sha256);
    if (chunking === null || chunking.chunks === 0) return null;
    const check = new ChunkCheck(sha256, chunking);
    const first = check.take(0, await sandboxChunk(this.db, sha256, 0));
    return { size: chunking.size, stream: Readable.from(this.rest(sha256, chunking.chunks, check, first), { objectMode: false }) };
  }

  /** `first`, then chunks 1.. fetched one at a time as the reader asks for them. */
  private async *rest(sha256: string, chunks: number, check: ChunkCheck, first: Buffer): AsyncGenerator<Buffer> {
    yield first;
    for (let seq = 1; seq < chunks; seq++) yield check.take(seq, await sandboxChunk(this.db, sha256, seq));
  }

  /** Nothing to do: the chunks were removed with their `sandboxes` rows (on delete cascade). */
  remove(): Promise<void> {
    return Promise.resolve();
  }
}

/** What `importLegacySandboxes` did. */
export interface LegacyImport {
  /** Archive files found under the directory (named by a SHA-256, in their fan-out directory). */
  found: number;
  /** Archives copied into chunks by this call (their files removed). */
  imported: number;
  /** Files left on disk because their size or SHA-256 is not their row's (each warned about once). */
  mismatched: string[];
  /** Files that could not be imported for another reason (read error, database error; warned about). */
  failed: number;
}

/** Where `importLegacySandboxes` reports: a pino logger fits. */
export interface ImportLog {
  info(msg: string): void;
  warn(msg: string): void;
}

/** Archive names looked up in one query. */
const IMPORT_BATCH = 200;

/** Thrown while an archive file is read when its bytes are not what its name and row say. */
class LegacyMismatch extends Error {}

/** `<root>/ab/abcdef…` files, as batches of names (one fan-out directory at a time). */
async function* legacyNames(root: string): AsyncGenerator<{ fan: string; names: string[] }> {
  const fans = (await readdir(root, { withFileTypes: true }).catch(() => []))
    .filter((e) => e.isDirectory() && /^[0-9a-f]{2}$/.test(e.name))
    .map((e) => e.name)
    .sort();
  for (const fan of fans) {
    const names = (await readdir(join(root, fan), { withFileTypes: true }).catch(() => []))
      .filter((e) => e.isFile() && isSha256(e.name) && e.name.startsWith(fan))
      .map((e) => e.name)
      .sort();
    for (let at = 0; at < names.length; at += IMPORT_BATCH) yield { fan, names: names.slice(at, at + IMPORT_BATCH) };
  }
}

/** The file's chunks, its size and SHA-256 checked against `row` by the end (LegacyMismatch otherwise). */
async function* checkedFileChunks(file: string, row: UnchunkedSandbox): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let seen = 0;
  for await (const chunk of fileChunks(file)) {
    seen += chunk.length;
    if (seen > row.size) throw new LegacyMismatch(`it holds over ${row.size} bytes, the size of its row`);
    hash.update(chunk);
    yield chunk;
  }
  if (seen !== row.size) throw new LegacyMismatch(`it holds ${seen} bytes, its row says ${row.size}`);
  const digest = hash.digest('hex');
  if (digest !== row.sha256) throw new LegacyMismatch(`its bytes hash to ${digest}`);
}

type ImportOutcome = 'imported' | 'present' | 'skipped' | { mismatch: string } | { failed: string };

/**
 * Copies one archive file into chunks (one transaction, the row locked: see
 * `importSandboxChunks`) and removes the file once they are committed, or once another replica
 * has committed them. A file gone meanwhile (another replica), or whose row went meanwhile, is
 * skipped.
 */
async function importOne(db: DbOrHandle, file: string, row: UnchunkedSandbox): Promise<ImportOutcome> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    return 'skipped';
  }
  if (size !== row.size) return { mismatch: `it holds ${size} bytes, its row says ${row.size}` };
  let outcome: 'written' | 'present' | 'gone';
  try {
    outcome = await importSandboxChunks(db, row.sha256, () => checkedFileChunks(file, row));
  } catch (e) {
    return e instanceof LegacyMismatch ? { mismatch: e.message } : { failed: (e as Error).message };
  }
  if (outcome === 'gone') return 'skipped';
  await rm(file, { force: true });
  return outcome === 'written' ? 'imported' : 'present';
}

/**
 * Moves the archives an older version kept on disk under `root` (`<data-dir>/sandboxes`) into
 * the database (see the module comment). Safe to run from several replicas at once, and again:
 * an archive is written once, a file is removed only once its chunks are committed. Files whose
 * archive has no row, or has its chunks already, are left alone. Stops between archives when
 * `signal` aborts. Logs one line saying how many were imported (when there were files).
 */
export async function importLegacySandboxes(db: DbOrHandle, root: string, log: ImportLog, signal?: AbortSignal): Promise<LegacyImport> {
  const result: LegacyImport = { found: 0, imported: 0, mismatched: [], failed: 0 };
  for await (const { fan, names } of legacyNames(root)) {
    if (signal?.aborted) break;
    result.found += names.length;
    for (const row of await sandboxesWithoutChunks(db, names)) {
      if (signal?.aborted) break;
      const file = join(root, fan, row.sha256);
      const outcome = await importOne(db, file, row);
      if (outcome === 'imported') result.imported += 1;
      else if (typeof outcome === 'object' && 'mismatch' in outcome) {
        result.mismatched.push(file);
        log.warn(`sandbox file ${file} is not imported into the database and stays on disk: ${outcome.mismatch}`);
      } else if (typeof outcome === 'object') {
        result.failed += 1;
        log.warn(`sandbox file ${file} could not be imported into the database (next start tries again): ${outcome.failed}`);
      }
    }
    await rmdir(join(root, fan)).catch(() => undefined); // only when empty
  }
  if (result.found > 0) log.info(importSummary(root, result));
  return result;
}

function importSummary(root: string, r: LegacyImport): string {
  const left = r.mismatched.length + r.failed;
  return (
    `imported ${r.imported} sandbox archive file(s) from ${root} into the database` +
    (left > 0 ? `; ${left} left on disk (see the warnings)` : '')
  );
}
