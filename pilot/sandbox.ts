/**
 * Sandboxes on the worker node: unpack an input sandbox without trusting it, and pack a job's
 * OutputSandbox files into one tar.gz.
 *
 * `safeUnpack` reads the archive twice. The first pass only lists it and checks every entry
 * with `core/archive-safety.ts` (paths, links, devices, counts, sizes) and the destination for
 * symbolic links an entry would be written through; with any problem nothing is extracted.
 * The second pass extracts with tar in strict mode, owners not preserved, and the same checks
 * again as tar's filter (the file could have changed in between).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readlink, stat } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { create as tarCreate, extract as tarExtract, Parser, type ReadEntry } from 'tar';
import {
  ArchiveCheck,
  ArchiveError,
  checkArchiveEntry,
  entryTargets,
  normalizeArchivePath,
  pathPrefixes,
  type ArchiveEntry,
  type ArchiveLimits,
} from '../core/archive-safety.js';

export interface UnpackResult {
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

/**
 * Lists `archive` (tar, possibly gzipped) and checks every entry; stops reading at the first
 * limit exceeded. Also checks, in `dest` when it exists, that no entry would be written
 * through a symbolic link already there. Throws only when the archive cannot be read.
 */
export async function inspectArchive(archive: string, dest: string, limits: ArchiveLimits): Promise<ArchiveCheck> {
  const check = new ArchiveCheck(limits);
  /** Directories entries are written into, with the first entry that needs each. */
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
 * Unpacks `archive` into `dest` (created if needed) when every entry is safe, else throws an
 * `ArchiveError` naming the problems (the first ten) and extracts nothing. `label` names the
 * archive in messages (default: its file name). A file that cannot be read as tar throws an
 * ArchiveError too.
 */
export async function safeUnpack(archive: string, dest: string, limits: ArchiveLimits, label = basename(archive)): Promise<UnpackResult> {
  let check: ArchiveCheck;
  try {
    check = await inspectArchive(archive, dest, limits);
  } catch (e) {
    throw new ArchiveError(`${label} is not a readable tar archive: ${(e as Error).message}`, []);
  }
  const problem = check.describe(label);
  if (problem !== null) throw new ArchiveError(problem, check.problems);

  await mkdir(dest, { recursive: true });
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
    throw new ArchiveError(`${label} could not be unpacked: ${(e as Error).message}`, []);
  }
  if (changed !== null) {
    throw new ArchiveError(`${label} changed while it was unpacked: ${changed as string}`, [changed]);
  }
  return { entries: again.state.entries, bytes: again.state.bytes };
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
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
      if (checkArchiveEntry({ path: rel, type: 'SymbolicLink', linkpath: target, size: 0 }, { entries: 0, bytes: 0 }, { maxEntries: 1, maxBytes: 0 }) !== null) {
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
    const outside = /^lfn:/i.test(pattern) || name === '.' || name.startsWith('/') || name.startsWith('..') || pattern.split(/[\\/]/).includes('..');
    let found = false;
    if (!outside) {
      for (const rel of await expand(root, '', name.split('/'))) {
        if (await add(rel)) found = true;
      }
    }
    if (!found) missing.push(pattern);
  }
  if (entries.size === 0) return null;

  // Directories before their contents; `@name` would make tar read another archive.
  const list = [...entries.keys()].sort();
  await tarCreate(
    { gzip: true, cwd: root, file: out, portable: true, noDirRecurse: true, follow: false },
    list.map((p) => (p.startsWith('@') ? `./${p}` : p)),
  );
  const { size } = await stat(out);
  return {
    sha256: await sha256File(out),
    size,
    files: list.filter((p) => entries.get(p) === 'file'),
    missing,
  };
}
