/**
 * A payload's process tree, read from /proc (Linux only, as the pilot).
 *
 * The tree of a root pid is the root, its descendants (through `/proc/<pid>/task/<tid>/children`,
 * or a scan of every `/proc/<pid>/stat` for parent pids when the kernel lacks that file), and,
 * when killing, every process still in the root's session or process group: the job wrapper
 * starts each payload in a session of its own (`setsid`), so a daemon that double-forked away
 * from its parent is still found and killed.
 *
 * Reads are synchronous: /proc files are generated in memory, and a kill must start within the
 * call that asks for it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/**
 * Clock ticks per second of the times in /proc/<pid>/stat (USER_HZ). It is 100 on every
 * architecture the pilot runs on (x86_64, aarch64, ppc64le); Node has no sysconf to ask.
 */
const TICKS_PER_SECOND = 100;

export interface ProcStat {
  pid: number;
  /** R, S, D, Z (zombie), T, X (dead), ... */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** CPU seconds of the process itself, user and system. */
  utime: number;
  stime: number;
  /** CPU seconds of its children that ended and were waited for. */
  cutime: number;
  cstime: number;
}

/** `/proc/<pid>/stat`, parsed; null when the process is gone. */
export function readStat(pid: number | 'self'): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or ')'.
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).split(' ');
  const num = (i: number) => Number(f[i] ?? 0);
  return {
    pid: Number(text.slice(0, text.indexOf(' '))),
    state: f[0] ?? '?',
    ppid: num(1),
    pgrp: num(2),
    session: num(3),
    utime: num(11) / TICKS_PER_SECOND,
    stime: num(12) / TICKS_PER_SECOND,
    cutime: num(13) / TICKS_PER_SECOND,
    cstime: num(14) / TICKS_PER_SECOND,
  };
}

/** True while the process exists and is neither a zombie nor dead. */
export function isAlive(pid: number): boolean {
  const st = readStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

/** Resident memory of one process in kB (VmRSS), 0 when unknown (zombies, kernel threads). */
function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function numericDirs(dir: string): number[] {
  try {
    return readdirSync(dir)
      .filter((n) => /^\d+$/.test(n))
      .map(Number);
  } catch {
    return [];
  }
}

/** Every process's stat, by a scan of /proc. */
function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const pid of numericDirs('/proc')) {
    const st = readStat(pid);
    if (st) out.push(st);
  }
  return out;
}

let childrenFilesWork: boolean | undefined;

/** Direct children of `pid` from its threads' `children` files; null when the kernel has none. */
function childrenFromTasks(pid: number): number[] | null {
  // CONFIG_PROC_CHILDREN: present on the kernels of every major distribution since 4.2.
  childrenFilesWork ??= existsSync(`/proc/self/task/${process.pid}/children`);
  if (!childrenFilesWork) return null;
  const out: number[] = [];
  for (const tid of numericDirs(`/proc/${pid}/task`)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    for (const s of text.split(/\s+/)) if (s) out.push(Number(s));
  }
  return out;
}

/** The root and all its descendants that are still there (zombies included), root first. */
export function descendantsOf(root: number): number[] {
  if (readStat(root) === null) return [];
  const seen = new Set<number>([root]);
  const queue = [root];
  let byParent: Map<number, number[]> | null = null;
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    let kids = childrenFromTasks(pid);
    if (kids === null) {
      byParent ??= parentMap(allStats());
      kids = byParent.get(pid) ?? [];
    }
    for (const k of kids) {
      if (!seen.has(k)) {
        seen.add(k);
        queue.push(k);
      }
    }
  }
  return [...seen];
}

function parentMap(stats: ProcStat[]): Map<number, number[]> {
  const m = new Map<number, number[]>();
  for (const s of stats) {
    const list = m.get(s.ppid);
    if (list) list.push(s.pid);
    else m.set(s.ppid, [s.pid]);
  }
  return m;
}

/**
 * Every process to signal for a tree: descendants of `root` and of anything in its session or
 * process group (found by one scan of /proc), excluding this process.
 */
export function treeForKill(root: number, includeRoot = true): number[] {
  const stats = allStats();
  const byParent = parentMap(stats);
  const seen = new Set<number>();
  const queue: number[] = [];
  const add = (pid: number) => {
    if (pid === process.pid || seen.has(pid)) return;
    seen.add(pid);
    queue.push(pid);
  };
  if (includeRoot && stats.some((s) => s.pid === root)) add(root);
  for (const s of stats) if (s.session === root || s.pgrp === root) add(s.pid);
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    for (const k of byParent.get(pid) ?? []) add(k);
  }
  return [...seen];
}

export interface TreeSample {
  /** Live members (zombies excluded), root first when alive. */
  pids: number[];
  /**
   * CPU seconds: user + system of every live member, plus the times of the children each of
   * them has waited for, so work done by processes that already ended still counts.
   */
  cpuSeconds: number;
  /** Resident memory of the live members, MB. */
  rssMb: number;
}

/** One look at the tree of `root`; null when the root is gone. */
export function sampleTree(root: number): TreeSample | null {
  const members = descendantsOf(root);
  if (members.length === 0) return null;
  let cpu = 0;
  let rss = 0;
  const pids: number[] = [];
  for (const pid of members) {
    const st = readStat(pid);
    if (!st) continue;
    // A zombie's times are still readable until its parent reaps it, and are then added to the
    // parent's cutime/cstime: counting them here keeps the sum from dipping in between.
    cpu += st.utime + st.stime + st.cutime + st.cstime;
    if (st.state === 'Z' || st.state === 'X') continue;
    pids.push(pid);
    rss += rssKb(pid);
  }
  return { pids, cpuSeconds: round(cpu, 2), rssMb: round(rss / 1024, 1) };
}

/**
 * CPU seconds of this process's children that ended and were waited for. The job wrapper
 * reads it before it starts a payload and when the payload ends: the difference holds the CPU
 * the payload used after the last sample (see the caveat in job-wrapper.ts).
 */
export function selfChildrenCpuSeconds(): number {
  const st = readStat('self');
  return st ? st.cutime + st.cstime : 0;
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

function signalTree(root: number, sig: NodeJS.Signals, includeRoot: boolean): number[] {
  // The group first, in one system call: the payload's own children are in it.
  if (root !== process.pid) signal(-root, sig);
  const members = treeForKill(root, includeRoot);
  for (const pid of members) signal(pid, sig);
  return members;
}

export interface KillResult {
  /** Processes that got SIGTERM. */
  terminated: number[];
  /** Processes still alive after the grace period, which got SIGKILL. */
  killed: number[];
}

/**
 * Kills a process tree: SIGTERM to the root's process group and to every member at once
 * (synchronously, before this function first awaits), then SIGKILL to whatever is still alive
 * after `graceMs`. Resolves when every member is gone, or 2 s after the SIGKILL. With
 * `includeRoot: false` the root pid itself is left alone (it has ended and been reaped, and
 * the number may already belong to another process): only its group and session are killed.
 */
export async function killTree(root: number, graceMs: number, pollMs = 20, opts: { includeRoot?: boolean } = {}): Promise<KillResult> {
  const includeRoot = opts.includeRoot ?? true;
  const terminated = signalTree(root, 'SIGTERM', includeRoot);
  const alive = () => [...new Set([...terminated, ...treeForKill(root, includeRoot)])].filter(isAlive);
  const deadline = Date.now() + graceMs;
  let left = alive();
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())));
    left = alive();
  }
  if (left.length === 0) return { terminated, killed: [] };
  const killed = [...new Set([...left, ...signalTree(root, 'SIGKILL', includeRoot)])];
  for (const pid of left) signal(pid, 'SIGKILL');
  const hard = Date.now() + 2000;
  while (killed.some(isAlive) && Date.now() < hard) await sleep(pollMs);
  return { terminated, killed };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
