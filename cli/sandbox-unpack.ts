/**
 * Unpacks a downloaded sandbox (a job's outputs for `wms job output ID --dir D`) without
 * trusting it: the same rules as the pilot (`core/archive-safety.ts`), the same two passes
 * through the same code (`io/tar-stream.ts` `unpackArchive`). First list the archive and check every entry
 * (and the destination for symbolic links an entry would be written through); with any
 * problem extract nothing. Then extract, re-checking each entry in tar's filter.
 *
 * Both passes stream the archive through an `ExpansionBudget`, the first limit stopping the
 * stream at once. A payload wrote these outputs: an archive that expands beyond 200 times its
 * size, or takes longer than 60 s, is refused rather than pinning the user's terminal. What is
 * the CLI's own here: the errors, as `CliError`s with one line per problem.
 */
import { basename } from 'node:path';
import { DEFAULT_UNPACK_LIMITS, isArchiveError, type ArchiveLimits } from '../core/archive-safety.js';
import { unpackArchive, type UnpackFailure } from '../io/tar-stream.js';
import { CliError } from './errors.js';

export interface UnpackedSandbox {
  /** Entries extracted. */
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
}

/** An error out of the stream as a CliError naming the archive. */
function cliError(e: unknown, what: string): CliError {
  if (isArchiveError(e)) return new CliError(e.message);
  return new CliError(`${what}: ${(e as Error).message}`);
}

/** A failure of `unpackArchive` as the CLI words it: one line, then one per problem. */
function cliUnpackError(f: UnpackFailure, label: string, dest: string): CliError {
  switch (f.stage) {
    case 'read':
      return cliError(f.error, `${label} is not a readable tar archive`);
    case 'unsafe': {
      const { check } = f;
      const problems = check.problems.map((message) => ({ message }));
      const more = check.count - check.problems.length;
      if (more > 0) problems.push({ message: `and ${more} more problem${more === 1 ? '' : 's'}` });
      if (check.limitExceeded) problems.push({ message: 'reading stopped at the limit' });
      return new CliError(`${label}: unsafe archive, nothing unpacked into ${dest}`, problems);
    }
    case 'mkdir':
      return new CliError(`${dest}: cannot create the directory (${(f.error as Error).message})`);
    case 'extract':
      if (isArchiveError(f.error)) return new CliError(`${f.error.message}; what was unpacked before it stopped is in ${dest}`);
      return cliError(f.error, `${label} could not be unpacked into ${dest}`);
    case 'changed':
      return new CliError(`${label} changed while it was unpacked: ${f.problem}`);
  }
}

/**
 * Unpacks `archive` into `dest` (created if needed) when every entry is safe. Otherwise throws
 * a CliError naming the archive, with one problem line each (the first ten), and writes
 * nothing. `label` names the archive in messages (default: its file name). An archive that
 * expands beyond its budget or takes too long is refused the same way, in either pass (in the
 * second, what was written so far stays: the message says so). `signal` stops it where it is.
 */
export function unpackSandbox(
  archive: string,
  dest: string,
  opts: { limits?: ArchiveLimits; label?: string; signal?: AbortSignal } = {},
): Promise<UnpackedSandbox> {
  const label = opts.label ?? basename(archive);
  return unpackArchive(archive, dest, opts.limits ?? DEFAULT_UNPACK_LIMITS, { label, signal: opts.signal }, (f) =>
    cliUnpackError(f, label, dest),
  );
}
