/**
 * The local computing element: pilots as child processes of this machine (`bash wrapper`), in
 * their own process groups, at most `slots` at once. References are `local://<ce>/<pid>`.
 *
 * A pilot never gets the server's environment (its secrets, `WMS_*` settings, loader variables):
 * it starts with an explicit one (`pilotEnvironment`): a fixed system PATH with the running
 * node's directory first, HOME, LANG, TMPDIR, USER, DIRAC_PILOT_STAMP and the CE's extra `env`.
 *
 * When the server runs as root, pilots run as an unprivileged user (`runAs`, from
 * `pilot.localUser`, default `nobody`; never root): the data directory (0700, root) is out of
 * their reach. Each pilot gets a home of its own, `<run dir>/<stamp>/` (mode 0700, the pilot
 * user's), holding its wrapper script (it carries the pilot token) and serving as its HOME,
 * TMPDIR and working directory; the run dir (a fresh `mkdtemp` under the system temp dir)
 * belongs to the server's user, mode 0711 when pilots run as another user: other users cannot
 * list it, and the homes in it are closed to them. All pilots share the pilot user, so they (and
 * any other process of that user) are NOT kept from one another's homes, tokens or processes:
 * their payloads are kept from them by the job wrapper's isolation (bubblewrap), and a dedicated
 * `pilot.localUser` is better than `nobody`. The server writes a pilot's files before it
 * hands them over (chown), and never writes in a directory the pilot user owns; it removes a
 * pilot's home by running `find -delete` as that user, then `rmdir`. Stdout and stderr stay in
 * `workDir` (under the data directory), opened by the server and passed as file descriptors.
 *
 * What it knows lives in this process: after a restart, a reference whose process is still
 * alive is Running, one whose process is gone is Failed ("the process is gone and its exit was
 * not seen") — the pilot's own final report, when it made one, is kept by the status agent.
 * The run dir's path is kept in `<workDir>/run-dir`: a server started again (after a SIGKILL,
 * say) takes the same run dir back on first use, removes the homes whose wrapper no longer runs
 * (written over a minute ago; with their stdout and stderr), and removes the others at
 * `cleanup()` once their pilot ended. Those adopted pilots count against the slots while they run
 * (the site director never starts more than `slots` pilots on this machine), `status()` says
 * Running while their process lives, and a server that stops drains them with its own. The
 * stamps of the homes whose wrapper no longer runs (`gonePilotStamps()`) let the server settle
 * those pilots and their jobs at its start.
 *
 * Stopping (`wms server start` on a signal, cli/server-system.ts): `drain()` sends SIGTERM to
 * every live pilot's process group (each pilot stops matching; its running jobs finish and
 * report); `waitForPilots()` waits for them, up to the server's grace; `stopPilots()` sends a
 * second SIGTERM (more than 2 s after the first, so that the pilot does not take it for a repeat:
 * it then kills its payloads, SIGTERM then SIGKILL after the job wrapper's grace), waits a bound,
 * then SIGKILLs the process groups left and the payload sessions their pilots registered
 * (`<work dir>/payload-sessions`, pilot/payload-sessions.ts). A pilot ended by that SIGKILL is
 * Aborted "killed at server shutdown". A server that exits before its stop is over (a third
 * signal) does the same at once, without waiting (`killNow()`).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, type Dirent, type Stats } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { constants, tmpdir, userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { WmsError } from '../../core/errors.js';
import type { CeQueueTarget, ComputingElement, PilotBackendStatus, PilotSubmission, SubmittedPilot } from './types.js';

interface LocalPilot {
  child: ChildProcess;
  /** The pilot's own directory: HOME, TMPDIR, cwd, and its wrapper script. */
  home: string;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  /** Stopped by `cancel()` (Aborted), not by something else (Failed). */
  cancelled: boolean;
  /** SIGKILLed by `stopPilots()` at the server's shutdown (Aborted). */
  killedAtShutdown: boolean;
}

/** A live local pilot: its reference and the pid of its wrapper (its process group's id). */
export interface LivePilot {
  reference: string;
  pid: number;
  home: string;
}

/** A Unix user local pilots run as. */
export interface LocalPilotUser {
  name: string;
  uid: number;
  gid: number;
}

export interface LocalCeOptions {
  ce: string;
  /** Where the pilots' stdout and stderr go (the server's own, private directory). */
  workDir: string;
  /** Pilots at once. */
  slots: number;
  /** Extra environment for the wrapper (tests inject a fake `stat` through PATH, say); wins over the defaults. */
  env?: Record<string, string>;
  /** Run pilots as this user (the server is root); absent or null: as the server's own user. */
  runAs?: LocalPilotUser | null;
}

const TERM_GRACE_MS = 10_000;
/** A pilot takes a second SIGTERM within 2 s of the first for a repeat of it (pilot/pilot.ts). */
const PILOT_REPEAT_MS = 2_000;
const WRAPPER = 'pilot.sh';

/** PATH of a pilot: the usual system directories, after the running node's own. */
export const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'] as const;

/**
 * The whole environment of a local pilot, built from nothing: never `process.env`. `extra`
 * (the CE's explicit settings) wins over the defaults; the stamp is always this pilot's.
 */
export function pilotEnvironment(o: {
  stamp: string;
  home: string;
  user: string;
  extra?: Readonly<Record<string, string>>;
}): Record<string, string> {
  const nodeDir = dirname(process.execPath);
  return {
    PATH: [nodeDir, ...SYSTEM_PATH.filter((d) => d !== nodeDir)].join(':'),
    HOME: o.home,
    LANG: 'C.UTF-8',
    TMPDIR: o.home,
    USER: o.user,
    LOGNAME: o.user,
    ...o.extra,
    DIRAC_PILOT_STAMP: o.stamp,
  };
}

function localUserError(name: string, why: string): WmsError {
  return new WmsError(
    'WMS_CONFIG',
    `pilot.localUser: ${why}. The server runs as root, so local pilots run as an unprivileged user (default "nobody"): ` +
      `create "${name}" (useradd --system ${name}) or name another user in the config file (pilot.localUser)`,
  );
}

/** The passwd line of `name` through NSS (`getent`), else from /etc/passwd; null when there is none. */
function passwdLine(name: string): string | null {
  try {
    const out = execFileSync('getent', ['passwd', '--', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    return out.split('\n').find((l) => l.startsWith(`${name}:`)) ?? null;
  } catch (e) {
    const status = (e as { status?: number }).status;
    if (status === 2) return null; // getent: key not found
    // no getent (ENOENT) or it failed otherwise: read the file
  }
  try {
    return (
      readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`${name}:`)) ?? null
    );
  } catch {
    return null;
  }
}

/**
 * The uid and gid of the Unix user `name`, for pilots of a server running as root. Throws
 * WMS_CONFIG when the user does not exist or is root.
 */
export function resolveLocalUser(name: string): LocalPilotUser {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(name)) throw localUserError(name, `"${name}" is not a user name`);
  const line = passwdLine(name);
  if (line === null) throw localUserError(name, `there is no user "${name}" on this machine`);
  const [, , uidText, gidText] = line.split(':');
  const uid = Number(uidText);
  const gid = Number(gidText);
  if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid) || uidText === '' || gidText === '') {
    throw localUserError(name, `the passwd entry of "${name}" has no numeric uid and gid`);
  }
  if (uid === 0) throw localUserError(name, `"${name}" is root (uid 0), and local pilots must not run as root`);
  return { name, uid, gid };
}

/** Whether `user` (no supplementary groups: spawn drops them) may enter directory `st`. */
function canEnter(st: { uid: number; gid: number; mode: number }, user: LocalPilotUser): boolean {
  if (st.uid === user.uid) return (st.mode & 0o100) !== 0;
  if (st.gid === user.gid) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The wrapper scripts that run now, by the pids running them: `bash <home>/pilot.sh` is a
 * wrapper's command line (its subshells' too) for its whole life. Null without a `/proc`.
 */
async function runningWrappers(): Promise<Map<number, string> | null> {
  const names = await readdir('/proc').catch(() => null);
  if (names === null) return null;
  const out = new Map<number, string>();
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv[0] === 'bash' && argv[1]?.endsWith(`/${WRAPPER}`)) out.set(Number(name), argv[1]);
  }
  return out;
}

/** The process group and session of `pid` (/proc/<pid>/stat); null when it is gone. */
function groupAndSession(pid: number): { pgrp: number; session: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pgrp: Number(f[2]), session: Number(f[3]) };
  } catch {
    return null;
  }
}

/** The real uid of `pid` (/proc/<pid>/status); null when it is gone. */
function uidOf(pid: number): number | null {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * The payload sessions a pilot registered under its home (`<home>/<work dir>/payload-sessions`,
 * pilot/payload-sessions.ts) that still lead a session of a non-root user: the file is written
 * by the pilot user, so nothing in it is believed beyond that.
 */
function registeredPayloadSessions(home: string): number[] {
  const out: number[] = [];
  for (const entry of readdirOrNone(home)) {
    if (!entry.isDirectory()) continue;
    const file = join(home, entry.name, 'payload-sessions');
    const st = lstatOrNull(file);
    if (!st?.isFile() || st.size > 65_536) continue;
    for (const line of readTextOrEmpty(file).split('\n')) {
      const sid = /^\d{1,10}$/.test(line.trim()) ? Number(line.trim()) : 0;
      if (sid <= 1) continue;
      const gs = groupAndSession(sid);
      if (gs?.session === sid && gs.pgrp === sid && uidOf(sid) !== 0) out.push(sid);
    }
  }
  return out;
}

/*
 * Synchronous reads, for `killNow()` at the process's exit (no await there). Each answers
 * nothing (not an error) for what is gone or unreadable: a pilot's files are its user's.
 */
function readdirOrNone(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

function lstatOrNull(file: string): Stats | null {
  try {
    return lstatSync(file);
  } catch {
    return null;
  }
}

function readTextOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function serverUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}

export class LocalComputingElement implements ComputingElement {
  readonly type = 'local';
  private readonly pilots = new Map<string, LocalPilot>();
  /** Homes of pilots an earlier server process started, by their wrapper's pids (see `reuseRunDir`). */
  private readonly adopted = new Map<number, string>();
  /** The adopted pilots themselves: their wrapper's main pid (its process group's id) and home. */
  private readonly adoptedPilots = new Map<number, string>();
  /** Stamps of the pilots of an earlier server process whose wrapper was gone at the take-back. */
  private readonly gone = new Set<string>();
  private runDir: Promise<string> | null = null;

  constructor(private readonly o: LocalCeOptions) {}

  /** The user pilots run as, for reports and tests (null: the server's user). */
  get runAs(): LocalPilotUser | null {
    return this.o.runAs ?? null;
  }

  /** Pilots of this process that run, and those of an earlier process (adopted) that still do. */
  private running(): number {
    let n = 0;
    for (const p of this.pilots.values()) if (!p.exit) n++;
    return n + this.adoptedLive().length;
  }

  /** The adopted pilots whose wrapper still runs (by their wrapper's main pid, the group leader). */
  private adoptedLive(): LivePilot[] {
    return [...this.adoptedPilots]
      .filter(([pid]) => alive(pid))
      .map(([pid, home]) => ({ reference: `local://${this.o.ce}/${pid}`, pid, home }));
  }

  async availableSlots(): Promise<number> {
    // The run dir is taken back first: the pilots an earlier server left running count.
    await this.homes().catch(() => null);
    return Math.max(0, this.o.slots - this.running());
  }

  /** The pilots that run now on this machine: this process's and those it adopted. */
  async livePilots(): Promise<LivePilot[]> {
    await this.homes().catch(() => null);
    const own: LivePilot[] = [];
    for (const [reference, p] of this.pilots) if (!p.exit) own.push({ reference, pid: p.child.pid!, home: p.home });
    return [...own, ...this.adoptedLive()];
  }

  /** References of every pilot this process knows of (running or ended, its own or adopted). */
  knownReferences(): string[] {
    return [...this.pilots.keys(), ...[...this.adoptedPilots.keys()].map((pid) => `local://${this.o.ce}/${pid}`)];
  }

  private drainedAt: number | null = null;
  /** Set by `drain()`: no pilot is started any more. */
  private stopping = false;

  /**
   * The first step of a stop: SIGTERM to every live pilot's process group (the pilot drains: no
   * new work, running jobs finish and report). Answers the pilots signalled.
   */
  async drain(): Promise<LivePilot[]> {
    this.stopping = true;
    const live = await this.livePilots();
    for (const p of live) signalGroup(p.pid, 'SIGTERM');
    this.drainedAt = Date.now();
    return live;
  }

  /**
   * Waits until no pilot of `pilots` runs, or `untilMs` (epoch ms), or `abort`; answers the
   * pilots still running.
   */
  async waitForPilots(pilots: readonly LivePilot[], untilMs: number, abort?: AbortSignal): Promise<LivePilot[]> {
    const left = () => pilots.filter((p) => this.isRunning(p));
    while (left().length > 0 && Date.now() < untilMs && !abort?.aborted) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        abort?.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
      });
    }
    return left();
  }

  private isRunning(p: LivePilot): boolean {
    const own = this.pilots.get(p.reference);
    return own ? !own.exit : alive(p.pid);
  }

  /**
   * The last step of a stop: a second SIGTERM to the pilots still running (each kills its
   * payloads' trees, SIGKILL after the job wrapper's grace, and ends), up to `killWaitMs`; then
   * SIGKILL to the process groups left and to the payload sessions their pilots registered.
   * Answers the pilots that had to be SIGKILLed.
   */
  async stopPilots(pilots: readonly LivePilot[], killWaitMs: number, abort?: AbortSignal): Promise<LivePilot[]> {
    let left = pilots.filter((p) => this.isRunning(p));
    if (left.length === 0) return [];
    const repeatAt = (this.drainedAt ?? 0) + PILOT_REPEAT_MS + 200;
    if (Date.now() < repeatAt) await this.waitForPilots(left, repeatAt);
    left = left.filter((p) => this.isRunning(p));
    for (const p of left) signalGroup(p.pid, 'SIGTERM');
    left = await this.waitForPilots(left, Date.now() + killWaitMs, abort);
    if (left.length === 0) return [];
    this.kill(left);
    await this.waitForPilots(left, Date.now() + 5_000);
    return left;
  }

  /**
   * SIGKILL to the process groups of `pilots` and to the payload sessions they registered
   * (collected first: they are in the pilots' files); they end Aborted "killed at server shutdown".
   */
  private kill(pilots: readonly LivePilot[]): void {
    const sessions = pilots.flatMap((p) => registeredPayloadSessions(p.home));
    for (const p of pilots) {
      const own = this.pilots.get(p.reference);
      if (own) own.killedAtShutdown = true;
      signalGroup(p.pid, 'SIGKILL');
    }
    for (const sid of sessions) signalGroup(sid, 'SIGKILL');
  }

  /**
   * Kills every pilot still running (this process's and the adopted ones) and their payloads at
   * once, without waiting: for a server that exits before its stop is over (a third signal).
   * Synchronous, so that it can run at the process's `exit`. Answers how many were killed.
   */
  killNow(): number {
    const own: LivePilot[] = [];
    for (const [reference, p] of this.pilots) if (!p.exit) own.push({ reference, pid: p.child.pid!, home: p.home });
    const live = [...own, ...this.adoptedLive()];
    this.kill(live);
    return live.length;
  }

  /**
   * The stamps of the pilots an earlier server process on this data dir started whose wrapper no
   * longer runs (found when the run dir is taken back): they ended, or were killed, while no
   * server watched them, and never reported it.
   */
  async gonePilotStamps(): Promise<string[]> {
    await this.homes().catch(() => null);
    return [...this.gone];
  }

  /**
   * The directory of the pilots' homes, made on first use (or the one of an earlier server
   * process on this data dir, taken back); checked to be reachable by the pilot user.
   */
  private homes(): Promise<string> {
    this.runDir ??= (async () => {
      const record = join(this.o.workDir, 'run-dir');
      let dir = await this.reuseRunDir(record);
      if (dir === null) {
        dir = await mkdtemp(join(tmpdir(), `wms-local-${this.o.ce.replace(/[^A-Za-z0-9_.-]/g, '_')}-`));
        await writeFile(record, `${dir}\n`, { mode: 0o600 });
      }
      // The pilot user enters a home by name; other users cannot list the run dir.
      await chmod(dir, this.o.runAs ? 0o711 : 0o700);
      if (this.o.runAs) await this.checkReachable(dir, this.o.runAs);
      return dir;
    })().catch((e: unknown) => {
      this.runDir = null;
      throw e;
    });
    return this.runDir;
  }

  /**
   * The run dir recorded in `record` when it is still this user's directory (a server killed
   * before `close()` left it): the homes whose wrapper no longer runs are removed, with their
   * stdout and stderr; the others are adopted, for `cleanup()`. Null when there is none to take.
   */
  private async reuseRunDir(record: string): Promise<string | null> {
    const dir = (await readFile(record, 'utf8').catch(() => '')).trim();
    const st = dir ? await lstat(dir).catch(() => null) : null;
    if (!st?.isDirectory() || st.uid !== process.getuid?.()) return null;
    const running = await runningWrappers();
    if (running === null) return null;
    const live = new Set(running.values());
    for (const stamp of await readdir(dir)) {
      const home = join(dir, stamp);
      if (live.has(join(home, WRAPPER))) continue;
      this.gone.add(stamp);
      // A wrapper written in the last minute may be another process's pilot about to start.
      const written = (await lstat(join(home, WRAPPER)).catch(() => null)) ?? (await lstat(home).catch(() => null));
      if (written && Date.now() - written.mtimeMs > 60_000) await this.removePilotFiles(home);
    }
    for (const [pid, script] of running) {
      if (dirname(dirname(script)) !== dir) continue;
      this.adopted.set(pid, dirname(script));
      // The wrapper's subshells share its command line; the wrapper leads its process group.
      if (groupAndSession(pid)?.pgrp === pid) this.adoptedPilots.set(pid, dirname(script));
    }
    return dir;
  }

  private async checkReachable(dir: string, user: LocalPilotUser): Promise<void> {
    for (let d = dirname(dir); ; d = dirname(d)) {
      const st = await stat(d);
      if (!canEnter(st, user)) {
        throw new Error(
          `${d} (mode 0${(st.mode & 0o777).toString(8)}, uid ${st.uid}) cannot be entered by user ${user.name}, ` +
            `whom pilots run as: start the server with TMPDIR set to a directory others can enter (such as /tmp)`,
        );
      }
      if (d === dirname(d)) return;
    }
  }

  async submit(_queue: CeQueueTarget, pilots: readonly PilotSubmission[]) {
    await mkdir(this.o.workDir, { recursive: true, mode: 0o700 });
    const submitted: SubmittedPilot[] = [];
    const failed: { stamp: string; reason: string }[] = [];
    for (const p of pilots) {
      if (this.stopping) {
        failed.push({ stamp: p.stamp, reason: `local CE ${this.o.ce}: the server is stopping` });
        continue;
      }
      if (this.running() >= this.o.slots) {
        failed.push({ stamp: p.stamp, reason: `local CE ${this.o.ce}: all ${this.o.slots} slots busy` });
        continue;
      }
      try {
        submitted.push(await this.start(p));
      } catch (e) {
        failed.push({ stamp: p.stamp, reason: `local CE ${this.o.ce}: ${(e as Error).message}` });
      }
    }
    return { submitted, failed };
  }

  private async start(p: PilotSubmission): Promise<SubmittedPilot> {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(p.stamp)) throw new Error(`"${p.stamp}" is not a pilot stamp`);
    const user = this.o.runAs ?? null;
    const home = join(await this.homes(), p.stamp);
    // Made here, while the server owns it; handed to the pilot user only once written.
    await mkdir(home, { mode: 0o700 });
    const script = join(home, WRAPPER);
    await writeFile(script, p.wrapper, { mode: 0o700, flag: 'wx' });
    if (user) {
      await chown(script, user.uid, user.gid);
      await chown(home, user.uid, user.gid);
    }
    const out = openSync(join(this.o.workDir, `${p.stamp}.out`), 'a', 0o600);
    const err = openSync(join(this.o.workDir, `${p.stamp}.err`), 'a', 0o600);
    try {
      const child = spawn('bash', [script], {
        cwd: home,
        detached: true,
        stdio: ['ignore', out, err],
        env: pilotEnvironment({ stamp: p.stamp, home, user: user?.name ?? serverUserName(), ...(this.o.env ? { extra: this.o.env } : {}) }),
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
      });
      const pid = await new Promise<number>((resolve, reject) => {
        child.once('spawn', () => resolve(child.pid!));
        child.once('error', reject);
      });
      const reference = `local://${this.o.ce}/${pid}`;
      const entry: LocalPilot = { child, home, exit: null, cancelled: false, killedAtShutdown: false };
      child.once('exit', (code, signal) => (entry.exit = { code, signal }));
      child.unref();
      this.pilots.set(reference, entry);
      return { stamp: p.stamp, reference };
    } catch (e) {
      await this.removePilotFiles(home);
      throw e;
    } finally {
      closeSync(out);
      closeSync(err);
    }
  }

  /** Removes what a pilot left: its stdout and stderr, and its home. */
  private async removePilotFiles(home: string): Promise<void> {
    await Promise.all(['out', 'err'].map((ext) => rm(join(this.o.workDir, `${basename(home)}.${ext}`), { force: true })));
    await this.removeHome(home);
  }

  /**
   * Removes a pilot's home. Its contents belong to the pilot user: they are deleted as that user
   * (a root `rm -r` in a directory another user writes to could be steered by symbolic links);
   * the emptied directory, in the server's run dir, by the server.
   */
  private async removeHome(home: string): Promise<void> {
    const user = this.o.runAs ?? null;
    if (!user) {
      await rm(home, { recursive: true, force: true }).catch(() => undefined);
      return;
    }
    await new Promise<void>((done) => {
      execFile(
        'find',
        [home, '-mindepth', '1', '-delete'],
        { uid: user.uid, gid: user.gid, env: { PATH: SYSTEM_PATH.join(':') }, timeout: 60_000 },
        () => done(),
      );
    });
    await rmdir(home).catch(() => undefined);
  }

  async status(references: readonly string[]): Promise<Map<string, PilotBackendStatus>> {
    const out = new Map<string, PilotBackendStatus>();
    for (const ref of references) {
      const known = this.pilots.get(ref);
      if (known) {
        if (!known.exit) out.set(ref, { status: 'Running', reason: `process ${known.child.pid} running` });
        else if (known.exit.code === 0) out.set(ref, { status: 'Done', reason: 'exit code 0', exitCode: 0 });
        else if (known.exit.signal) {
          const code = 128 + (constants.signals[known.exit.signal] ?? 0);
          out.set(
            ref,
            known.killedAtShutdown
              ? { status: 'Aborted', reason: `killed at server shutdown (${known.exit.signal})`, exitCode: code }
              : known.cancelled
                ? { status: 'Aborted', reason: `cancelled (${known.exit.signal})`, exitCode: code }
                : { status: 'Failed', reason: `killed by ${known.exit.signal}`, exitCode: code },
          );
        } else out.set(ref, { status: 'Failed', reason: `exit code ${known.exit.code}`, exitCode: known.exit.code ?? 1 });
        continue;
      }
      const pid = pidOf(ref, this.o.ce);
      if (pid === null) continue;
      out.set(
        ref,
        alive(pid)
          ? { status: 'Running', reason: `process ${pid} running` }
          : { status: 'Failed', reason: 'the process is gone and its exit was not seen (server restarted)' },
      );
    }
    return out;
  }

  async cancel(references: readonly string[]): Promise<void> {
    for (const r of references) {
      const known = this.pilots.get(r);
      if (known && !known.exit) known.cancelled = true;
    }
    const pids = references.map((r) => pidOf(r, this.o.ce)).filter((p): p is number => p !== null && alive(p));
    for (const pid of pids) signalGroup(pid, 'SIGTERM');
    setTimeout(() => pids.filter(alive).forEach((pid) => signalGroup(pid, 'SIGKILL')), TERM_GRACE_MS).unref();
  }

  async cleanup(references: readonly string[]): Promise<void> {
    for (const ref of references) {
      const known = this.pilots.get(ref);
      if (known) {
        if (!known.exit) continue;
        this.pilots.delete(ref);
        await this.removePilotFiles(known.home);
        continue;
      }
      // A pilot of an earlier server process, once its wrapper has ended.
      const pid = pidOf(ref, this.o.ce);
      const home = pid === null ? undefined : this.adopted.get(pid);
      if (home === undefined || alive(pid!)) continue;
      for (const [p, h] of this.adopted) if (h === home) this.adopted.delete(p);
      for (const [p, h] of this.adoptedPilots) if (h === home) this.adoptedPilots.delete(p);
      await this.removePilotFiles(home);
    }
  }

  /**
   * Drains the pilots (SIGTERM: running jobs finish) and waits up to `waitMs` for them; then
   * removes the homes of those that ended (and the run dir when it is empty).
   */
  async close(waitMs = TERM_GRACE_MS): Promise<void> {
    const live = [...this.pilots.values()].filter((p) => !p.exit);
    for (const p of live) signalGroup(p.child.pid!, 'SIGTERM');
    const deadline = Date.now() + waitMs;
    while (live.some((p) => !p.exit) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const p of live) if (!p.exit) signalGroup(p.child.pid!, 'SIGKILL');
    for (const p of this.pilots.values()) if (p.exit) await this.removeHome(p.home);
    const dir = this.runDir ? await this.runDir.catch(() => null) : null;
    if (dir) await rmdir(dir).catch(() => undefined);
  }
}

function pidOf(reference: string, ce: string): number | null {
  const m = /^local:\/\/([^/]+)\/(\d+)$/.exec(reference);
  return m && m[1] === ce ? Number(m[2]) : null;
}
