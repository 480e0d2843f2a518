/**
 * Sandboxes on the worker node: unpack an input sandbox without trusting it, and pack a job's
 * OutputSandbox files into one tar.gz.
 *
 * `safeUnpack` reads the archive twice. The first pass only lists it and checks every entry
 * with `core/archive-safety.ts` (paths, links, devices, counts, sizes) and the destination for
 * symbolic links an entry would be written through; with any problem nothing is extracted.
 * The second pass extracts with tar in strict mode, owners not preserved, and the same checks
 * again as tar's filter (the file could have changed in between).
 *
 * Both passes stream the same way (`streamTar`): the file is gunzipped here, not by tar, and
 * every decompressed byte is counted against an `ExpansionBudget` (ratio to the archive's size,
 * bytes, wall clock) before tar sees it. Once tar has read the end-of-archive marker nothing
 * more is handed to it (tar buffers what follows by copying, quadratic in its length: 16 MiB of
 * zero padding took 20 s, 64 MiB minutes); the rest is only counted, to the end of the stream.
 * The first limit hit, or the caller's `AbortSignal`, destroys the stream at once.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { basename, join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { create as tarCreate, Parser, Unpack, type ReadEntry } from 'tar';
import {
  ArchiveCheck,
  ArchiveError,
  checkArchiveEntry,
  entryTargets,
  ExpansionBudget,
  isArchiveError,
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

/** Tar options that keep tar from decompressing anything itself (the stream does it, counted). */
const PLAIN_TAR = { strict: true, brotli: false, zstd: false } as const;

/** Gunzip's output chunk: 4 times zlib's default, a quarter of the work per byte in JS. */
const GUNZIP_CHUNK = 64 * 1024;

/** How long a stopped extraction may take to finish the files it has open. */
const WIND_DOWN_MS = 1000;

/** The archive's size and whether it is gzip (by its magic bytes). */
async function sniff(archive: string): Promise<{ size: number; gzip: boolean }> {
  const fh = await open(archive, 'r');
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(2);
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    return { size, gzip: bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b };
  } finally {
    await fh.close();
  }
}

/** A refusal by the budget (the archive's fault), as opposed to a read error. */
function refusal(label: string, problem: string): ArchiveError {
  return new ArchiveError(`unsafe archive ${label}: ${problem}`, [problem]);
}

function interruption(label: string, signal: AbortSignal): ArchiveError {
  const r: unknown = signal.reason;
  const why = r instanceof Error ? r.message : typeof r === 'string' ? r : 'aborted';
  return new ArchiveError(`${label}: unpacking interrupted (${why})`, []);
}

interface StreamOptions {
  label: string;
  budget: ExpansionBudget;
  gzip: boolean;
  signal: AbortSignal | undefined;
  /** After a failure, let tar finish the files it has open (an Unpack) before returning. */
  windDown?: boolean;
}

/**
 * Streams the tar bytes of `archive` into `parser` (see the module comment) and waits for the
 * parser to end (for an Unpack: every file written). Rejects with an ArchiveError on a limit,
 * the deadline or `signal`; with the reader's or tar's own error otherwise. After a failure it
 * ends the parser and waits (briefly) for the files it has open, so that nothing is written
 * once it has returned.
 */
async function streamTar(archive: string, parser: Parser, o: StreamOptions): Promise<void> {
  const { budget, label } = o;
  const stopper = new AbortController();
  const stop = (e: ArchiveError) => {
    if (!stopper.signal.aborted) stopper.abort(e);
  };
  const onAbort = () => stop(interruption(label, o.signal as AbortSignal));
  if (o.signal?.aborted) throw interruption(label, o.signal);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const timeUp = () => stop(refusal(label, budget.timeUp(Infinity) as string));
  const timer = setTimeout(timeUp, budget.msLeft(Date.now()));

  let eof = false;
  let ended = false;
  let parserError: Error | null = null;
  parser.on('eof', () => (eof = true));
  parser.on('error', (e: Error) => (parserError ??= e));
  const parserEnded = new Promise<void>((done) => parser.once('end', () => ((ended = true), done())));

  /** What the consumer threw (Node 20's pipeline reports the source's AbortError instead). */
  let thrown: unknown = null;
  const consume = async (source: AsyncIterable<Buffer>) => {
    try {
      await feed(source);
    } catch (e) {
      thrown ??= e;
      throw e;
    }
  };
  const feed = async (source: AsyncIterable<Buffer>) => {
    let first = true;
    for await (const chunk of source) {
      const problem = budget.expand(chunk.length) ?? budget.timeUp(Date.now());
      if (problem !== null) throw refusal(label, problem);
      if (parserError) throw parserError;
      if (eof || ended) continue; // counted, never buffered by tar
      if (first && o.gzip && chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b) {
        throw refusal(label, 'a gzip stream inside the gzip stream');
      }
      first = false;
      if (!parser.write(chunk) && !eof && !parserError) {
        await once(parser, 'drain', { signal: stopper.signal });
      }
    }
  };
  const input = createReadStream(archive);
  try {
    if (o.gzip) await pipeline(input, createGunzip({ chunkSize: GUNZIP_CHUNK }), consume, { signal: stopper.signal });
    else await pipeline(input, consume, { signal: stopper.signal });
    if (parserError) throw parserError;
    parser.end();
    await Promise.race([parserEnded, once(stopper.signal, 'abort')]);
    if (stopper.signal.aborted) throw stopper.signal.reason;
    if (parserError) throw parserError;
  } catch (e) {
    const reason: unknown = stopper.signal.aborted ? stopper.signal.reason : (thrown ?? e);
    input.destroy();
    if (!ended && o.windDown) {
      // Stop tar where it is: what it has been given is finished (a truncated file at worst),
      // nothing more comes; wait for the files it has open.
      try {
        parser.end();
      } catch {
        // already ended
      }
      let windDown: NodeJS.Timeout | undefined;
      await Promise.race([parserEnded, new Promise((r) => (windDown = setTimeout(r, WIND_DOWN_MS)))]);
      clearTimeout(windDown);
    }
    throw reason;
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
  }
}

/** An error out of `streamTar` as an ArchiveError naming the archive. */
function asArchiveError(e: unknown, label: string, what: string): ArchiveError {
  if (isArchiveError(e)) return e;
  return new ArchiveError(`${label} ${what}: ${(e as Error).message}`, []);
}

/**
 * Lists `archive` (tar, possibly gzipped) and checks every entry; stops reading at the first
 * limit exceeded. Also checks, in `dest` when it exists, that no entry would be written
 * through a symbolic link already there. Throws an ArchiveError when the archive expands
 * beyond the budget, the time is up or `signal` aborts; a read error as it comes.
 */
export async function inspectArchive(
  archive: string,
  dest: string,
  limits: ArchiveLimits,
  opts: { label?: string; signal?: AbortSignal; budget?: ExpansionBudget } = {},
): Promise<ArchiveCheck> {
  const label = opts.label ?? basename(archive);
  const { size, gzip } = await sniff(archive);
  const budget = opts.budget ?? new ExpansionBudget(limits, size, Date.now());
  const check = new ArchiveCheck(limits);
  /** Directories entries are written into, with the first entry that needs each. */
  const parents = new Map<string, string>();
  const limitHit = new AbortController();
  const parser = new Parser({
    ...PLAIN_TAR,
    onReadEntry: (e: ReadEntry) => {
      e.resume();
      if (limitHit.signal.aborted) return;
      const entry = asEntry(e);
      if (check.add(entry) === null) {
        for (const target of entryTargets(entry)) {
          for (const p of pathPrefixes(target)) if (!parents.has(p)) parents.set(p, e.path);
        }
      }
      if (check.limitExceeded) limitHit.abort();
    },
  });
  const signal = opts.signal ? AbortSignal.any([opts.signal, limitHit.signal]) : limitHit.signal;
  try {
    await streamTar(archive, parser, { label, budget, gzip, signal });
  } catch (e) {
    if (!limitHit.signal.aborted) throw e;
    if (opts.signal?.aborted) throw e;
    // Stopped at a limit on entries: the check says which.
  }
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
 * ArchiveError too, and so does an archive that expands beyond `limits.maxRatio` times its
 * size or its bytes limit, or takes longer than `limits.maxSeconds`, in either pass.
 *
 * `signal` stops the unpack where it is (a Kill, the pilot stopping): it rejects with an
 * ArchiveError at once, after tar has closed the files it had open; what was extracted so far
 * stays in `dest` for the caller to remove.
 */
export async function safeUnpack(
  archive: string,
  dest: string,
  limits: ArchiveLimits,
  label = basename(archive),
  signal?: AbortSignal,
): Promise<UnpackResult> {
  let budget: ExpansionBudget;
  let gzip: boolean;
  let check: ArchiveCheck;
  try {
    const head = await sniff(archive);
    gzip = head.gzip;
    budget = new ExpansionBudget(limits, head.size, Date.now());
    check = await inspectArchive(archive, dest, limits, { label, budget, ...(signal ? { signal } : {}) });
  } catch (e) {
    throw asArchiveError(e, label, 'is not a readable tar archive');
  }
  const problem = check.describe(label);
  if (problem !== null) throw new ArchiveError(problem, check.problems);

  await mkdir(dest, { recursive: true });
  const again = new ArchiveCheck(limits);
  let changed: string | null = null;
  const unpack = new Unpack({
    ...PLAIN_TAR,
    cwd: dest,
    preserveOwner: false,
    filter: (_path, e) => {
      const p = again.add(asEntry(e as ReadEntry));
      if (p !== null) changed ??= p;
      return p === null;
    },
  });
  try {
    await streamTar(archive, unpack, { label, budget: budget.nextPass(), gzip, signal, windDown: true });
  } catch (e) {
    throw asArchiveError(e, label, 'could not be unpacked');
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
