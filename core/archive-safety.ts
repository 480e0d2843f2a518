/**
 * Which entries of a sandbox archive may be unpacked: the rules shared by the pilot (input
 * sandboxes) and the CLI (`wms job output`). Pure: the callers list the archive with tar, feed
 * every entry here, and extract only when no entry had a problem.
 *
 * An entry is refused when
 * - its path is absolute (`/etc/passwd`, `C:/x`), holds a `..` segment, or goes through a
 *   symbolic link declared earlier in the same archive;
 * - it is a symbolic link whose target is absolute, uses `..` after a name (`a/../b`: the
 *   kernel resolves `a` first, and `a` may itself be a link), or climbs above the directory;
 * - it is a hard link whose target is absolute or holds `..` (hard-link targets are read from
 *   the top of the archive, not from the link's directory);
 * - it is a device or a FIFO, or a type tar itself would skip (sparse files, volume headers);
 * - it is one entry too many, or one byte too many once unpacked.
 *
 * Backslashes count as separators, as tar counts them when it looks for `..`, so `..\x` is
 * refused here rather than half-way through an extraction.
 *
 * Entries are not the whole cost of opening an archive: a few KiB of gzip can inflate to
 * gigabytes of zero blocks after the end-of-archive marker, which no entry accounts for. So the
 * readers also count every byte the archive expands to while it streams (`ExpansionBudget`):
 * beyond `limits.maxRatio` times the archive's own size (past a floor that lets small archives
 * through), beyond the entries' bytes plus tar's own overhead, or beyond `limits.maxSeconds`
 * of wall clock, reading stops at once with the reason.
 */

/** One archive entry as node-tar's ReadEntry describes it. */
export interface ArchiveEntry {
  path: string;
  /** node-tar's type name: File, OldFile, ContiguousFile, Directory, SymbolicLink, Link, ... */
  type: string;
  linkpath?: string;
  size: number;
}

export interface ArchiveLimits {
  maxEntries: number;
  /** Bytes of file content once unpacked (the sum of the entries' sizes). */
  maxBytes: number;
  /**
   * Bytes the archive may expand to per byte of its own size, counted while it streams,
   * padding and trailing data included (default `DEFAULT_MAX_RATIO`, 200). Archives that
   * expand to less than `RATIO_FLOOR_BYTES` are not held to it.
   */
  maxRatio?: number;
  /** Wall-clock seconds one unpack may take, listing and extraction together (default 60). */
  maxSeconds?: number;
}

/**
 * What a scan has seen so far; `checkArchiveEntry` updates it. `symlinks` (normalized paths
 * of the links seen) lets it refuse entries that would be written through one; it is created
 * on first use when absent.
 */
export interface ArchiveState {
  entries: number;
  bytes: number;
  symlinks?: Set<string>;
}

/** An archive refused or unreadable; `problems` lists the first problems found, in words. */
export class ArchiveError extends Error {
  constructor(
    message: string,
    readonly problems: readonly string[],
  ) {
    super(message);
    this.name = 'ArchiveError';
  }
}

/** True for an ArchiveError (by name, so it holds across bundles). */
export function isArchiveError(e: unknown): e is ArchiveError {
  return e instanceof Error && e.name === 'ArchiveError';
}

/** Limits used when the caller has none (the CLI unpacking a job's outputs). */
export const DEFAULT_UNPACK_LIMITS: Readonly<ArchiveLimits> = Object.freeze({
  maxEntries: 10_000,
  maxBytes: 1024 * 1024 * 1024,
});

/** Expansion ratio allowed when the limits name none: gzip of real files stays far below. */
export const DEFAULT_MAX_RATIO = 200;

/** Seconds an unpack may take when the limits name none. */
export const DEFAULT_MAX_SECONDS = 60;

/**
 * Archives expanding to less than this are never refused for their ratio: tar's own zero
 * blocks (10 KiB for an empty archive) compress to about 50 bytes, a ratio near 200 already.
 */
export const RATIO_FLOOR_BYTES = 1024 * 1024;

/**
 * Tar's own bytes allowed per entry on top of its content: the 512-byte header, padding to
 * the next block, a pax or GNU long-name header with its body.
 */
export const ENTRY_OVERHEAD_BYTES = 4096;

/** Tar's own bytes allowed per archive: the end-of-archive marker and record padding. */
export const ARCHIVE_OVERHEAD_BYTES = 64 * 1024;

/** At most this many problems are named in one message; the rest are counted. */
export const MAX_REPORTED_PROBLEMS = 10;

/** Header-only entries: consumed by tar to describe the next entry, never unpacked. */
const META_TYPES = new Set([
  'ExtendedHeader',
  'GlobalExtendedHeader',
  'OldExtendedHeader',
  'NextFileHasLongPath',
  'NextFileHasLongLinkpath',
  'OldGnuLongPath',
]);
const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const DEVICE_TYPES = new Set(['CharacterDevice', 'BlockDevice', 'FIFO']);

/** A path with a root: `/x`, `//host/x`, `\x`, `C:x`, `C:/x`. */
function isAbsolute(path: string): boolean {
  return /^([A-Za-z]:|[\\/])/.test(path);
}

function segments(path: string): string[] {
  return path.split(/[\\/]+/).filter((s) => s !== '' && s !== '.');
}

/**
 * The lexical normal form of an archive path: backslashes read as `/`, empty and `.` segments
 * dropped, `name/..` pairs folded, a trailing `/` removed. Leading `..` segments stay (the path
 * leaves its directory); an absolute path keeps one leading `/`. The empty path is `.`.
 */
export function normalizeArchivePath(path: string): string {
  const absolute = isAbsolute(path);
  const out: string[] = [];
  for (const s of segments(path.replace(/^[A-Za-z]:/, ''))) {
    if (s === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else if (s === '..' && absolute)
      continue; // `/..` is `/`
    else out.push(s);
  }
  const body = out.join('/');
  if (absolute) return `/${body}`;
  return body === '' ? '.' : body;
}

/** The proper prefixes of a normalized relative path: `a/b/c` → `a`, `a/b`. */
export function pathPrefixes(normalized: string): string[] {
  const parts = normalized.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

/**
 * The problem with one archive entry, in words, or null when it may be unpacked. Counts the
 * entry into `state` (entries, bytes, symbolic links seen). Limits are reported first: once
 * one is exceeded every further entry answers the same, and a caller may stop reading.
 */
export function checkArchiveEntry(entry: ArchiveEntry, state: ArchiveState, limits: ArchiveLimits): string | null {
  if (META_TYPES.has(entry.type)) return null;
  state.entries += 1;
  if (FILE_TYPES.has(entry.type)) state.bytes += Math.max(0, entry.size);
  if (state.entries > limits.maxEntries) return `more than ${limits.maxEntries} entries`;
  if (state.bytes > limits.maxBytes) return `more than ${limits.maxBytes} bytes unpacked`;

  const symlinks = (state.symlinks ??= new Set());
  const { path, type } = entry;
  const name = normalizeArchivePath(path);

  const pathProblem = problemWithPath(path, name, symlinks);
  if (pathProblem) return pathProblem;
  if (DEVICE_TYPES.has(type)) return `device or fifo entry ${path}`;

  if (type === 'SymbolicLink') {
    symlinks.add(name);
    return problemWithSymlink(path, name, entry.linkpath);
  }
  // A later entry of another type replaces the link on disk (tar unlinks it first).
  symlinks.delete(name);
  if (type === 'Link') return problemWithHardLink(path, entry.linkpath, symlinks);
  if (type === 'Directory') return null;
  if (FILE_TYPES.has(type)) {
    return name === '.' ? `file entry ${path} would replace the directory itself` : null;
  }
  return `unsupported entry type ${type}: ${path}`;
}

function problemWithPath(path: string, name: string, symlinks: Set<string>): string | null {
  if (path === '') return 'entry without a path';
  if (path.includes('\0')) return `path with a NUL character: ${JSON.stringify(path)}`;
  if (isAbsolute(path)) return `absolute path ${path}`;
  if (name === '..' || name.startsWith('../')) return `path leaves the directory: ${path}`;
  if (segments(path).includes('..')) return `path contains '..': ${path}`;
  const through = pathPrefixes(name).find((p) => symlinks.has(p));
  if (through !== undefined) return `path goes through the symbolic link ${through}: ${path}`;
  return null;
}

function problemWithSymlink(path: string, name: string, target: string | undefined): string | null {
  if (target === undefined || target === '') return `link ${path} has no target`;
  if (isAbsolute(target)) return `link ${path} -> ${target} escapes the directory (absolute target)`;
  const parts = segments(target);
  const ups = parts.findIndex((s) => s !== '..');
  const leading = ups < 0 ? parts.length : ups;
  if (parts.slice(leading).includes('..')) {
    return `link ${path} -> ${target} uses '..' after a name (only leading '..' are allowed)`;
  }
  const depth = name === '.' ? 0 : name.split('/').length - 1;
  if (leading > depth) return `link ${path} -> ${target} escapes the directory`;
  return null;
}

function problemWithHardLink(path: string, target: string | undefined, symlinks: Set<string>): string | null {
  if (target === undefined || target === '') return `hard link ${path} has no target`;
  if (isAbsolute(target)) return `hard link ${path} => ${target} points outside the directory`;
  const name = normalizeArchivePath(target);
  if (segments(target).includes('..')) return `hard link ${path} => ${target} leaves the directory`;
  if (name === '.') return `hard link ${path} => ${target} points at the directory itself`;
  const through = pathPrefixes(name).find((p) => symlinks.has(p));
  if (through !== undefined) return `hard link ${path} => ${target} goes through the symbolic link ${through}`;
  return null;
}

/**
 * A whole scan: feeds entries to `checkArchiveEntry`, keeps the first problems and counts the
 * rest, and says when a limit was exceeded (the caller stops reading there).
 */
export class ArchiveCheck {
  readonly state: ArchiveState = { entries: 0, bytes: 0, symlinks: new Set() };
  /** The first `MAX_REPORTED_PROBLEMS` problems. */
  readonly problems: string[] = [];
  /** All problems found. */
  count = 0;
  limitExceeded = false;

  constructor(readonly limits: ArchiveLimits) {}

  /** Checks one entry; answers its problem (also recorded) or null. */
  add(entry: ArchiveEntry): string | null {
    const problem = checkArchiveEntry(entry, this.state, this.limits);
    if (problem === null) return null;
    if (this.state.entries > this.limits.maxEntries || this.state.bytes > this.limits.maxBytes) {
      if (this.limitExceeded) return problem;
      this.limitExceeded = true;
    }
    this.record(problem);
    return problem;
  }

  /** Records a problem found elsewhere (on the disk the archive would be unpacked to). */
  record(problem: string): void {
    this.count += 1;
    if (this.problems.length < MAX_REPORTED_PROBLEMS) this.problems.push(problem);
  }

  /** One message naming the archive and its problems, or null when there are none. */
  describe(archive: string): string | null {
    if (this.count === 0) return null;
    const more = this.count - this.problems.length;
    const tail = more > 0 ? ` (and ${more} more problem${more === 1 ? '' : 's'})` : '';
    const stop = this.limitExceeded ? '; reading stopped at the limit' : '';
    return `unsafe archive ${archive}: ${this.problems.join('; ')}${tail}${stop}`;
  }
}

/** The relative path an entry is written to (normalized), for callers that check the disk. */
export function entryTargets(entry: ArchiveEntry): string[] {
  const out = [normalizeArchivePath(entry.path)];
  if (entry.type === 'Link' && entry.linkpath) out.push(normalizeArchivePath(entry.linkpath));
  return out;
}

/**
 * The most an archive of `archiveSize` bytes may expand to under `limits`: the entries' bytes
 * plus tar's overhead, and (past `RATIO_FLOOR_BYTES`) `maxRatio` times its size.
 */
export function expansionLimit(limits: ArchiveLimits, archiveSize: number): { bytes: number; byRatio: boolean } {
  const bySize = limits.maxBytes + limits.maxEntries * ENTRY_OVERHEAD_BYTES + ARCHIVE_OVERHEAD_BYTES;
  const ratio = limits.maxRatio ?? DEFAULT_MAX_RATIO;
  const byRatio = Math.max(RATIO_FLOOR_BYTES, ratio * Math.max(0, archiveSize));
  return byRatio < bySize ? { bytes: byRatio, byRatio: true } : { bytes: bySize, byRatio: false };
}

/** `limits.maxSeconds` or the default, in milliseconds. */
export function unpackTimeLimitMs(limits: ArchiveLimits): number {
  return (limits.maxSeconds ?? DEFAULT_MAX_SECONDS) * 1000;
}

function secondsText(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

/**
 * What one unpack may still spend: the bytes the archive expands to and the wall clock. The
 * reader counts each decompressed chunk with `expand` (every byte: entries, padding after the
 * end-of-archive marker, trailing garbage) and asks `timeUp` as it goes (and on a timer, for a
 * read that does not come back); the first problem is the reason to stop. One budget serves
 * one pass over the archive; `nextPass` starts another with the same deadline. Pure: the
 * caller says what time it is.
 */
export class ExpansionBudget {
  /** Bytes expanded so far in this pass. */
  expanded = 0;
  readonly limit: number;
  private readonly byRatio: boolean;
  readonly deadline: number;

  constructor(
    readonly limits: ArchiveLimits,
    /** The archive's size in bytes (compressed). */
    readonly archiveSize: number,
    /** When the unpack started (ms, the caller's clock). */
    readonly startedAt: number,
  ) {
    const { bytes, byRatio } = expansionLimit(limits, archiveSize);
    this.limit = bytes;
    this.byRatio = byRatio;
    this.deadline = startedAt + unpackTimeLimitMs(limits);
  }

  /** A budget for another pass over the same archive: bytes counted afresh, same deadline. */
  nextPass(): ExpansionBudget {
    return new ExpansionBudget(this.limits, this.archiveSize, this.startedAt);
  }

  /** Counts `n` more decompressed bytes; the problem once past the limit, else null. */
  expand(n: number): string | null {
    this.expanded += n;
    if (this.expanded <= this.limit) return null;
    if (this.byRatio) {
      return `expands beyond ${this.limits.maxRatio ?? DEFAULT_MAX_RATIO} times its size (${this.archiveSize} bytes)`;
    }
    return `expands to more than ${this.limit} bytes (limit ${this.limits.maxBytes} bytes of content)`;
  }

  /** Milliseconds left at `now` (0 when the time is up). */
  msLeft(now: number): number {
    return Math.max(0, this.deadline - now);
  }

  /** The problem when the time is up at `now`, else null. */
  timeUp(now: number): string | null {
    return now >= this.deadline ? `took longer than ${secondsText(unpackTimeLimitMs(this.limits))}` : null;
  }
}
