/**
 * Free disk in the pilot's work dir, checked by the job agent before it asks for each job.
 *
 * A job that filled the disk is over by then, its directory removed and every file of it
 * closed (job-wrapper.ts, sandbox.ts); the kernel may still be releasing its blocks (processes
 * it left behind being reaped), so a work dir below `minDiskMb` is measured again for a few
 * seconds before the pilot gives up. Below it still, the pilot takes no more work: a payload
 * would fail at its first write (`echo hello` included), and so would its outputs.
 */
import { statfs } from 'node:fs/promises';

const MB = 1024 * 1024;

export interface FreeDiskWait {
  /** How long to wait for space to come back (ms); default 5000. */
  waitMs?: number;
  /** Between two measures (ms); default 250. */
  pollMs?: number;
}

/** Free MB for an unprivileged user on the file system of `dir` (statfs), rounded down. */
async function freeMb(dir: string): Promise<number> {
  const s = await statfs(dir);
  return Math.floor((s.bavail * s.bsize) / MB);
}

/**
 * Null when `dir` has at least `minDiskMb` MB free, at once or within `waitMs`; otherwise why
 * the pilot must stop taking work: `free disk N MB below minDiskMb M MB in DIR`, or that the
 * free space of `dir` cannot be read. `minDiskMb` 0 (or less) turns the check off.
 */
export async function lowDiskReason(dir: string, minDiskMb: number, o: FreeDiskWait = {}): Promise<string | null> {
  if (!(minDiskMb > 0)) return null;
  const deadline = Date.now() + (o.waitMs ?? 5000);
  for (;;) {
    let free: number;
    try {
      free = await freeMb(dir);
    } catch (e) {
      return `free disk of ${dir} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
    }
    if (free >= minDiskMb) return null;
    if (Date.now() >= deadline) return `free disk ${free} MB below minDiskMb ${minDiskMb} MB in ${dir}`;
    await new Promise((r) => setTimeout(r, o.pollMs ?? 250));
  }
}
