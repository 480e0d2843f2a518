/**
 * The sandbox store on local disk: tar.gz archives named by their SHA-256, kept at
 * `<root>/ab/abcdef…` (two-character fan-out). An upload is streamed to `<root>/tmp/` while it
 * is hashed and counted, checked, then renamed into place (same file system, so the rename is
 * atomic): a reader never sees a partial archive, and a rejected upload leaves nothing behind.
 * The database (`recordSandbox`) holds who owns what; this module only holds bytes.
 *
 * Before the rename, the archive is measured in a child process (`archive-check.ts`): one that
 * would expand beyond the limits a pilot unpacks with (200 times its size, its bytes, 10,000
 * entries) or take longer than `CHECK_SECONDS` to read is refused with 400 and nothing is kept.
 * Its contents (paths, links) are judged where it is unpacked, not here.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { DEFAULT_UNPACK_LIMITS, type ArchiveLimits } from '../core/archive-safety.js';
import { WmsError } from '../core/errors.js';
import { ArchiveChecker } from './archive-check.js';

const SHA256 = /^[0-9a-f]{64}$/;

export function isSha256(s: string): boolean {
  return SHA256.test(s);
}

export interface PutResult {
  size: number;
  /** Problems with the archive's contents that its unpackers will refuse (for the log). */
  problems: string[];
}

/** Wall-clock seconds (and CPU seconds) an upload's check may take. */
export const CHECK_SECONDS = 30;

/** The limits an upload is checked against: those a pilot unpacks with, by default. */
export function uploadCheckLimits(maxBytes: number, over: Partial<ArchiveLimits> = {}): ArchiveLimits {
  return { maxEntries: DEFAULT_UNPACK_LIMITS.maxEntries, maxBytes, maxSeconds: CHECK_SECONDS, ...over };
}

export class SandboxStore {
  /** Measures each upload before it is kept; null: no check (bytes only). */
  readonly checker: ArchiveChecker | null;

  constructor(
    readonly root: string,
    readonly maxBytes: number,
    checker?: ArchiveChecker | null,
  ) {
    this.checker = checker === undefined ? new ArchiveChecker(uploadCheckLimits(maxBytes)) : checker;
  }

  /** The content problems of an acceptable archive; throws when it is refused or cannot be checked. */
  private async check(file: string): Promise<string[]> {
    if (!this.checker) return [];
    let verdict;
    try {
      verdict = await this.checker.check(file);
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

  /** Where the archive named `sha256` lives. */
  pathOf(sha256: string): string {
    if (!isSha256(sha256)) throw new WmsError('WMS_VALIDATION', `"${sha256}" is not a SHA-256`);
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

  /** Removes archives (missing ones are fine): the job-cleaning agent's last step. */
  async remove(sha256s: readonly string[]): Promise<void> {
    await Promise.all(sha256s.filter(isSha256).map((sha) => rm(this.pathOf(sha), { force: true })));
  }

  openRead(sha256: string): ReadStream {
    return createReadStream(this.pathOf(sha256));
  }

  /**
   * Streams `body` into the store under `sha256`. Throws WMS_SANDBOX_TOO_LARGE past `maxBytes`,
   * WMS_SANDBOX_CHECKSUM when the bytes do not hash to `sha256`, WMS_VALIDATION when they are
   * not gzip or when the archive would cost too much to open (see the module comment), and
   * WMS_UNAVAILABLE when it cannot be checked; in every failure the temporary file is removed.
   * An oversized body is left flowing (discarded) rather than destroyed, so that the client
   * still reads the 413.
   */
  async put(sha256: string, body: Readable): Promise<PutResult> {
    const final = this.pathOf(sha256);
    const tmpDir = join(this.root, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, `${randomUUID()}.part`);
    const hash = createHash('sha256');
    let size = 0;
    const head: number[] = [];
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o640 });
    try {
      await new Promise<void>((resolve, reject) => {
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
          if (size > this.maxBytes) {
            cleanup();
            body.resume(); // discard the rest
            reject(tooLarge(this.maxBytes));
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
          out.end((err?: Error | null) => (err ? reject(err) : resolve()));
        };
        body.on('data', onData);
        body.once('end', onEnd);
        body.once('error', onError);
        out.once('error', onError);
        body.resume();
      });
      const digest = hash.digest('hex');
      if (digest !== sha256) {
        throw new WmsError('WMS_SANDBOX_CHECKSUM', `checksum mismatch: the body hashes to ${digest}, not ${sha256}`);
      }
      if (head[0] !== 0x1f || head[1] !== 0x8b) {
        throw new WmsError('WMS_VALIDATION', 'a sandbox must be a gzip-compressed tar archive');
      }
      const problems = await this.check(tmp);
      await mkdir(dirname(final), { recursive: true });
      await rename(tmp, final);
      return { size, problems };
    } catch (e) {
      out.destroy();
      await rm(tmp, { force: true });
      throw e;
    }
  }
}

export function tooLarge(maxBytes: number): WmsError {
  return new WmsError('WMS_SANDBOX_TOO_LARGE', `sandbox larger than the limit of ${maxBytes} bytes`);
}
