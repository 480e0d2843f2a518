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
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { WmsError } from '../core/errors.js';
import {
  SANDBOX_CHUNK_BYTES,
  sandboxChunk,
  sandboxChunking,
  storeSandboxChunks,
  type DbOrHandle,
  type SandboxChunking,
} from '../db/index.js';
import type { ArchiveChecker } from './archive-check.js';
import type { PutResult, RecordSandbox, SandboxStore, StoredArchive } from './sandbox-store.js';
import { defaultChecker, requireSha256, spoolUpload } from './sandbox-spool.js';

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
