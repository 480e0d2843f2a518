/**
 * Sandboxes on the worker node: unpack an input sandbox without trusting it, and pack a job's
 * OutputSandbox files into one tar.gz.
 *
 * `safeUnpack` reads the archive twice, streamed through one `ExpansionBudget`
 * (`io/tar-stream.ts` says how): the first pass lists it and checks every entry with
 * `core/archive-safety.ts` (paths, links, devices, counts, sizes) and the destination for
 * symbolic links an entry would be written through; with any problem nothing is extracted.
 * The second pass extracts with the same checks again as tar's filter (the file could have
 * changed in between). Every failure is an `ArchiveError` naming the archive.
 */
import { createWriteStream } from 'node:fs';
import { lstat, readdir, readlink, stat } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { Pack } from 'tar';
import { ArchiveError, checkArchiveEntry, isArchiveError, normalizeArchivePath, type ArchiveLimits } from '../core/archive-safety.js';
import { sha256File } from '../io/file-hash.js';
import { unpackArchive, type UnpackFailure } from '../io/tar-stream.js';

export interface UnpackResult {
  /** Entries extracted. */
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
}

/** An error out of `io/tar-stream.ts` as an ArchiveError naming the archive. */
function asArchiveError(e: unknown, label: string, what: string): ArchiveError {
  if (isArchiveError(e)) return e;
  return new ArchiveError(`${label} ${what}: ${(e as Error).message}`, []);
}

/** A failure of `unpackArchive` as the pilot words it: an ArchiveError naming the archive. */
function pilotUnpackError(f: UnpackFailure, label: string): Error {
  switch (f.stage) {
    case 'read':
      return asArchiveError(f.error, label, 'is not a readable tar archive');
    case 'unsafe':
      return new ArchiveError(f.check.describe(label) as string, f.check.problems);
    case 'mkdir':
      return f.error as Error;
    case 'extract':
      return asArchiveError(f.error, label, 'could not be unpacked');
    case 'changed':
      return new ArchiveError(`${label} changed while it was unpacked: ${f.problem}`, [f.problem]);
  }
}

/**
 * Unpacks `archive` into `dest` (created if needed) when every entry is safe, else throws an
 * `ArchiveError` naming the problems (the first ten) and extracts nothing. `label` names the
 * archive in messages (default: its file name). A file that cannot be read as tar throws an
 * ArchiveError too, and so does an archive that expands beyond `limits.maxRatio` times its
 * size or its bytes limit, or takes longer than `limits.maxSeconds`, in either pass.
 *
 * `signal` stops the unpack where it is (a Kill, the pilot stopping): it rejects with an
 * ArchiveError at once, after tar has closed the files it had open; what was extracted so far
 * stays in `dest` for the caller to remove.
 */
export function safeUnpack(
  archive: string,
  dest: string,
  limits: ArchiveLimits,
  label = basename(archive),
  signal?: AbortSignal,
): Promise<UnpackResult> {
  return unpackArchive(archive, dest, limits, { label, signal }, (f) => pilotUnpackError(f, label));
}

export interface PackedOutputs {
  sha256: string;
  size: number;
  /** Files and links packed (paths relative to the job dir), directories left out. */
  files: string[];
  /**
   * Patterns that matched nothing packable, and links that were left out because they point
   * out of the job dir (`name -> target`).
   */
  missing: string[];
}

const GLOB = /[*?]/;

/** A glob segment (`*`, `?`; no `/`) as a regex. `*` and `?` do not match a leading dot. */
function segmentRegex(segment: string): RegExp {
  let re = '';
  for (const c of segment) {
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Relative paths under `root` matching `segments`, walking real directories only. */
async function expand(root: string, base: string, segments: string[]): Promise<string[]> {
  const [head, ...rest] = segments;
  if (head === undefined) return [base];
  const dir = join(root, base);
  let names: string[];
  if (GLOB.test(head)) {
    const re = segmentRegex(head);
    const all = await readdir(dir).catch(() => [] as string[]);
    names = all.filter((n) => re.test(n) && (head.startsWith('.') || !n.startsWith('.'))).sort();
  } else {
    names = [head];
  }
  const out: string[] = [];
  for (const name of names) {
    const rel = base === '' ? name : `${base}/${name}`;
    const st = await lstat(join(root, rel)).catch(() => null);
    if (!st) continue;
    if (rest.length === 0) out.push(rel);
    else if (st.isDirectory()) out.push(...(await expand(root, rel, rest)));
  }
  return out;
}

/**
 * Packs the job's OutputSandbox into `out` (tar.gz): each pattern is a file name or a simple
 * glob (`*`, `?` within one path segment) relative to `workDir`; a directory is packed with
 * everything in it. Patterns that are absolute, climb with `..` or name an `LFN:` are never
 * followed and count as missing; directories are entered only when they are real directories;
 * a symbolic link is packed as a link only when it stays inside the job dir. Answers null when
 * nothing matched.
 */
export async function packOutputs(workDir: string, patterns: string[], out: string): Promise<PackedOutputs | null> {
  const root = resolve(workDir);
  const outRel = relative(root, resolve(out));
  const entries = new Map<string, 'dir' | 'file'>();
  const missing: string[] = [];

  const add = async (rel: string): Promise<boolean> => {
    if (rel === outRel || entries.has(rel)) return entries.has(rel);
    const abs = join(root, rel);
    const st = await lstat(abs).catch(() => null);
    if (!st) return false;
    if (st.isSymbolicLink()) {
      const target = await readlink(abs);
      if (
        checkArchiveEntry(
          { path: rel, type: 'SymbolicLink', linkpath: target, size: 0 },
          { entries: 0, bytes: 0 },
          { maxEntries: 1, maxBytes: 0 },
        ) !== null
      ) {
        missing.push(`${rel} -> ${target}`);
        return false;
      }
      entries.set(rel, 'file');
      return true;
    }
    if (st.isFile()) {
      entries.set(rel, 'file');
      return true;
    }
    if (!st.isDirectory()) return false; // sockets, FIFOs, devices
    entries.set(rel, 'dir');
    for (const name of (await readdir(abs)).sort()) await add(`${rel}/${name}`);
    return true;
  };

  for (const raw of patterns) {
    const pattern = raw.trim();
    const name = normalizeArchivePath(pattern);
    const outside =
      /^lfn:/i.test(pattern) || name === '.' || name.startsWith('/') || name.startsWith('..') || pattern.split(/[\\/]/).includes('..');
    let found = false;
    if (!outside) {
      for (const rel of await expand(root, '', name.split('/'))) {
        if (await add(rel)) found = true;
      }
    }
    if (!found) missing.push(pattern);
  }
  if (entries.size === 0) return null;

  // Directories before their contents.
  const list = [...entries.keys()].sort();
  await writeTarGz(root, list, out);
  const { size } = await stat(out);
  return {
    sha256: await sha256File(out),
    size,
    files: list.filter((p) => entries.get(p) === 'file'),
    missing,
  };
}

/**
 * Writes `list` (paths relative to `root`, not followed, directories without their contents)
 * as a tar.gz to `out`. Rejects on the first failure (ENOSPC while writing, a file tar cannot
 * read), but only once every file tar opened is closed again and `out`'s descriptor too.
 *
 * Why not tar's own `create({ file })`: when its output stream fails, tar 7 leaves the entry
 * it is reading paused, waiting for a drain that never comes, its file open for good: the
 * deleted output of a finished job then keeps a full disk full (issue 10). So tar runs one
 * entry at a time (`jobs: 1`: at most one file open), the gzip and the file are ours, and after
 * a failure the entry being read is read to its end and dropped (not compressed) while no new
 * entry is opened (the filter refuses them), so that tar closes what it opened itself.
 */
async function writeTarGz(root: string, list: string[], out: string): Promise<void> {
  let failure: unknown = null;
  const pack = new Pack({ cwd: root, portable: true, noDirRecurse: true, follow: false, jobs: 1, filter: () => failure === null });
  const gzip = createGzip();
  const written = pipeline(gzip, createWriteStream(out));
  const packed = new Promise<void>((done) => {
    pack.once('end', done);
    pack.on('error', (e: unknown) => {
      failure ??= e;
      gzip.destroy(e as Error);
      done(); // the entry that failed has closed its file; no other one is open (jobs: 1)
    });
  });
  const fail = (e: unknown) => {
    failure ??= e;
    pack.resume(); // read and drop the rest of the current entry, so that tar closes it
  };
  written.catch(fail);
  pack.on('data', (chunk: Buffer) => {
    if (failure !== null) return;
    if (!gzip.write(chunk)) {
      pack.pause();
      gzip.once('drain', () => pack.resume());
    }
  });
  pack.once('end', () => {
    if (failure === null) gzip.end();
  });
  for (const p of list) pack.add(p);
  pack.end();
  await packed;
  await written.catch(() => undefined);
  if (failure !== null) throw failure;
}
