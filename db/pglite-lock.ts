/**
 * The embedded database (PGlite) is one process only: PGlite keeps its database in the memory of
 * the process that opened it and writes its directory as if no one else did, so a second process
 * opening the same directory works on a stale copy and its writes are lost (or it corrupts the
 * first one's). `lockPgliteDir(dir)` makes that second process fail instead, with a message
 * naming the directory, the process holding it and what to do.
 *
 * The lock is the file `<dir>/wms.lock` (0600), created atomically (a hard link), holding JSON: pid, host,
 * the holder's start time as the kernel counts it (`/proc/<pid>/stat`, Linux; so a pid reused by
 * an unrelated process is not taken for the holder), when it was taken and the command line.
 * - Held by a process that no longer exists (same host, pid gone or started at another time): a
 *   stale lock, taken over (logged by the caller through `onStale`).
 * - Held by this process: re-entrant (a count per directory), so code that opens the same
 *   directory twice in one process (tests do) works; the file goes with the last release.
 * - Held on another host (a shared file system, or a container recreated with a new host name):
 *   its pid cannot be checked from here, so the holder touches the file every
 *   `LOCK_TOUCH_SECONDS`; a file not touched for `FOREIGN_STALE_SECONDS` is stale, else refused.
 * Released by `release()` (the handle's close) and, as a last resort, when the process exits
 * normally. A SIGKILLed holder leaves the file behind: the next process takes it over as stale.
 * Taking over a stale lock is not atomic against a second process taking it over in the same
 * instant (remove then create); both are starts of the whole service, not a race in steady state.
 */
import { linkSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { WmsError } from '../core/errors.js';

/** The lock file's name inside a PGlite directory. */
export const PGLITE_LOCK_FILE = 'wms.lock';

/** What the lock file holds. */
export interface PgliteLockInfo {
  pid: number;
  host: string;
  /** The holder's start in clock ticks since boot (`/proc/<pid>/stat` field 22); null off Linux. */
  procStart: string | null;
  /** When the lock was taken (ISO). */
  since: string;
  command: string;
}

/** How often a holder touches its lock file (seconds). */
export const LOCK_TOUCH_SECONDS = 10;
/** A lock of another host not touched for this long is stale (seconds). */
export const FOREIGN_STALE_SECONDS = 60;

/** Locks this process holds: absolute directory -> how many opens and the timer touching the file. */
const held = new Map<string, { count: number; touch: NodeJS.Timeout }>();
let exitHookSet = false;

/** The start time of process `pid` (`/proc/<pid>/stat` field 22), or null when unknown. */
function procStartOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command (field 2) is in parentheses and may hold spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** The state letter of process `pid` (`/proc/<pid>/stat` field 3: R, S, Z...), or null. */
function procStateOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

/** Does the holder named in `info` still run (on this host)? A zombie (killed, not yet reaped) does not. */
function holderAlive(info: PgliteLockInfo): boolean {
  const state = procStateOf(info.pid);
  if (state === 'Z' || state === 'X') return false;
  try {
    process.kill(info.pid, 0);
  } catch (e) {
    // EPERM: the process exists (another user's).
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (info.procStart === null) return true;
  const now = procStartOf(info.pid);
  return now === null || now === info.procStart;
}

function readLock(path: string): PgliteLockInfo | null {
  try {
    const info = JSON.parse(readFileSync(path, 'utf8')) as Partial<PgliteLockInfo>;
    if (typeof info.pid !== 'number' || typeof info.host !== 'string') return null;
    return {
      pid: info.pid,
      host: info.host,
      procStart: typeof info.procStart === 'string' ? info.procStart : null,
      since: String(info.since ?? '?'),
      command: String(info.command ?? '?'),
    };
  } catch {
    return null;
  }
}

/**
 * Creates the lock file, whole: written under a temporary name, then hard-linked to its name
 * (fails when it exists), so no reader ever sees it half written. False when it exists.
 */
function createLock(path: string): boolean {
  const info: PgliteLockInfo = {
    pid: process.pid,
    host: hostname(),
    procStart: procStartOf(process.pid),
    since: new Date().toISOString(),
    command: process.argv
      .slice(1)
      .map((a) => (basename(a) === 'main.js' ? 'wms' : a))
      .join(' '),
  };
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(info)}\n`, { mode: 0o600 });
  try {
    linkSync(temp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    rmSync(temp, { force: true });
  }
}

/** The refusal: the directory, its holder, what to do. */
function inUse(dir: string, path: string, info: PgliteLockInfo): WmsError {
  const where = basename(dir) === 'db' ? `the embedded database of the data directory ${dirname(dir)}` : `the embedded database ${dir}`;
  const local = info.host === hostname();
  return new WmsError(
    'WMS_CONFIG',
    `${where} is in use by process ${info.pid}${local ? '' : ` on host ${info.host}`} ("${info.command}", since ${info.since}): ` +
      'the embedded database (PGlite) is one process only, and a second one would lose its writes. ' +
      `Stop that process first (e.g. run \`wms server agents --once\` only while \`wms server start\` is stopped), ` +
      'or run every process on PostgreSQL (--db postgres://...), which several processes may share.' +
      (local ? '' : ` (A lock of another host is taken over once not renewed for ${FOREIGN_STALE_SECONDS} s.)`),
  );
}

/**
 * Takes the lock of the PGlite directory `dir` for this process (module comment) and answers
 * its release (idempotent). Throws WMS_CONFIG when another live process holds it.
 */
export function lockPgliteDir(dir: string, onStale: (line: string) => void = () => {}): () => void {
  const abs = resolve(dir);
  const path = join(abs, PGLITE_LOCK_FILE);
  const mine = held.get(abs);
  if (mine) mine.count++;
  else {
    takeFile(abs, path, onStale);
    const touch = setInterval(() => {
      const now = new Date();
      try {
        utimesSync(path, now, now);
      } catch {
        // Gone (the directory removed under us): nothing to keep fresh.
      }
    }, LOCK_TOUCH_SECONDS * 1000);
    touch.unref();
    held.set(abs, { count: 1, touch });
  }
  if (!exitHookSet) {
    exitHookSet = true;
    process.once('exit', () => {
      for (const d of held.keys()) rmSync(join(d, PGLITE_LOCK_FILE), { force: true });
    });
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const entry = held.get(abs);
    if (!entry) return;
    if (--entry.count > 0) return;
    clearInterval(entry.touch);
    held.delete(abs);
    const info = readLock(path);
    if (info === null || (info.pid === process.pid && info.host === hostname())) rmSync(path, { force: true });
  };
}

/** Was the lock file touched within `FOREIGN_STALE_SECONDS` (its holder on another host is alive)? */
function touchedLately(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs < FOREIGN_STALE_SECONDS * 1000;
  } catch {
    return false;
  }
}

/** Creates the lock file, taking over a stale one (at most a few rounds against a racing starter). */
function takeFile(dir: string, path: string, onStale: (line: string) => void): void {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createLock(path)) return;
    const info = readLock(path);
    if (info !== null && info.pid === process.pid && info.host === hostname()) {
      // Left by this very process (a handle never closed): ours.
      return;
    }
    if (info !== null && (info.host === hostname() ? holderAlive(info) : touchedLately(path))) throw inUse(dir, path, info);
    onStale(
      info === null
        ? `${path}: unreadable lock file, taken over`
        : `${path}: stale lock of process ${info.pid}${info.host === hostname() ? '' : ` on host ${info.host}`} (taken at ${info.since}; ` +
            `${info.host === hostname() ? 'that process is gone' : `not renewed for ${FOREIGN_STALE_SECONDS} s`}), taken over`,
    );
    rmSync(path, { force: true });
  }
  throw new WmsError('WMS_CONFIG', `cannot take the lock ${path}: other processes keep taking it; retry`);
}
