/**
 * Unpacks a downloaded sandbox (a job's outputs for `wms job output ID --dir D`) without
 * trusting it: the same rules as the pilot (`core/archive-safety.ts`), the same two passes.
 * First list the archive and check every entry (and the destination for symbolic links an
 * entry would be written through); with any problem extract nothing. Then extract with tar in
 * strict mode, owners not preserved, re-checking each entry in tar's filter.
 *
 * The tar glue here is the pilot's (`pilot/sandbox.ts`) line for line: the CLI may not import
 * the pilot, and core/ does no I/O.
 */
import { createReadStream } from 'node:fs';
import { lstat, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { extract as tarExtract, Parser, type ReadEntry } from 'tar';
import {
  ArchiveCheck,
  DEFAULT_UNPACK_LIMITS,
  entryTargets,
  pathPrefixes,
  type ArchiveEntry,
  type ArchiveLimits,
} from '../core/archive-safety.js';
import { CliError } from './errors.js';

export interface UnpackedSandbox {
  /** Entries extracted. */
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
}

function asEntry(e: ReadEntry): ArchiveEntry {
  const entry: ArchiveEntry = { path: e.path, type: e.type, size: e.size };
  if (e.linkpath !== undefined) entry.linkpath = e.linkpath;
  return entry;
}

/** Lists and checks `archive` for unpacking into `dest`; throws only when it cannot be read. */
async function inspect(archive: string, dest: string, limits: ArchiveLimits): Promise<ArchiveCheck> {
  const check = new ArchiveCheck(limits);
  const parents = new Map<string, string>();
  await new Promise<void>((done, fail) => {
    const input = createReadStream(archive);
    let settled = false;
    const finish = (err?: unknown) => {
      if (settled) return;
      settled = true;
      if (err) fail(err);
      else done();
    };
    const parser = new Parser({
      strict: true,
      onReadEntry: (e: ReadEntry) => {
        e.resume();
        if (settled) return;
        const entry = asEntry(e);
        if (check.add(entry) === null) {
          for (const target of entryTargets(entry)) {
            for (const p of pathPrefixes(target)) if (!parents.has(p)) parents.set(p, e.path);
          }
        }
        if (check.limitExceeded) {
          input.destroy();
          finish();
        }
      },
    });
    parser.on('error', finish);
    parser.on('end', () => finish());
    input.on('error', finish);
    input.pipe(parser);
  });
  if (!check.limitExceeded) {
    for (const [prefix, path] of parents) {
      const st = await lstat(join(dest, prefix)).catch(() => null);
      if (st?.isSymbolicLink()) {
        check.record(`path goes through the symbolic link ${prefix} already in the destination: ${path}`);
      }
    }
  }
  return check;
}

/**
 * Unpacks `archive` into `dest` (created if needed) when every entry is safe. Otherwise throws
 * a CliError naming the archive, with one problem line each (the first ten), and writes
 * nothing. `label` names the archive in messages (default: its file name).
 */
export async function unpackSandbox(
  archive: string,
  dest: string,
  opts: { limits?: ArchiveLimits; label?: string } = {},
): Promise<UnpackedSandbox> {
  const limits = opts.limits ?? DEFAULT_UNPACK_LIMITS;
  const label = opts.label ?? basename(archive);
  let check: ArchiveCheck;
  try {
    check = await inspect(archive, dest, limits);
  } catch (e) {
    throw new CliError(`${label} is not a readable tar archive: ${(e as Error).message}`);
  }
  if (check.count > 0) {
    const problems = check.problems.map((message) => ({ message }));
    const more = check.count - check.problems.length;
    if (more > 0) problems.push({ message: `and ${more} more problem${more === 1 ? '' : 's'}` });
    if (check.limitExceeded) problems.push({ message: 'reading stopped at the limit' });
    throw new CliError(`${label}: unsafe archive, nothing unpacked into ${dest}`, problems);
  }

  try {
    await mkdir(dest, { recursive: true });
  } catch (e) {
    throw new CliError(`${dest}: cannot create the directory (${(e as Error).message})`);
  }
  const again = new ArchiveCheck(limits);
  let changed: string | null = null;
  try {
    await tarExtract({
      file: archive,
      cwd: dest,
      strict: true,
      preserveOwner: false,
      filter: (_path, e) => {
        const p = again.add(asEntry(e as ReadEntry));
        if (p !== null) changed ??= p;
        return p === null;
      },
    });
  } catch (e) {
    throw new CliError(`${label} could not be unpacked into ${dest}: ${(e as Error).message}`);
  }
  if (changed !== null) throw new CliError(`${label} changed while it was unpacked: ${changed as string}`);
  return { entries: again.state.entries, bytes: again.state.bytes };
}
