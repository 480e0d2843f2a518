/**
 * The fault harness of issue 10 ("No job lost, none run twice"), shared by `tests/faults/` and
 * the `faults` benchmark (so it imports no vitest).
 *
 * A `FaultSystem` is a whole system in processes of its own, as an operator runs it:
 * - a private PostgreSQL cluster (`PgCluster`, tests/helpers/pg-cluster.ts) on a free port,
 *   never the shared server;
 * - the real server as a child process, `node dist/cli/main.js server start --db … --data-dir
 *   … --port … --config …`, with the local site on, `slots` local pilots, agents on schedules of
 *   a second or two, payload isolation `none` (so payloads can write the ledger outside their
 *   job dir) and everything of the run under one temporary directory (`TMPDIR` of the server,
 *   so the local CE's run dir and the pilots' homes are there too);
 * - a ledger: the payload of every job (`/bin/sh payload.sh`) appends `<jobId> <pid> start <ms>`
 *   before it sleeps and `<jobId> <pid> end <ms>` after (O_APPEND, lines far below PIPE_BUF), so
 *   a job whose payload ran twice shows two `start` lines, whatever the database says.
 *
 * Faults: `killServer()` (SIGKILL, then `startServer()` on the same data dir, database and port),
 * `stopServer()` (SIGTERM, wait for the exit: the graceful path), `restartPostgres(mode)`
 * (`pg_ctl restart -m fast|immediate`), `fillPilotDisk()` (the 'disk-full' scenario: with
 * `startDiskWatcher()` every live pilot's work dir is on a small tmpfs of its own, mounted once
 * the pilot took its token file and before its first job; one extra job, not the ledger's, fills
 * its pilot's disk; `diskSample()` says what space and descriptors that pilot has there after,
 * and `unmountDisks()`, also run by `destroy()` before the directory goes, undoes the mounts).
 * Each is recorded with its time and the time the API
 * answered again, so that `recoverySeconds()` gives, per fault, the seconds from the fault to
 * all jobs final.
 *
 * `verdict()` reads the jobs' states (from the database) and the ledger; `leftoverPayloads()`
 * finds payload processes by a marker that every payload carries in its command line and
 * environment (`/proc/<pid>/cmdline`, `/proc/<pid>/environ`); `diagnose(ids)` prints, for the
 * jobs that went wrong, their history, the ledger lines, the server's log lines and the lines
 * of pilot logs that name them. `destroy()` kills whatever is left (server, pilots, payloads),
 * removes the cluster and the directory.
 *
 * The process, ledger and config parts it shares with tests/helpers/topology.ts are in
 * tests/helpers/cli-process.ts.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  envWithoutWms,
  fastConfig,
  healthy,
  ledgerJdlLines,
  ledgerPaths,
  makeRunDirs,
  parseLedger,
  queryOnce,
  requireBuild,
  spawnCli,
  tail,
  waitHealthy,
  writeLedgerPayload,
  type LedgerRun,
} from './cli-process.js';
import { freePort, PgCluster, type StopMode } from './pg-cluster.js';

export { CLI, type LedgerRun } from './cli-process.js';
/** DIRAC's final states and Deleted. */
export const FINAL_STATUSES = ['Done', 'Completed', 'Failed', 'Killed', 'Deleted'] as const;

export interface FaultSystemOptions {
  /** A label: names the database and the temporary directory. */
  name: string;
  /** Local pilot slots (`pilot.localSlots`). */
  slots: number;
  /** How long each payload sleeps between its `start` and `end` lines. */
  payloadSeconds: number;
  /** Deep-merged over the harness's config file (core/config.ts ConfigFileSchema). */
  config?: Record<string, unknown>;
  /** Extra flags for `server start` (e.g. `--shutdown-grace 30`). */
  serverArgs?: string[];
  /** Extra environment for the server. */
  env?: Record<string, string>;
  /** Server log level (default `FAULTS_LOG_LEVEL` or `info`). */
  logLevel?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface FaultRecord {
  kind: string;
  /** Date.now() when the fault was injected. */
  at: number;
  /** When the API answered `GET /api/health` 200 again (null: not yet). */
  apiBackAt: number | null;
  /** Jobs final when the fault was injected. */
  finalBefore: number;
  /** Jobs Matched, Running or Completing then (on pilots: the fault hit them in flight). */
  inFlightBefore: number;
  /** For stops: how long the server took to exit (ms). */
  exitMs?: number;
}

export interface Verdict {
  jobs: number;
  done: number;
  byStatus: Record<string, number>;
  /** Jobs not Done: id, status, minor status. */
  notDone: { id: number; status: string; minorStatus: string; reschedules: number }[];
  /** Jobs whose payload started more than once. */
  duplicates: { id: number; runs: LedgerRun[] }[];
  /** Jobs Done whose payload never started (no ledger line). */
  neverStarted: number[];
  /** Payload runs that started and never wrote `end` (killed mid-run). */
  unfinishedRuns: { id: number; pid: number }[];
  /** Ledger lines of ids that are not ours (should be none). */
  strangers: string[];
}

export interface ScenarioResult {
  scenario: FaultScenario;
  jobs: number;
  slots: number;
  payloadSeconds: number;
  verdict: Verdict;
  faults: (FaultRecord & { recoverySeconds: number | null; apiBackSeconds: number | null })[];
  /** Submission to all jobs final (s). */
  totalSeconds: number;
  /** Payload processes still there once the system stopped (pid: command line). */
  leftoverPayloads: string[];
  /** Pilot processes still there 20 s after the system stopped (killed then). */
  leftoverPilots: string[];
  /** Pilots by final status and reason (`Done: no more work` x 12, ...). */
  pilots: { status: string; reason: string; n: number }[];
  /** Up to 3 pilots that ended Failed or Aborted, with the last lines of their logs. */
  failedPilots: { id: number; reason: string; lastLines: string[] }[];
  /** Why the run did not end well (a timeout), or null. */
  error: string | null;
  /** The 'disk-full' scenario: the filler job, its pilot and that pilot's disk afterwards. */
  disk?: DiskFullReport;
}

export type FaultScenario = 'server-kill' | 'pg-restart' | 'graceful-restart' | 'disk-full';

/** A small tmpfs of its own mounted on a live local pilot's work dir (the 'disk-full' scenario). */
export interface PilotDiskMount {
  /** The pilot's node process and its wrapper (its parent). */
  pid: number;
  wrapperPid: number;
  stamp: string;
  workDir: string;
  mountedAt: number;
  sizeMb: number;
  /** Unmounted again at once: the pilot had made a job dir meanwhile (a race), or at the end. */
  unmounted: boolean;
  note?: string;
}

/** The disk of a pilot at one moment: free space on its tmpfs and what its node process holds there. */
export interface DiskSample {
  at: number;
  pilotAlive: boolean;
  totalMb: number;
  freeMb: number;
  /** The pilot's descriptors on files under the mount (`fd -> target`). */
  openFiles: string[];
  /** Those of them on deleted files (they keep the space taken). */
  deletedOpen: string[];
}

export interface DiskFullReport {
  /** Live pilots that got a tmpfs, and how many of those mounts were undone at once (a race). */
  mounted: number;
  raced: number;
  sizeMb: number;
  fillerId: number | null;
  filler: { status: string; minorStatus: string; applicationStatus: string; pilotId: number | null } | null;
  /** Whether the filler's pilot had a tmpfs of its own. */
  fillerPilotMounted: boolean;
  /** When the filler started running and ended (ms). */
  fillerStartedAt: number | null;
  fillerEndedAt: number | null;
  /** Jobs (of the 300) the filler's pilot started after the filler ended, and how they ended. */
  laterJobs: { id: number; status: string; startedAt: number }[];
  /** Seconds from the filler's end to the start of the pilot's next job, and to that job Done. */
  nextJobStartSeconds: number | null;
  nextJobDoneSeconds: number | null;
  /** The filler's pilot's disk when its next job was Done (null: not seen alive then), and after all jobs final. */
  afterNextJob: DiskSample | null;
  afterRun: DiskSample | null;
  /** The filler pilot's final state. */
  pilot: { id: number; status: string; reason: string; jobsRun: number } | null;
}

/** The processes whose command line or environment contains `marker`: pid -> command line. */
export async function processesWith(marker: string, exclude: readonly number[] = []): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const names = await readdir('/proc').catch(() => [] as string[]);
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid || exclude.includes(pid)) continue;
    const cmdline = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').trim();
    if (cmdline === '') continue; // gone, or a zombie / kernel thread
    const environ = await readFile(`/proc/${name}/environ`, 'utf8').catch(() => '');
    if (cmdline.includes(marker) || environ.includes(marker)) out.set(pid, cmdline);
  }
  return out;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((res, rej) =>
    execFile(cmd, args, (e, _out, err) => (e ? rej(new Error(`${cmd} ${args.join(' ')}: ${err || e.message}`)) : res())),
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface LivePilot {
  workDir: string;
  stamp: string;
  ppid: number;
  /** The token file the wrapper wrote in the work dir (the pilot reads and deletes it first thing). */
  tokenFile?: string;
  /** The wrapper's log in the work dir (the pilot replays it; the wrapper appends to it). */
  wrapperLog?: string;
}

/** What a pilot makes in its work dir for a job: the job dir, sandboxes, report journals, the session registry. */
const JOB_ENTRY = /^\d+$|^\.job-|^\.reports-|^payload-sessions$/;

export class FaultSystem {
  readonly faults: FaultRecord[] = [];
  url = '';
  adminToken = '';
  jobIds: number[] = [];
  /** Jobs submitted besides the ledger's (the 'disk-full' filler): waited for, not judged by the ledger. */
  extraJobIds: number[] = [];
  /** The tmpfs mounts on pilots' work dirs ('disk-full'). */
  readonly diskMounts: PilotDiskMount[] = [];
  private diskWatch: { stop: boolean; done: Promise<void> } | null = null;
  submittedAt = 0;
  allFinalAt: number | null = null;
  private server: ChildProcess | null = null;
  private serverExit: Promise<void> | null = null;
  private starts = 0;
  private readonly log: (line: string) => void;

  private constructor(
    readonly o: FaultSystemOptions,
    readonly cluster: PgCluster,
    readonly dbUrl: string,
    /** Everything of the run: data/, tmp/, ledger/, server logs, config.json. */
    readonly base: string,
    readonly port: number,
    /** In every payload's command line and environment. */
    readonly marker: string,
  ) {
    this.log = o.log ?? (() => undefined);
  }

  get dataDir(): string {
    return join(this.base, 'data');
  }
  get ledgerFile(): string {
    return ledgerPaths(this.base, this.marker).ledgerFile;
  }
  get payloadScript(): string {
    return ledgerPaths(this.base, this.marker).payloadScript;
  }
  serverLog(n: number): string {
    return join(this.base, `server-${n}.log`);
  }

  /** Makes the cluster, the directories, the ledger and the config, and starts the server. */
  static async start(o: FaultSystemOptions): Promise<FaultSystem> {
    requireBuild();
    const base = await mkdtemp(join(tmpdir(), `wms-faults-${o.name}-`));
    let cluster: PgCluster | null = null;
    try {
      // Local pilots run as nobody when the tests run as root: they must reach the run dir
      // under tmp/ and the ledger; the data dir is made private by the server itself.
      await makeRunDirs(base);
      cluster = await PgCluster.create();
      const dbUrl = await cluster.createDatabase(`faults_${o.name.replace(/[^a-z0-9]/gi, '_')}`);
      const marker = `wmsfault${process.pid}x${Math.random().toString(36).slice(2, 10)}`;
      const sys = new FaultSystem(o, cluster, dbUrl, base, await freePort(), marker);
      await sys.writeFiles();
      await sys.startServer();
      return sys;
    } catch (e) {
      await cluster?.destroy().catch(() => undefined);
      await rm(base, { recursive: true, force: true }).catch(() => undefined);
      throw e;
    }
  }

  private async writeFiles(): Promise<void> {
    await writeLedgerPayload(this.base, this.marker, this.o.payloadSeconds, 'fault');
    const config = fastConfig(
      { slots: this.o.slots, heartbeatSeconds: 1, stalledAfterSeconds: 15, failedAfterSeconds: 120 },
      this.o.config ?? {},
    );
    await writeFile(join(this.base, 'config.json'), JSON.stringify(config, null, 2));
  }

  /** The server's pid while it runs. */
  get serverPid(): number | null {
    return this.server && this.server.exitCode === null && this.server.signalCode === null ? (this.server.pid ?? null) : null;
  }

  /** Starts `wms server start` and waits until `/api/health` answers 200 (the admin token read). */
  async startServer(timeoutMs = 90_000): Promise<void> {
    if (this.serverPid !== null) throw new Error('the server already runs');
    const n = ++this.starts;
    const args = [
      'server',
      'start',
      '--db',
      this.dbUrl,
      '--data-dir',
      this.dataDir,
      '--port',
      String(this.port),
      '--config',
      join(this.base, 'config.json'),
      '--log-level',
      this.o.logLevel ?? process.env['FAULTS_LOG_LEVEL'] ?? 'info',
      ...(this.o.serverArgs ?? []),
    ];
    const env = envWithoutWms({ TMPDIR: join(this.base, 'tmp'), ...this.o.env });
    const p = await spawnCli({ args, log: this.serverLog(n), cwd: this.base, env });
    this.server = p.child;
    this.serverExit = p.exited;
    this.url = `http://127.0.0.1:${this.port}`;
    await waitHealthy(this.url, timeoutMs, `server start #${n}`, p);
    this.adminToken = (await readFile(join(this.dataDir, 'admin.token'), 'utf8')).trim();
    this.log(`server #${n} up (pid ${p.child.pid}) at ${this.url}`);
  }

  /** GET /api/health answers 200. */
  async healthy(): Promise<boolean> {
    return healthy(this.url);
  }

  /** Calls the API as admin; throws on a non-2xx answer or no answer. */
  async api<T = any>(method: string, path: string, body?: unknown, timeoutMs = 15_000): Promise<T> {
    const res = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return text ? (JSON.parse(text) as T) : (undefined as T);
  }

  /** Submits `n` jobs in one parametric JDL; each runs the ledger payload. */
  async submit(n: number): Promise<number[]> {
    const jdl = ledgerJdlLines({
      jobName: `fault_${this.o.name}`,
      payloadScript: this.payloadScript,
      marker: this.marker,
      markerVar: 'FAULT_MARKER',
      n,
    }).join('\n');
    this.submittedAt = Date.now();
    const { jobIds } = await this.api<{ jobIds: number[] }>('POST', '/api/jobs', { jdl });
    if (jobIds.length !== n) throw new Error(`submitted ${n} jobs, got ${jobIds.length} ids`);
    this.jobIds = jobIds;
    this.log(`submitted ${n} jobs (${jobIds[0]}..${jobIds[jobIds.length - 1]})`);
    return jobIds;
  }

  /** Counts by status from the API, or null while it cannot answer (a fault). */
  async counts(): Promise<Record<string, number> | null> {
    try {
      const r = await this.api<{ counts: Record<string, number> }>('GET', '/api/jobs/summary', undefined, 5000);
      return r.counts;
    } catch {
      return null;
    }
  }

  /** Jobs in a final state now, or null while the API cannot answer. */
  async finalCount(): Promise<number | null> {
    const c = await this.counts();
    if (c === null) return null;
    return FINAL_STATUSES.reduce((s, k) => s + (c[k] ?? 0), 0);
  }

  /**
   * Polls until at least `target` jobs are final (503s and refused connections are waited
   * through); throws after `timeoutMs` with the last counts.
   */
  async waitFinal(target: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let last: Record<string, number> | null = null;
    let lastLog = 0;
    for (;;) {
      const c = await this.counts();
      if (c) {
        last = c;
        const final = FINAL_STATUSES.reduce((s, k) => s + (c[k] ?? 0), 0);
        if (final >= target) return final;
        if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          this.log(`  ${final}/${this.jobIds.length} final, waiting for ${target}: ${JSON.stringify(c)}`);
        }
      }
      if (Date.now() > deadline)
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${target} jobs final; last counts ${JSON.stringify(last)}`);
      await sleep(250);
    }
  }

  /** Waits for every submitted job to be final; records the time. */
  async waitAllFinal(timeoutMs: number): Promise<void> {
    await this.waitFinal(this.jobIds.length + this.extraJobIds.length, timeoutMs);
    this.allFinalAt = Date.now();
    this.log(`all ${this.jobIds.length} jobs final after ${((this.allFinalAt - this.submittedAt) / 1000).toFixed(1)} s`);
  }

  /** Waits (up to `timeoutMs`) for the API to answer again and stamps the fault. */
  private async waitBack(f: FaultRecord, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.healthy())) {
      if (this.serverPid === null) {
        const c = this.server;
        throw new Error(
          `the server exited (${c?.exitCode ?? c?.signalCode}) after ${f.kind}; the end of its log:\n${await tail(this.serverLog(this.starts), 30)}`,
        );
      }
      if (Date.now() > deadline) throw new Error(`the API did not answer for ${timeoutMs} ms after ${f.kind}`);
      await sleep(100);
    }
    f.apiBackAt = Date.now();
    this.log(`  API back ${((f.apiBackAt - f.at) / 1000).toFixed(1)} s after ${f.kind}`);
  }

  private async record(kind: string): Promise<FaultRecord> {
    const c = await this.counts();
    const sum = (keys: readonly string[]) => (c === null ? -1 : keys.reduce((s, k) => s + (c[k] ?? 0), 0));
    const f: FaultRecord = {
      kind,
      at: Date.now(),
      apiBackAt: null,
      finalBefore: sum(FINAL_STATUSES),
      inFlightBefore: sum(['Matched', 'Running', 'Completing']),
    };
    this.faults.push(f);
    this.log(`FAULT ${kind} with ${f.finalBefore} jobs final and ${f.inFlightBefore} in flight`);
    return f;
  }

  /** SIGKILL of the server process, then the same server again (same data dir, db, port). */
  async killAndRestartServer(downMs = 0): Promise<FaultRecord> {
    const child = this.server;
    if (!child || this.serverPid === null) throw new Error('no server to kill');
    const f = await this.record('server SIGKILL');
    child.kill('SIGKILL');
    await this.serverExit;
    if (downMs > 0) await sleep(downMs);
    await this.startServer();
    await this.waitBack(f);
    return f;
  }

  /**
   * SIGTERM (the graceful path) and the wait for the exit; SIGKILL after `timeoutMs` (the
   * record says so). Answers the ms the exit took.
   */
  async stopServer(timeoutMs = 120_000): Promise<{ ms: number; forced: boolean }> {
    const child = this.server;
    if (!child || this.serverPid === null) return { ms: 0, forced: false };
    const t = Date.now();
    child.kill('SIGTERM');
    const exited = await Promise.race([this.serverExit!.then(() => true), sleep(timeoutMs).then(() => false)]);
    if (!exited) {
      child.kill('SIGKILL');
      await this.serverExit;
    }
    return { ms: Date.now() - t, forced: !exited };
  }

  /** Graceful stop (SIGTERM, wait for the exit), then the same server again. */
  async gracefulRestartServer(): Promise<FaultRecord> {
    const f = await this.record('server SIGTERM');
    const { ms, forced } = await this.stopServer();
    f.exitMs = ms;
    this.log(`  server exited ${(ms / 1000).toFixed(1)} s after SIGTERM${forced ? ' (forced by SIGKILL: it did not exit in time)' : ''}`);
    if (forced) f.kind += ' (forced)';
    await this.startServer();
    await this.waitBack(f);
    return f;
  }

  /** `pg_ctl restart -m MODE` of the private cluster. */
  async restartPostgres(mode: StopMode): Promise<FaultRecord> {
    const f = await this.record(`postgres restart -m ${mode}`);
    await this.cluster.restart(mode);
    await this.waitBack(f);
    return f;
  }

  /**
   * Mounts a tmpfs of `sizeMb` on the work dir of every live local pilot of this run that has
   * made no job entry yet, now and every 100 ms until `stopDiskWatcher()`: new job dirs are then
   * made on it, so a job that fills its disk fills only its own pilot's. A mount that lost the
   * race with the pilot's first job dir (seen through /proc/<pid>/cwd, which still shows the
   * directory under the mount) is undone at once (`umount -l`).
   */
  startDiskWatcher(sizeMb: number): void {
    if (this.diskWatch) return;
    const w = { stop: false, done: Promise.resolve() };
    w.done = (async () => {
      while (!w.stop) {
        await this.mountNewPilots(sizeMb).catch((e: unknown) => this.log(`disk watcher: ${(e as Error).message}`));
        await sleep(100);
      }
    })();
    this.diskWatch = w;
  }

  async stopDiskWatcher(): Promise<void> {
    if (!this.diskWatch) return;
    this.diskWatch.stop = true;
    await this.diskWatch.done;
    this.diskWatch = null;
  }

  /** Live pilot node processes of this run: pid -> its environment's work dir and stamp. */
  async livePilots(): Promise<Map<number, LivePilot>> {
    const out = new Map<number, LivePilot>();
    for (const [pid, cmd] of await this.runProcesses()) {
      if (!/\bpilot\.mjs\b/.test(cmd)) continue;
      const environ = (await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '')).split('\0');
      const get = (k: string) => environ.find((e) => e.startsWith(`${k}=`))?.slice(k.length + 1);
      const workDir = get('WMS_PILOT_WORK_DIR');
      const tokenFile = get('WMS_PILOT_TOKEN_FILE');
      const wrapperLog = get('WMS_PILOT_WRAPPER_LOG');
      const statLine = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      const ppid = Number(statLine.slice(statLine.lastIndexOf(')') + 2).split(' ')[1]);
      if (workDir)
        out.set(pid, {
          workDir,
          stamp: get('WMS_PILOT_STAMP') ?? '',
          ppid,
          ...(tokenFile ? { tokenFile } : {}),
          ...(wrapperLog ? { wrapperLog } : {}),
        });
    }
    return out;
  }

  private async mountNewPilots(sizeMb: number): Promise<void> {
    for (const [pid, p] of await this.livePilots()) {
      if (this.diskMounts.some((m) => m.pid === pid || m.workDir === p.workDir)) continue;
      // Not before the pilot took its token file (the mount would hide it: exit code 2).
      if (p.tokenFile && existsSync(p.tokenFile)) continue;
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '');
      const m: PilotDiskMount = {
        pid,
        wrapperPid: p.ppid,
        stamp: p.stamp,
        workDir: p.workDir,
        mountedAt: Date.now(),
        sizeMb,
        unmounted: true,
      };
      if (cwd !== p.workDir) {
        m.note = `cwd ${cwd} is not the work dir`;
        this.diskMounts.push(m);
        continue;
      }
      const before = await readdir(p.workDir).catch(() => null);
      if (before === null || before.some((n) => JOB_ENTRY.test(n))) {
        m.note = before === null ? 'work dir gone' : `had job entries already (${before.filter((n) => JOB_ENTRY.test(n)).join(' ')})`;
        this.diskMounts.push(m);
        continue;
      }
      const st = await stat(p.workDir);
      await run('mount', [
        '-t',
        'tmpfs',
        '-o',
        `size=${sizeMb}m,uid=${st.uid},gid=${st.gid},mode=${(st.mode & 0o7777).toString(8)}`,
        'tmpfs',
        p.workDir,
      ]);
      this.diskMounts.push(m);
      m.unmounted = false;
      // The wrapper's log goes on on the tmpfs (the pilot may not have replayed it yet).
      if (p.wrapperLog?.startsWith(`${p.workDir}/`)) {
        const name = p.wrapperLog.slice(p.workDir.length + 1);
        await run('cp', ['-p', `/proc/${pid}/cwd/${name}`, p.wrapperLog]).catch(() => undefined);
      }
      // The directory under the mount: a job entry made there meanwhile lost the race.
      const under = await readdir(`/proc/${pid}/cwd`).catch(() => [] as string[]);
      const raced = under.filter((n) => JOB_ENTRY.test(n));
      if (raced.length > 0) {
        await run('umount', ['-l', p.workDir]).catch(() => undefined);
        m.unmounted = true;
        m.note = `raced with ${raced.join(' ')}: unmounted`;
      }
      this.log(`tmpfs ${sizeMb} MB on pilot ${p.stamp} (pid ${pid}) ${p.workDir}${m.note ? `: ${m.note}` : ''}`);
    }
  }

  /** Unmounts every tmpfs the watcher mounted (lazily when busy). */
  async unmountDisks(): Promise<void> {
    await this.stopDiskWatcher().catch(() => undefined);
    for (const m of this.diskMounts) {
      if (m.unmounted) continue;
      try {
        await run('umount', [m.workDir]);
      } catch {
        await run('umount', ['-l', m.workDir]).catch((e: unknown) => this.log(`umount -l ${m.workDir}: ${(e as Error).message}`));
      }
      m.unmounted = true;
    }
  }

  /** The disk of the pilot of `m` now: its tmpfs's space and the descriptors its node process holds there. */
  async diskSample(m: PilotDiskMount): Promise<DiskSample> {
    const MB = 1024 * 1024;
    const s = await statfs(m.workDir);
    const openFiles: string[] = [];
    const pilotAlive = alive(m.pid);
    for (const fd of await readdir(`/proc/${m.pid}/fd`).catch(() => [] as string[])) {
      const target = await readlink(`/proc/${m.pid}/fd/${fd}`).catch(() => '');
      if (target.startsWith(`${m.workDir}/`)) openFiles.push(`${fd} -> ${target}`);
    }
    return {
      at: Date.now(),
      pilotAlive,
      totalMb: round1((s.blocks * s.bsize) / MB),
      freeMb: round1((s.bavail * s.bsize) / MB),
      openFiles,
      deletedOpen: openFiles.filter((f) => f.endsWith(' (deleted)')),
    };
  }

  /**
   * Submits the filler: one job (not one of the ledger's) whose payload writes zeros in its job
   * dir until the disk is full, then waits; the watchdog's disk limit should stop it.
   */
  async fillPilotDisk(): Promise<number> {
    const f = await this.record('disk filled by a job');
    const jdl = [
      '[',
      `  JobName = "fault_${this.o.name}_filler";`,
      '  Executable = "/bin/sh";',
      `  Arguments = "-c 'dd if=/dev/zero of=fill bs=1M count=200 2>&1; sleep 30; exit 1' ${this.marker}";`,
      `  ExecutionEnvironment = "FAULT_MARKER=${this.marker}";`,
      '  Priority = 10;',
      '  CPUTime = 600;',
      ']',
    ].join('\n');
    const { jobIds } = await this.api<{ jobIds: number[] }>('POST', '/api/jobs', { jdl });
    const id = jobIds[0]!;
    this.extraJobIds.push(id);
    f.apiBackAt = f.at;
    this.log(`  filler job ${id} submitted`);
    return id;
  }

  /** The ledger, per job id: its payload runs. */
  async ledger(): Promise<{ runs: Map<number, LedgerRun[]>; strangers: string[] }> {
    const { runs, strange } = parseLedger(await readFile(this.ledgerFile, 'utf8'), new Set(this.jobIds));
    return { runs, strangers: strange };
  }

  /** Runs SQL on the system's database (a connection of its own). */
  async query<T = any>(sql: string, params: unknown[] = []): Promise<T[]> {
    return queryOnce<T>(this.dbUrl, sql, params);
  }

  /** Every job's state from the database against the ledger. */
  async verdict(): Promise<Verdict> {
    const rows = await this.query<{ id: string; status: string; minor_status: string; reschedule_counter: number }>(
      'select id, status, minor_status, reschedule_counter from jobs where id = any($1::bigint[]) order by id',
      [this.jobIds],
    );
    const { runs, strangers } = await this.ledger();
    const byStatus: Record<string, number> = {};
    for (const r of rows) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    const notDone = rows
      .filter((r) => r.status !== 'Done')
      .map((r) => ({ id: Number(r.id), status: r.status, minorStatus: r.minor_status, reschedules: r.reschedule_counter }));
    const found = new Set(rows.map((r) => Number(r.id)));
    for (const id of this.jobIds) if (!found.has(id)) notDone.push({ id, status: '(no row)', minorStatus: '', reschedules: 0 });
    const duplicates: Verdict['duplicates'] = [];
    const neverStarted: number[] = [];
    const unfinishedRuns: Verdict['unfinishedRuns'] = [];
    for (const id of this.jobIds) {
      const list = runs.get(id) ?? [];
      if (list.length > 1) duplicates.push({ id, runs: list });
      if (list.length === 0 && rows.find((r) => Number(r.id) === id)?.status === 'Done') neverStarted.push(id);
      for (const r of list) if (r.end === null) unfinishedRuns.push({ id, pid: r.pid });
    }
    return {
      jobs: this.jobIds.length,
      done: byStatus['Done'] ?? 0,
      byStatus,
      notDone,
      duplicates,
      neverStarted,
      unfinishedRuns,
      strangers,
    };
  }

  /** Payload processes of this run (by the marker), pid -> command line. */
  async payloadProcesses(): Promise<Map<number, string>> {
    return processesWith(this.marker, this.serverPid === null ? [] : [this.serverPid]);
  }

  /** Every process of this run but the server: pilots (their HOME is under tmp/) and payloads. */
  async runProcesses(): Promise<Map<number, string>> {
    return processesWith(join(this.base, 'tmp'), this.serverPid === null ? [] : [this.serverPid]);
  }

  /** Pilots by status and reason. */
  async pilotSummary(): Promise<ScenarioResult['pilots']> {
    const rows = await this.query<{ status: string; reason: string; n: string }>(
      `select status, status_reason as reason, count(*) as n from pilots group by 1, 2 order by 3 desc`,
    );
    return rows.map((r) => ({ status: r.status, reason: r.reason, n: Number(r.n) }));
  }

  /** Up to `max` pilots that ended Failed or Aborted, with the last `lines` lines of their remote logs. */
  async failedPilots(max = 3, lines = 6): Promise<ScenarioResult['failedPilots']> {
    const pilots = await this.query<{ id: string; status_reason: string }>(
      `select id, status_reason from pilots where status in ('Failed', 'Aborted') order by id limit $1`,
      [max],
    );
    const out: ScenarioResult['failedPilots'] = [];
    for (const p of pilots) {
      const logs = await this.query<{ line: string }>('select line from pilot_logs where pilot_id = $1 order by id desc limit $2', [
        p.id,
        lines,
      ]);
      out.push({ id: Number(p.id), reason: p.status_reason, lastLines: logs.map((l) => l.line.slice(0, 200)).reverse() });
    }
    return out;
  }

  /** Seconds from each fault to all jobs final, and to the API answering again. */
  recoveries(): ScenarioResult['faults'] {
    return this.faults.map((f) => ({
      ...f,
      recoverySeconds: this.allFinalAt === null ? null : round1((this.allFinalAt - f.at) / 1000),
      apiBackSeconds: f.apiBackAt === null ? null : round1((f.apiBackAt - f.at) / 1000),
    }));
  }

  /**
   * What the system says about these jobs: history (job_history), the pilot that holds or held
   * them, the ledger lines, the pilot log lines and the server log lines that name them.
   */
  async diagnose(ids: readonly number[], max = 5): Promise<string> {
    const out: string[] = [];
    const ledgerText = await readFile(this.ledgerFile, 'utf8').catch(() => '');
    const serverLogs: string[] = [];
    for (let n = 1; n <= this.starts; n++)
      serverLogs.push(...(await readFile(this.serverLog(n), 'utf8').catch(() => '')).split('\n').map((l) => `#${n} ${l}`));
    for (const id of ids.slice(0, max)) {
      out.push(`--- job ${id}`);
      try {
        const job = await this.query(
          'select status, minor_status, application_status, reschedule_counter, pilot_id from jobs where id = $1',
          [id],
        );
        out.push(`now: ${JSON.stringify(job[0] ?? null)}`);
        const hist = await this.query<{ status: string; minor_status: string; application_status: string; source: string; at: Date }>(
          'select status, minor_status, application_status, source, at from job_history where job_id = $1 order by at, id',
          [id],
        );
        for (const h of hist)
          out.push(`  ${new Date(h.at).toISOString()} ${h.status} | ${h.minor_status} | ${h.application_status} | ${h.source}`);
        const params = await this.query<{ name: string; value: string }>(
          `select name, value from job_parameters where job_id = $1 and name in ('PilotStamp', 'PilotReference', 'HostName')`,
          [id],
        );
        if (params.length) out.push(`parameters: ${params.map((p) => `${p.name}=${p.value}`).join(', ')}`);
        const logs = await this.query<{ pilot_id: string; at: Date; line: string }>(
          `select pilot_id, at, line from pilot_logs where line ~ $1 order by at, id limit 40`,
          [`(job|Job|jobs?)[ #:=]*${id}([^0-9]|$)`],
        );
        for (const l of logs) out.push(`  pilot ${l.pilot_id}: ${l.line.slice(0, 300)}`);
        const pilotIds = [
          ...new Set([...logs.map((l) => Number(l.pilot_id)), ...hist.flatMap((h) => /pilot (\d+)/.exec(h.source)?.[1] ?? []).map(Number)]),
        ];
        const pilots = await this.query<{
          id: string;
          status: string;
          status_reason: string;
          reference: string;
          jobs_run: number;
          last_update_at: Date;
        }>('select id, status, status_reason, reference, jobs_run, last_update_at from pilots where id = any($1::bigint[]) order by id', [
          pilotIds,
        ]);
        for (const p of pilots) {
          out.push(
            `  pilot ${p.id} is ${p.status} ("${p.status_reason}") since ${new Date(p.last_update_at).toISOString()}, ${p.jobs_run} jobs, ${p.reference}`,
          );
        }
      } catch (e) {
        out.push(`(database: ${(e as Error).message})`);
      }
      const ledgerLines = ledgerText.split('\n').filter((l) => l.startsWith(`${id} `));
      out.push(
        `ledger: ${ledgerLines.map((l) => l.replace(/ (\d{13})$/, (_, ms) => ` ${new Date(Number(ms)).toISOString()}`)).join(' ; ') || '(nothing)'}`,
      );
      const re = new RegExp(`(jobId"?[:=] ?"?${id}[^0-9]|job ${id}[^0-9]|/jobs/${id}/)`);
      const lines = serverLogs.filter((l) => re.test(l) && !/"statusCode":2\d\d/.test(l)).slice(0, 15);
      for (const l of lines) out.push(`  server${l.slice(0, 400)}`);
    }
    if (ids.length > max) out.push(`(and ${ids.length - max} more jobs)`);
    return out.join('\n');
  }

  /** The server logs' warnings and errors (at most `max` lines), for reports. */
  async serverProblems(max = 40): Promise<string[]> {
    const out: string[] = [];
    for (let n = 1; n <= this.starts; n++) {
      const text = await readFile(this.serverLog(n), 'utf8').catch(() => '');
      for (const l of text.split('\n')) {
        if (/"level":(40|50|60)|\b(Error|error|ECONNREFUSED|Unhandled|uncaught)\b/.test(l)) out.push(`#${n} ${l.slice(0, 300)}`);
      }
    }
    return out.slice(0, max);
  }

  /** Kills everything left, removes the cluster and the directory. Safe to call twice. */
  async destroy(): Promise<void> {
    const pid = this.serverPid;
    if (pid !== null) {
      this.server!.kill('SIGKILL');
      await this.serverExit;
    }
    for (const p of (await this.runProcesses().catch(() => new Map<number, string>())).keys()) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const p of (await this.payloadProcesses().catch(() => new Map<number, string>())).keys()) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await this.unmountDisks().catch(() => undefined);
    await this.cluster.destroy().catch(() => undefined);
    if (process.env['FAULTS_KEEP'] !== '1') await rm(this.base, { recursive: true, force: true }).catch(() => undefined);
    else this.log(`kept ${this.base}`);
  }
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

export interface ScenarioOptions {
  jobs: number;
  /** Longest wait for all jobs final after the last fault (ms). */
  finalTimeoutMs?: number;
}

/**
 * One scenario on a started system: submit `jobs`, inject the faults mid-run, wait for all
 * jobs final, stop the server gracefully, look for payloads left, and judge. Never throws for a
 * run that went wrong (the result's `error` says why); the caller asserts.
 */
export async function runFaultScenario(sys: FaultSystem, scenario: FaultScenario, o: ScenarioOptions): Promise<ScenarioResult> {
  const finalTimeoutMs = o.finalTimeoutMs ?? 240_000;
  const at = (fraction: number) => Math.max(1, Math.floor(o.jobs * fraction));
  let error: string | null = null;
  let disk: DiskFullReport | undefined;
  let diskRun: Promise<DiskFullReport> | null = null;
  try {
    if (scenario === 'disk-full') sys.startDiskWatcher(DISK_FULL_MB);
    await sys.submit(o.jobs);
    switch (scenario) {
      case 'server-kill':
        await sys.waitFinal(at(0.33), finalTimeoutMs);
        await sys.killAndRestartServer(1000);
        break;
      case 'graceful-restart':
        await sys.waitFinal(at(0.33), finalTimeoutMs);
        await sys.gracefulRestartServer();
        break;
      case 'pg-restart':
        await sys.waitFinal(at(0.2), finalTimeoutMs);
        await sys.restartPostgres('fast');
        await sys.waitFinal(at(0.4), finalTimeoutMs);
        await sys.restartPostgres('fast');
        await sys.waitFinal(at(0.6), finalTimeoutMs);
        await sys.restartPostgres('immediate');
        break;
      case 'disk-full': {
        await sys.waitFinal(at(0.33), finalTimeoutMs);
        // Every live pilot on a tmpfs of its own before the filler can be matched.
        const deadline = Date.now() + 15_000;
        for (;;) {
          const live = await sys.livePilots();
          if ([...live.keys()].every((pid) => sys.diskMounts.some((m) => m.pid === pid && !m.unmounted)) || Date.now() > deadline) break;
          await sleep(100);
        }
        const fillerId = await sys.fillPilotDisk();
        diskRun = watchFiller(sys, fillerId, finalTimeoutMs);
        break;
      }
    }
    await sys.waitAllFinal(finalTimeoutMs);
    if (diskRun) {
      disk = await diskRun;
      await refreshLaterJobs(sys, disk);
    }
  } catch (e) {
    error = (e as Error).message;
  }
  if (diskRun && !disk) disk = await diskRun.catch(() => undefined);
  await sys.stopDiskWatcher();
  if (disk) disk.afterRun = await fillerPilotDisk(sys, disk).catch(() => null);
  // The system stops as an operator stops it; then nothing of the run's payloads may be left.
  const stop = await sys.stopServer(60_000);
  const leftoverPayloads = [...(await sys.payloadProcesses())].map(([pid, cmd]) => `${pid}: ${cmd}`);
  // Pilots of a killed server are nobody's children any more: they end by themselves once no
  // work is left (stopAfterFailedMatches); give them 20 s, then report and kill the rest.
  let pilots = await sys.runProcesses();
  const deadline = Date.now() + 20_000;
  while (pilots.size > 0 && Date.now() < deadline) {
    await sleep(500);
    pilots = await sys.runProcesses();
  }
  const leftoverPilots = [...pilots].map(([pid, cmd]) => `${pid}: ${cmd}`);
  if (stop.forced) error = `${error ? `${error}; ` : ''}the final graceful stop did not end the server in 60 s`;
  if (disk) disk.pilot = await fillerPilot(sys, disk.filler?.pilotId ?? null).catch(() => null);
  await sys.unmountDisks();
  return {
    scenario,
    jobs: o.jobs,
    slots: sys.o.slots,
    payloadSeconds: sys.o.payloadSeconds,
    verdict: await sys.verdict(),
    faults: sys.recoveries(),
    totalSeconds: round1(((sys.allFinalAt ?? Date.now()) - sys.submittedAt) / 1000),
    leftoverPayloads,
    leftoverPilots,
    pilots: await sys.pilotSummary().catch(() => []),
    failedPilots: await sys.failedPilots().catch(() => []),
    error,
    ...(disk ? { disk } : {}),
  };
}

/** The size of each pilot's tmpfs in 'disk-full': above the harness's `minDiskMb` (50), so that a pilot whose space did not come back stops taking jobs. */
export const DISK_FULL_MB = 64;

/** The mount of the pilot with this stamp. */
async function mountOfPilot(sys: FaultSystem, pilotId: number | null): Promise<PilotDiskMount | null> {
  if (pilotId === null) return null;
  const [p] = await sys.query<{ stamp: string }>('select stamp from pilots where id = $1', [pilotId]);
  return (p && sys.diskMounts.find((m) => m.stamp === p.stamp)) ?? null;
}

async function fillerPilotDisk(sys: FaultSystem, d: DiskFullReport): Promise<DiskSample | null> {
  const m = await mountOfPilot(sys, d.filler?.pilotId ?? null);
  return m && !m.unmounted ? sys.diskSample(m) : null;
}

async function fillerPilot(sys: FaultSystem, pilotId: number | null): Promise<DiskFullReport['pilot']> {
  if (pilotId === null) return null;
  const [p] = await sys.query<{ status: string; status_reason: string; jobs_run: number }>(
    'select status, status_reason, jobs_run from pilots where id = $1',
    [pilotId],
  );
  return p ? { id: pilotId, status: p.status, reason: p.status_reason, jobsRun: p.jobs_run } : null;
}

/** The jobs (of the ledger's) the filler's pilot started after the filler ended. */
async function refreshLaterJobs(sys: FaultSystem, d: DiskFullReport): Promise<void> {
  if (d.filler?.pilotId == null || d.fillerEndedAt === null) return;
  const later = await sys.query<{ id: string; status: string; started: Date }>(
    `select j.id, j.status, min(h.at) as started from jobs j join job_history h on h.job_id = j.id and h.status = 'Running'
      where j.pilot_id = $1 and j.id = any($2::bigint[]) group by j.id, j.status having min(h.at) > $3 order by 3`,
    [d.filler.pilotId, sys.jobIds, new Date(d.fillerEndedAt)],
  );
  d.laterJobs = later.map((l) => ({ id: Number(l.id), status: l.status, startedAt: new Date(l.started).getTime() }));
}

/**
 * Follows the filler until it is final and its pilot's next job (one of the ledger's) is Done,
 * then samples that pilot's disk; gives up when all jobs are final or after `timeoutMs`.
 */
async function watchFiller(sys: FaultSystem, fillerId: number, timeoutMs: number): Promise<DiskFullReport> {
  const d: DiskFullReport = {
    mounted: 0,
    raced: 0,
    sizeMb: DISK_FULL_MB,
    fillerId,
    filler: null,
    fillerPilotMounted: false,
    fillerStartedAt: null,
    fillerEndedAt: null,
    laterJobs: [],
    nextJobStartSeconds: null,
    nextJobDoneSeconds: null,
    afterNextJob: null,
    afterRun: null,
    pilot: null,
  };
  const deadline = Date.now() + timeoutMs;
  const ms = (t: Date | null | undefined) => (t ? new Date(t).getTime() : null);
  for (;;) {
    const done = Date.now() > deadline || sys.allFinalAt !== null;
    try {
      const [j] = await sys.query<{ status: string; minor_status: string; application_status: string; pilot_id: string | null }>(
        'select status, minor_status, application_status, pilot_id from jobs where id = $1',
        [fillerId],
      );
      if (j)
        d.filler = {
          status: j.status,
          minorStatus: j.minor_status,
          applicationStatus: j.application_status,
          pilotId: j.pilot_id === null ? null : Number(j.pilot_id),
        };
      if (j && FINAL_STATUSES.includes(j.status as (typeof FINAL_STATUSES)[number]) && d.filler?.pilotId != null) {
        const [h] = await sys.query<{ started: Date | null; ended: Date | null }>(
          `select min(at) filter (where status = 'Running') as started, max(at) filter (where status = $2) as ended from job_history where job_id = $1`,
          [fillerId, j.status],
        );
        d.fillerStartedAt = ms(h?.started);
        d.fillerEndedAt = ms(h?.ended);
        const m = await mountOfPilot(sys, d.filler.pilotId);
        d.fillerPilotMounted = m !== null && !m.unmounted;
        if (d.fillerEndedAt !== null) {
          await refreshLaterJobs(sys, d);
          const first = d.laterJobs[0];
          if (first) d.nextJobStartSeconds = round1((first.startedAt - d.fillerEndedAt) / 1000);
          const firstDone = d.laterJobs.find((l) => l.status === 'Done');
          if (firstDone && d.nextJobDoneSeconds === null) {
            const [dh] = await sys.query<{ at: Date }>(`select min(at) as at from job_history where job_id = $1 and status = 'Done'`, [
              firstDone.id,
            ]);
            d.nextJobDoneSeconds = round1(((ms(dh?.at) ?? Date.now()) - d.fillerEndedAt) / 1000);
            if (m && !m.unmounted) d.afterNextJob = await sys.diskSample(m);
          }
          if (d.afterNextJob !== null || (firstDone && !m)) break;
        }
      }
    } catch {
      // the database answers again later
    }
    if (done) break;
    await sleep(250);
  }
  d.mounted = sys.diskMounts.filter((m) => m.note === undefined).length;
  d.raced = sys.diskMounts.filter((m) => m.note?.startsWith('raced')).length;
  return d;
}

/** The jobs a result says went wrong (not Done, run twice, Done without running, cut short). */
export function badJobs(r: ScenarioResult): number[] {
  const v = r.verdict;
  return [
    ...new Set([...v.duplicates.map((d) => d.id), ...v.notDone.map((n) => n.id), ...v.neverStarted, ...v.unfinishedRuns.map((u) => u.id)]),
  ].sort((a, b) => a - b);
}

/** One paragraph for a test's failure message or a benchmark's stderr. */
export function describeResult(r: ScenarioResult): string {
  const v = r.verdict;
  return [
    `${r.scenario}: ${v.done}/${v.jobs} Done ${JSON.stringify(v.byStatus)}; ${v.duplicates.length} run twice; ` +
      `${v.neverStarted.length} Done without a run; ${v.unfinishedRuns.length} runs cut short; ${r.leftoverPayloads.length} payloads left; ` +
      `${r.leftoverPilots.length} pilots left; total ${r.totalSeconds} s`,
    ...r.faults.map(
      (f) =>
        `  ${f.kind} at ${f.finalBefore} final, ${f.inFlightBefore} in flight: API back in ${f.apiBackSeconds} s, all final ${f.recoverySeconds} s after${f.exitMs !== undefined ? `, exit took ${(f.exitMs / 1000).toFixed(1)} s` : ''}`,
    ),
    `  pilots: ${r.pilots.map((p) => `${p.n} ${p.status} "${p.reason}"`).join('; ')}`,
    ...r.failedPilots.map((p) => `  pilot ${p.id} "${p.reason}", its log ends:\n${p.lastLines.map((l) => `      ${l}`).join('\n')}`),
    ...(r.disk ? describeDisk(r.disk) : []),
    ...(r.error ? [`  error: ${r.error}`] : []),
    ...(v.duplicates.length
      ? [
          `  run twice: ${v.duplicates
            .slice(0, 20)
            .map((d) => `${d.id} (pids ${d.runs.map((x) => x.pid).join(',')})`)
            .join(' ')}`,
        ]
      : []),
    ...(v.notDone.length
      ? [
          `  not Done: ${v.notDone
            .slice(0, 20)
            .map((n) => `${n.id} ${n.status} "${n.minorStatus}"`)
            .join('; ')}`,
        ]
      : []),
    ...(v.neverStarted.length ? [`  Done without a run: ${v.neverStarted.slice(0, 20).join(' ')}`] : []),
    ...(v.unfinishedRuns.length
      ? [
          `  cut short: ${v.unfinishedRuns
            .slice(0, 20)
            .map((u) => `${u.id}/${u.pid}`)
            .join(' ')}`,
        ]
      : []),
    ...(v.strangers.length ? [`  strange ledger lines: ${v.strangers.slice(0, 5).join(' | ')}`] : []),
    ...(r.leftoverPayloads.length ? [`  payloads left: ${r.leftoverPayloads.slice(0, 5).join(' | ')}`] : []),
    ...(r.leftoverPilots.length ? [`  pilots left: ${r.leftoverPilots.slice(0, 5).join(' | ')}`] : []),
  ].join('\n');
}

function describeSample(s: DiskSample | null): string {
  if (!s) return 'not sampled';
  return `${s.freeMb}/${s.totalMb} MB free, pilot ${s.pilotAlive ? 'alive' : 'gone'}, ${s.openFiles.length} files open there (${s.deletedOpen.length} deleted)${s.deletedOpen.length ? `: ${s.deletedOpen.slice(0, 5).join(', ')}` : ''}`;
}

function describeDisk(d: DiskFullReport): string[] {
  const f = d.filler;
  return [
    `  disk: ${d.mounted} pilots on a tmpfs of ${d.sizeMb} MB (${d.raced} undone: raced); filler ${d.fillerId} ${f ? `${f.status} "${f.minorStatus}" "${f.applicationStatus}" on pilot ${f.pilotId}${d.fillerPilotMounted ? ' (on its tmpfs)' : ' (NOT on a tmpfs)'}` : '(no row)'}`,
    `  the filler ran ${d.fillerStartedAt && d.fillerEndedAt ? `${round1((d.fillerEndedAt - d.fillerStartedAt) / 1000)} s` : '?'}; its pilot then ran ${d.laterJobs.length} jobs (${d.laterJobs.filter((j) => j.status === 'Done').length} Done): next job started ${d.nextJobStartSeconds} s and was Done ${d.nextJobDoneSeconds} s after the filler ended`,
    `  its disk after the next job: ${describeSample(d.afterNextJob)}; after the run: ${describeSample(d.afterRun)}`,
    `  the pilot: ${d.pilot ? `${d.pilot.status} "${d.pilot.reason}", ${d.pilot.jobsRun} jobs` : '?'}`,
  ];
}
