/**
 * Where the bytes of sandboxes (tar.gz archives named by their SHA-256) are kept: the
 * `SandboxStore` interface, the directory store, and `sandboxStoreFor`, which picks the store by
 * the database: on PostgreSQL the database store (`sandbox-store-pg.ts`: chunks in
 * `sandbox_chunks`, so that every replica reads every sandbox), on PGlite (one process) the
 * directory store. The database's `sandboxes` rows hold who owns what; a store holds bytes.
 *
 * Every store spools an upload to a private temporary file first (`sandbox-spool.ts`: hash,
 * size limit, gzip, archive check; the same limits and errors everywhere), then keeps it.
 *
 * The directory store keeps archives at `<root>/ab/abcdef…` (two-character fan-out): the
 * checked temporary file in `<root>/tmp/` is renamed into place (same file system, so the rename
 * is atomic): a reader never sees a partial archive, and a rejected upload leaves nothing behind.
 */
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ServiceConfig } from '../core/config.js';
import type { DbHandle, DbOrHandle } from '../db/index.js';
import type { ArchiveChecker } from './archive-check.js';
import { DatabaseSandboxStore } from './sandbox-store-pg.js';
import { defaultChecker, isSha256, requireSha256, spoolUpload } from './sandbox-spool.js';

export { CHECK_SECONDS, isSha256, tooLarge, uploadCheckLimits } from './sandbox-spool.js';

/** What `put` kept. */
export interface PutResult {
  sha256: string;
  size: number;
  /** Problems with the archive's contents that its unpackers will refuse (for the log). */
  problems: string[];
}

/**
 * Writes the database rows of a stored archive (`recordSandbox`, a job's link) on `db`: inside
 * the transaction that writes the bytes when the store is the database.
 */
export type RecordSandbox = (db: DbOrHandle, stored: { sha256: string; size: number }) => Promise<void>;

/** An archive to send: its size and its bytes. */
export interface StoredArchive {
  size: number;
  stream: Readable;
}

/**
 * A place for sandbox bytes, shared by every replica that serves them (the directory store only
 * when one process serves, on PGlite). This is where another back-end goes: an S3 store would
 * spool and check an upload as the others do (`spoolUpload`), send the file to its bucket under
 * the SHA-256, then call `record` with the handle; `open` would stream the object back and check
 * its SHA-256 at the end as the database store does.
 */
export interface SandboxStore {
  /**
   * Streams `body` in, checks it (size limit, SHA-256 = `sha256`, gzip, archive check: see
   * `sandbox-spool.ts` for the errors) and keeps it, then calls `record` (for the database
   * store, in the transaction that writes the bytes: nothing half written). Storing bytes that
   * are there already is fine, concurrently too.
   */
  put(sha256: string, body: Readable, record: RecordSandbox): Promise<PutResult>;
  /** Are the bytes of `sha256` there? */
  has(sha256: string): Promise<boolean>;
  /**
   * The archive's size and a stream of its bytes; null when they are not there. A stream whose
   * bytes turn out not to hash to `sha256` is destroyed with an error rather than ended.
   */
  open(sha256: string): Promise<StoredArchive | null>;
  /**
   * Deletes the bytes of archives whose rows the job-cleaning agent removed (missing ones are
   * fine). The database store has nothing to do: the chunks went with the rows (cascade).
   */
  remove(sha256s: readonly string[]): Promise<void>;
}

/** The store of this database: chunks in PostgreSQL, or files under `<data-dir>/sandboxes` on PGlite. */
export function sandboxStoreFor(
  db: DbHandle,
  config: Pick<Readonly<ServiceConfig>, 'dataDir' | 'sandboxMaxBytes'>,
  checker?: ArchiveChecker | null,
): SandboxStore {
  const root = join(config.dataDir, 'sandboxes');
  if (db.driver === 'pg') return new DatabaseSandboxStore(db, join(root, 'tmp'), config.sandboxMaxBytes, checker);
  return new DirectorySandboxStore(db, root, config.sandboxMaxBytes, checker);
}

/** Archives on disk at `<root>/ab/abcdef…` (see the module comment). */
export class DirectorySandboxStore implements SandboxStore {
  /** Measures each upload before it is kept; null: no check (bytes only). */
  readonly checker: ArchiveChecker | null;

  constructor(
    private readonly db: DbOrHandle,
    readonly root: string,
    readonly maxBytes: number,
    checker?: ArchiveChecker | null,
  ) {
    this.checker = checker === undefined ? defaultChecker(maxBytes) : checker;
  }

  /** Where the archive named `sha256` lives. */
  pathOf(sha256: string): string {
    requireSha256(sha256);
    return join(this.root, sha256.slice(0, 2), sha256);
  }

  /** The archive's size, or null when it is not on disk. */
  async size(sha256: string): Promise<number | null> {
    try {
      const s = await stat(this.pathOf(sha256));
      return s.isFile() ? s.size : null;
    } catch {
      return null;
    }
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.size(sha256)) !== null;
  }

  async open(sha256: string): Promise<StoredArchive | null> {
    const size = await this.size(sha256);
    return size === null ? null : { size, stream: createReadStream(this.pathOf(sha256)) };
  }

  async remove(sha256s: readonly string[]): Promise<void> {
    await Promise.all(sha256s.filter(isSha256).map((sha) => rm(this.pathOf(sha), { force: true })));
  }

  /**
   * The archive is renamed into place before `record` runs: when recording fails (database
   * gone), the bytes stay without a row, and the same upload again records them.
   */
  async put(sha256: string, body: Readable, record: RecordSandbox): Promise<PutResult> {
    const final = this.pathOf(sha256);
    const spooled = await spoolUpload(sha256, body, { tmpDir: join(this.root, 'tmp'), maxBytes: this.maxBytes, checker: this.checker });
    try {
      await mkdir(dirname(final), { recursive: true });
      await rename(spooled.file, final);
    } catch (e) {
      await rm(spooled.file, { force: true });
      throw e;
    }
    await record(this.db, { sha256, size: spooled.size });
    return { sha256, size: spooled.size, problems: spooled.problems };
  }
}
