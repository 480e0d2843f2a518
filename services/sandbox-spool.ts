/**
 * The first half of every sandbox upload, whatever store keeps the bytes afterwards: the body
 * is streamed to a private temporary file while it is hashed and counted, then checked. The
 * caller gets the file (to rename into place, or to copy into the database, then remove); a
 * refused upload leaves nothing behind.
 *
 * The checks, in order: at most `maxBytes` (413 WMS_SANDBOX_TOO_LARGE, the rest of the body
 * discarded so that the client still reads the answer), hashes to its name (400
 * WMS_SANDBOX_CHECKSUM), starts as gzip (400 WMS_VALIDATION), and is measured in a child process
 * (`archive-check.ts`): one that would expand beyond the limits a pilot unpacks with (200 times
 * its size, its bytes, 10,000 entries) or take longer than `CHECK_SECONDS` to read is refused
 * with 400 WMS_VALIDATION; 503 WMS_UNAVAILABLE when it cannot be checked. Its contents (paths,
 * links) are judged where it is unpacked, not here.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { DEFAULT_UNPACK_LIMITS, type ArchiveLimits } from '../core/archive-safety.js';
import { WmsError } from '../core/errors.js';
import { ArchiveChecker } from './archive-check.js';

const SHA256 = /^[0-9a-f]{64}$/;

export function isSha256(s: string): boolean {
  return SHA256.test(s);
}

/** 400 unless `sha256` is a lower-case hex SHA-256. */
export function requireSha256(sha256: string): void {
  if (!isSha256(sha256)) throw new WmsError('WMS_VALIDATION', `"${sha256}" is not a SHA-256`);
}

/** Wall-clock seconds (and CPU seconds) an upload's check may take. */
export const CHECK_SECONDS = 30;

/** The limits an upload is checked against: those a pilot unpacks with, by default. */
export function uploadCheckLimits(maxBytes: number, over: Partial<ArchiveLimits> = {}): ArchiveLimits {
  return { maxEntries: DEFAULT_UNPACK_LIMITS.maxEntries, maxBytes, maxSeconds: CHECK_SECONDS, ...over };
}

export function tooLarge(maxBytes: number): WmsError {
  return new WmsError('WMS_SANDBOX_TOO_LARGE', `sandbox larger than the limit of ${maxBytes} bytes`);
}

/** A checked upload in its temporary file, which the caller must move or remove. */
export interface Spooled {
  file: string;
  size: number;
  /** Problems with the archive's contents that its unpackers will refuse (for the log). */
  problems: string[];
}

/** Where uploads are spooled, their limit and their checker. */
export interface SpoolOptions {
  tmpDir: string;
  maxBytes: number;
  /** Measures each upload; null: no check (bytes only). */
  checker: ArchiveChecker | null;
}

/** The checker for uploads of at most `maxBytes` (the default of both stores). */
export function defaultChecker(maxBytes: number): ArchiveChecker {
  return new ArchiveChecker(uploadCheckLimits(maxBytes));
}

/** The content problems of an acceptable archive; throws when it is refused or cannot be checked. */
async function check(checker: ArchiveChecker | null, file: string): Promise<string[]> {
  if (!checker) return [];
  let verdict;
  try {
    verdict = await checker.check(file);
  } catch (e) {
    throw new WmsError('WMS_UNAVAILABLE', 'the sandbox could not be checked, nothing was stored: retry later (the server log says why)', {
      retryable: true,
      cause: e,
    });
  }
  if (verdict.refused !== null) {
    throw new WmsError('WMS_VALIDATION', `unsafe sandbox archive: it ${verdict.refused}; nothing was stored`);
  }
  return verdict.problems;
}

/** What was seen of a body while it was copied. */
interface Copied {
  size: number;
  digest: string;
  /** Its first two bytes (the gzip magic number when it is one). */
  head: number[];
}

/**
 * Copies `body` into `out`, hashing and counting; rejects with WMS_SANDBOX_TOO_LARGE past
 * `maxBytes` (leaving the body flowing, discarded).
 */
function copyBody(body: Readable, out: Writable, maxBytes: number): Promise<Copied> {
  const hash = createHash('sha256');
  const head: number[] = [];
  let size = 0;
  return new Promise<Copied>((resolve, reject) => {
    const cleanup = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      out.off('error', onError);
    };
    const onError = (e: unknown) => {
      cleanup();
      reject(e);
    };
    const onData = (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += buf.length;
      if (size > maxBytes) {
        cleanup();
        body.resume(); // discard the rest
        reject(tooLarge(maxBytes));
        return;
      }
      for (let i = 0; head.length < 2 && i < buf.length; i++) head.push(buf[i] as number);
      hash.update(buf);
      if (!out.write(buf)) {
        body.pause();
        out.once('drain', () => body.resume());
      }
    };
    const onEnd = () => {
      cleanup();
      out.end((err?: Error | null) => (err ? reject(err) : resolve({ size, digest: hash.digest('hex'), head })));
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    out.once('error', onError);
    body.resume();
  });
}

/**
 * Streams `body` to a new file of `tmpDir` (mode 0640, in a directory of mode 0700) and checks
 * it (see the module comment). On success the file is the caller's; on any failure it is removed.
 */
export async function spoolUpload(sha256: string, body: Readable, o: SpoolOptions): Promise<Spooled> {
  requireSha256(sha256);
  await mkdir(o.tmpDir, { recursive: true, mode: 0o700 });
  const file = join(o.tmpDir, `${randomUUID()}.part`);
  const out = createWriteStream(file, { flags: 'wx', mode: 0o640 });
  try {
    const copied = await copyBody(body, out, o.maxBytes);
    if (copied.digest !== sha256) {
      throw new WmsError('WMS_SANDBOX_CHECKSUM', `checksum mismatch: the body hashes to ${copied.digest}, not ${sha256}`);
    }
    if (copied.head[0] !== 0x1f || copied.head[1] !== 0x8b) {
      throw new WmsError('WMS_VALIDATION', 'a sandbox must be a gzip-compressed tar archive');
    }
    return { file, size: copied.size, problems: await check(o.checker, file) };
  } catch (e) {
    out.destroy();
    await rm(file, { force: true });
    throw e;
  }
}
