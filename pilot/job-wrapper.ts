/**
 * The job wrapper: runs one matched job on the worker node, as DIRAC's JobWrapper does, and
 * reports each step with DIRAC's minor statuses.
 *
 * ```
 * Running    Job Initialization              job dir <workDir>/<jobId>/ (re)created; start parameters
 * Running    Downloading InputSandbox        each SB:<sha256>: download, verify, safeUnpack
 * Running    Application                     the payload runs under the watchdog (heartbeats)
 * Completing Application Finished Successfully | Application Finished With Errors (Exit code N)
 *            | <watchdog reason>
 * Completing Uploading Output Sandbox -> Output Sandbox Uploaded
 * Done       Execution Complete              or Failed with the reason above
 * ```
 *
 * Failures before the payload: `Illegal Job JDL`, `Payload isolation unavailable` (the queue's
 * isolation cannot be had on this node: see isolation.ts; the outcome says so and the job agent
 * stops the pilot), `Failed Downloading InputSandbox` (the archive's problem as application
 * status), `Application not found`.
 *
 * Isolation. The payload starts in the sandbox the queue asks for (pilot/isolation.ts:
 * bubblewrap, a separate Unix user, or none), with an environment built from nothing: the
 * sandbox's PATH, HOME (the job dir), TMPDIR, USER and LOGNAME, the pilot's payload variables
 * (`env`: the server URL, the locale, the queue's payload environment), the JDL's
 * ExecutionEnvironment, then the job's own variables (DIRACJOBID, WMS_JOB_ID,
 * DIRAC_JOB_PROCESSORS, WMS_JOB_TOKEN), which nothing overrides; the bundle's payload tools
 * (`dirac-jobexec`, payload-tools.ts) come last on its PATH. Once the payload has run, the
 * job dir is the payload's: the wrapper reads its stdout for heartbeats through a descriptor
 * it opened itself (a link put in its place is never followed) and packs outputs without
 * following links. The last lines of stdout (the job's peek, `StandardOutput`) go with each
 * heartbeat and, read once more when the payload has ended, with the final reports: a peek of a
 * finished job ends with the payload's last line, whenever the last heartbeat was.
 *
 * Whatever happens the job dir is removed at the end and nothing of the payload's process tree
 * is left running.
 *
 * Stopping. A `Kill` command (pushed through `command()`, or in a heartbeat answer) kills the
 * payload's tree at once and the wrapper reports nothing more: the server has already marked
 * the job Killed. A status report the server refuses (`accepted: false`: the job was killed
 * meanwhile; or `JOB_NOT_HELD_CODE`: it was rescheduled, maybe to another pilot), or a
 * heartbeat answer saying the job is no longer running (or refused the same way), stops it
 * the same way (outcome Killed or Lost, the reason saying which refusal).
 *
 * Reports that survive outages. Every status report goes through the job's report journal
 * (pilot/report-journal.ts: on the pilot's disk, in order, each with its report id, retried
 * with back-off until `deadline`); the wrapper goes on while the steps before the end travel.
 * The output sandbox upload is retried the same way (content-addressed: a repeat is harmless).
 * The outcome resolves only once the journal is drained, and from the payload's end until then
 * the wrapper keeps sending heartbeats (every `heartbeatMs`, the final figures), so the
 * services never take the job of a pilot that is alive and still reporting.
 *
 * CPU time. The watchdog sums the payload tree from /proc every `pollMs`. What the payload
 * used after the last sample is taken from this process's own counters of waited-for children
 * (read before the spawn and at the exit), bounded by what the node's cores could have done
 * since that sample, because other payloads of the same pilot may have ended in between.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { chmod, mkdir, open, rm, stat, type FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { Writable } from 'node:stream';
import { isArchiveError, normalizeArchivePath, type ArchiveLimits } from '../core/archive-safety.js';
import { getAttribute, parseJdl, type JdlAd, type JdlValue } from '../core/jdl/index.js';
import { MINOR, type JobState } from '../core/job-states.js';
import type { Heartbeat, HeartbeatAnswer, JobCommand, JobStatusAnswer, JobStatusReport } from '../core/pilot-protocol.js';
import { sha256File } from '../io/file-hash.js';
import { retryUntil, type BackoffPolicy } from '../io/retry.js';
import { isJobNotHeld } from './client.js';
import { splitWords } from './shell-words.js';
import {
  ISOLATION_UNAVAILABLE,
  isIsolationUnavailable,
  resolvePayloadSandbox,
  type IsolationSettings,
  type PayloadSandbox,
} from './isolation.js';
import { descendantsOf, isAlive, killTree, selfChildrenCpuSeconds } from './process-tree.js';
import { registerPayloadSession, unregisterPayloadSession } from './payload-sessions.js';
import { installPayloadTools } from './payload-tools.js';
import { ReportJournal, type ReportResult } from './report-journal.js';
import { packOutputs, safeUnpack } from './sandbox.js';
import { DEFAULT_MIN_DISK_MB, PEEK_LINES, rawCpuLimitSeconds, tailLines, Watchdog, type WatchdogLimitHit } from './watchdog.js';

/** How the job wrapper talks to the services for one job (the pilot's HTTP client, with the job token). */
export interface JobChannel {
  setStatus(report: JobStatusReport): Promise<JobStatusAnswer>;
  heartbeat(hb: Heartbeat): Promise<HeartbeatAnswer>;
  downloadSandbox(sha256: string, destFile: string): Promise<void>;
  uploadSandbox(file: string, sha256: string): Promise<void>;
}

export interface JobOutcome {
  jobId: number;
  /** Lost: the job is no longer this pilot's (rescheduled, deleted, failed by the services). */
  status: 'Done' | 'Failed' | 'Killed' | 'Lost';
  exitCode: number | null;
  cpuSeconds: number;
  wallSeconds: number;
  reason: string;
  /** Set when the job was refused because its payload cannot be isolated here (the reason). */
  isolationUnavailable?: string;
}

export interface JobWrapperOptions {
  /** The pilot's local work dir; the job runs in `<workDir>/<jobId>/`. */
  workDir: string;
  /** This node's DB12 per core (the CPU normalization factor). */
  db12: number;
  /** Cores the job may use. */
  processors: number;
  heartbeatMs: number;
  pollMs: number;
  wallClockLimitSeconds?: number;
  sandboxLimits: ArchiveLimits;
  /**
   * Variables every payload of this pilot gets (the server URL, the locale, the queue's payload
   * environment). Never the pilot's own environment: the wrapper adds the sandbox's PATH, HOME,
   * TMPDIR, USER, LOGNAME and the job's variables.
   */
  env: Record<string, string>;
  /** How payloads are isolated (default: `auto`, see isolation.ts). */
  isolation?: IsolationSettings;
  /** Job parameters set at start (HostName, PilotStamp, ...). */
  parameters: Record<string, string>;
  log: (line: string) => void;
  /** SIGTERM to SIGKILL (default 10 s, DIRAC's). */
  killGraceMs?: number;
  /** Free disk (MB) below which the watchdog stops the payload (default 10, DIRAC's; 0: off). */
  minDiskMb?: number;
  /** Until when reports and the output upload are retried (ms since the epoch; default 24 h from the start). */
  deadline?: number;
  /** Where the report journal goes (default `workDir`; never the job dir). */
  journalDir?: string;
  /** Back-off of those retries (default 1 s doubling to 15 s, full jitter). */
  retryBackoff?: BackoffPolicy;
}

export interface JobHandle {
  done: Promise<JobOutcome>;
  /** A command for this job pushed over the pilot's websocket (Kill). */
  command(c: JobCommand): void;
}

/** What the wrapper needs from the JDL. */
export interface PayloadSpec {
  executable: string;
  arguments: string[];
  stdout: string;
  stderr: string;
  /** From ExecutionEnvironment (and gLite's Environment): KEY=VALUE entries. */
  environment: Record<string, string>;
  inputSandbox: string[];
  outputSandbox: string[];
  /** Normalized seconds (DB12·s); undefined: no CPU limit. */
  cpuTime: number | undefined;
}

/**
 * Splits an Arguments string into words (`pilot/shell-words.ts`): an unterminated quote runs
 * to the end, a trailing backslash stays.
 */
export function splitArguments(s: string): string[] {
  return splitWords(s);
}

function texts(value: JdlValue | undefined, name: string): string[] {
  if (value === undefined) return [];
  const items = Array.isArray(value) ? value : [value];
  return items.map((v) => {
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
    throw new Error(`${name} must hold texts`);
  });
}

/** A file name for the payload's output: relative, inside the job dir. */
function jobFileName(value: string, name: string): string {
  const n = normalizeArchivePath(value);
  if (value.trim() === '' || n === '.' || n.startsWith('/') || n === '..' || n.startsWith('../')) {
    throw new Error(`${name} "${value}" must name a file inside the job directory`);
  }
  return n;
}

/** Reads the payload's description from the job's JDL. Throws an Error saying what is wrong. */
export function readPayloadSpec(jdl: string): PayloadSpec {
  let ad: JdlAd;
  try {
    ad = parseJdl(jdl);
  } catch (e) {
    throw new Error(`the JDL does not parse: ${(e as Error).message}`, { cause: e });
  }
  const value = (name: string) => getAttribute(ad, name)?.value;
  const one = (name: string): string | undefined => {
    const v = value(name);
    if (v === undefined) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
    throw new Error(`${name} must be a text`);
  };
  const executable = one('Executable');
  if (executable === undefined || executable.trim() === '') throw new Error('Executable is missing');
  const environment: Record<string, string> = {};
  for (const name of ['Environment', 'ExecutionEnvironment']) {
    for (const entry of texts(value(name), name)) {
      const eq = entry.indexOf('=');
      const key = eq < 0 ? entry : entry.slice(0, eq);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key.trim())) throw new Error(`${name} entry "${entry}" is not NAME=value`);
      environment[key.trim()] = eq < 0 ? '' : entry.slice(eq + 1);
    }
  }
  const cpu = value('CPUTime');
  const cpuTime = typeof cpu === 'number' ? cpu : typeof cpu === 'string' && /^\s*\d+(\.\d*)?\s*$/.test(cpu) ? Number(cpu) : undefined;
  return {
    executable: executable.trim(),
    arguments: splitArguments(one('Arguments') ?? ''),
    stdout: jobFileName(one('StdOutput') ?? 'std.out', 'StdOutput'),
    stderr: jobFileName(one('StdError') ?? 'std.err', 'StdError'),
    environment,
    inputSandbox: texts(value('InputSandbox'), 'InputSandbox').filter((s) => s.trim() !== ''),
    outputSandbox: texts(value('OutputSandbox'), 'OutputSandbox').filter((s) => s.trim() !== ''),
    cpuTime,
  };
}

/** `$NAME` and `${NAME}` replaced from `env` (unknown names become empty), as DIRAC expands Executable. */
function expandVars(s: string, env: Record<string, string>): string {
  return s.replace(
    /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (_m, a: string | undefined, b: string | undefined) => env[(a ?? b) as string] ?? '',
  );
}

type StopCause = { kind: 'kill' | 'lost'; reason: string };

interface Failure {
  minorStatus: string;
  applicationStatus: string;
}

type PayloadEnd =
  | { kind: 'exit'; code: number | null; signal: NodeJS.Signals | null }
  | { kind: 'spawn-error'; error: Error }
  | { kind: 'refused'; reason: string };

/** A job as the matcher hands it over; `token` is the job token the payload gets as WMS_JOB_TOKEN. */
export interface MatchedJob {
  jobId: number;
  jdl: string;
  token?: string;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

/**
 * Kills a bubblewrap sandbox whose bwrap process is `root`: SIGTERM to everything inside it at
 * once (and to whatever starts there during the grace), SIGKILL to all of it, bwrap included,
 * after `graceMs`. bwrap itself gets no SIGTERM: it would die at once, and a sandbox still
 * setting up (its PID-namespace init not yet bound to bwrap's life) would be orphaned out of
 * reach. The init ignores SIGTERM; it ends, and the kernel kills what is left in the namespace,
 * when the payload's first process ends.
 */
async function killSandbox(root: number, graceMs: number): Promise<void> {
  const known: number[] = [];
  const sweep = () => {
    for (const pid of descendantsOf(root)) {
      if (known.includes(pid)) continue;
      known.push(pid);
      if (pid !== root) signal(pid, 'SIGTERM');
    }
  };
  sweep();
  const deadline = Date.now() + graceMs;
  while (known.some(isAlive) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    sweep();
  }
  if (!known.some(isAlive)) return;
  sweep();
  for (const pid of known) signal(pid, 'SIGKILL');
  const hard = Date.now() + 2000;
  while (known.some(isAlive) && Date.now() < hard) await new Promise((r) => setTimeout(r, 20));
}

/** Statuses in which a job still belongs to the wrapper that runs it. */
const STILL_RUNNING = new Set<JobState>(['Matched', 'Running', 'Stalled', 'Completing']);

class JobRun {
  private readonly jobDir: string;
  private stopCause: StopCause | null = null;
  private limitHit: WatchdogLimitHit | null = null;
  private pid: number | undefined;
  private payloadRunning = false;
  private killing: Promise<unknown> | null = null;
  private watchdog: Watchdog | null = null;
  private readonly temps: string[] = [];
  /** The payload's stdout, stderr and the heartbeats' peek handle: closed by cleanUp whatever happened. */
  private readonly files: FileHandle[] = [];
  /** Aborted when the job stops (Kill, the pilot stopping): interrupts an input sandbox unpack. */
  private readonly stopping = new AbortController();
  /** Every status report, in order, until it has an answer. */
  private readonly journal: ReportJournal;
  private readonly deadline: number;
  /** Heartbeats from the payload's end until the outcome (reports may still be on their way). */
  private afterBeats: NodeJS.Timeout | null = null;
  private finalBeat: Heartbeat | null = null;
  private cpuSeconds = 0;
  private wallSeconds = 0;
  private maxRssMb = 0;
  private exitCode: number | null = null;
  /** The last lines of the payload's stdout once it ended (the final peek); undefined when unreadable. */
  private stdoutTail: string | undefined;
  private sandbox: PayloadSandbox | null = null;
  private isolationProblem: string | null = null;

  constructor(
    private readonly job: MatchedJob,
    private readonly channel: JobChannel,
    private readonly o: JobWrapperOptions,
  ) {
    this.jobDir = join(o.workDir, String(job.jobId));
    this.deadline = o.deadline ?? Date.now() + 24 * 3600_000;
    this.journal = new ReportJournal({
      dir: o.journalDir ?? o.workDir,
      jobId: job.jobId,
      send: (r) => this.channel.setStatus(r),
      deadline: this.deadline,
      ...(o.retryBackoff ? { backoff: o.retryBackoff } : {}),
      log: (line) => this.o.log(line),
    });
  }

  /** Delivers a command (from the websocket or a heartbeat answer). */
  command(c: JobCommand): void {
    if (c.jobId !== this.job.jobId) return;
    if (c.command.toLowerCase() !== 'kill') {
      this.o.log(`ignoring unknown command ${c.command}`);
      return;
    }
    this.stop({ kind: 'kill', reason: `${MINOR.receivedKillSignal}${c.arguments ? `: ${c.arguments}` : ''}` });
  }

  /** Stops the job for good: no more reports; the payload's tree is killed at once. */
  private stop(cause: StopCause): void {
    if (this.stopCause) return;
    this.stopCause = cause;
    this.o.log(`stopping: ${cause.reason}`);
    this.stopping.abort(new Error(cause.reason));
    this.journal.abort();
    this.killPayload();
  }

  /** Starts killing the payload's tree (SIGTERM now, SIGKILL after the grace). */
  private killPayload(): void {
    if (this.pid === undefined || !this.payloadRunning || this.killing) return;
    const grace = this.o.killGraceMs ?? 10_000;
    this.killing = this.sandbox?.kind === 'bwrap' ? killSandbox(this.pid, grace) : killTree(this.pid, grace);
  }

  /**
   * Queues one status report in the journal; false when the job must stop (it was stopped
   * already). Reports on the way (Running, Completing) are not waited for: the wrapper goes on
   * while they travel, in order, which saves a round trip per step (and a payload starts on the
   * match's word, not the Running report's). A final one (Done, Failed) waits for every report
   * before it and its own answer. A refusal by the server (the job was killed or rescheduled
   * meanwhile) stops the job whenever it comes back.
   */
  private async report(
    status: JobState,
    minorStatus: string,
    applicationStatus?: string,
    parameters?: Record<string, string>,
  ): Promise<boolean> {
    if (this.stopCause) return false;
    const r: JobStatusReport = { status, minorStatus };
    if (applicationStatus !== undefined) r.applicationStatus = applicationStatus.slice(0, 2000);
    if (parameters && Object.keys(parameters).length > 0) r.parameters = parameters;
    this.o.log(`${status} / ${minorStatus}${applicationStatus ? ` / ${applicationStatus}` : ''}`);
    const answered = this.journal.append(r).then((result) => this.answered(r, result));
    if (status === 'Done' || status === 'Failed') await answered;
    return !this.stopCause;
  }

  /** What an answer (or a final failure) of report `r` means for the job. */
  private answered(r: JobStatusReport, result: ReportResult): void {
    if (this.stopCause) return;
    if (result.kind === 'acked') {
      if (!result.answer.accepted) {
        this.stop({
          kind: result.answer.status === 'Killed' ? 'kill' : 'lost',
          reason: `the services refused ${r.status} / ${r.minorStatus}: the job is ${result.answer.status}`,
        });
      }
      return;
    }
    if (isJobNotHeld(result.error)) {
      this.stop({ kind: 'lost', reason: `the services refused ${r.status} / ${r.minorStatus}: ${(result.error as Error).message}` });
    }
    // Other final failures were logged by the journal; the next report tries its own luck.
  }

  /** A heartbeat of the watchdog or after the payload; a refusal of the job stops it. */
  private async beat(hb: Heartbeat, afterPayload: boolean): Promise<HeartbeatAnswer> {
    let answer: HeartbeatAnswer;
    try {
      answer = await this.channel.heartbeat(hb);
    } catch (e) {
      if (isJobNotHeld(e)) this.stop({ kind: 'lost', reason: `the services refused a heartbeat: ${(e as Error).message}` });
      throw e;
    }
    // After the payload, Done or Failed may be our own final report landing first.
    if (!STILL_RUNNING.has(answer.status) && !afterPayload) {
      this.stop(
        answer.status === 'Killed'
          ? { kind: 'kill', reason: 'the services say the job is Killed' }
          : { kind: 'lost', reason: `the services say the job is ${answer.status}` },
      );
    }
    if (afterPayload && answer.status === 'Killed') this.stop({ kind: 'kill', reason: 'the services say the job is Killed' });
    return answer;
  }

  /** From the payload's end until the outcome: a heartbeat every `heartbeatMs` with the final figures. */
  private startAfterBeats(): void {
    if (this.afterBeats || this.stopCause) return;
    this.finalBeat = { cpuSeconds: this.cpuSeconds, wallSeconds: this.wallSeconds, rssMb: 0 };
    let beating = false;
    this.afterBeats = setInterval(() => {
      if (beating || this.stopCause || !this.finalBeat) return;
      beating = true;
      void this.beat(this.finalBeat, true)
        .then((a) => {
          for (const c of a.commands) this.command(c);
        })
        .catch((e: unknown) => this.o.log(`heartbeat failed: ${(e as Error).message}`))
        .finally(() => (beating = false));
    }, this.o.heartbeatMs);
  }

  private stopAfterBeats(): void {
    if (this.afterBeats) clearInterval(this.afterBeats);
    this.afterBeats = null;
  }

  async run(): Promise<JobOutcome> {
    let outcome: JobOutcome;
    try {
      outcome = await this.steps();
    } catch (e) {
      const message = (e as Error).message;
      this.o.log(`wrapper error: ${message}`);
      if (this.stopCause) outcome = this.stoppedOutcome();
      else {
        await this.report('Failed', MINOR.exceptionDuringExecution, message);
        outcome = this.stopCause ? this.stoppedOutcome() : this.outcome('Failed', `${MINOR.exceptionDuringExecution}: ${message}`);
      }
    }
    try {
      // Every report answered (or given up at the deadline) before the outcome; heartbeats go on meanwhile.
      if (!this.stopCause && this.journal.pending > 0) {
        this.startAfterBeats();
        await this.journal.drained();
      }
      this.stopAfterBeats();
      await this.journal.close();
      // A refusal that came back while the last reports travelled.
      if (this.stopCause && outcome.status !== 'Killed' && outcome.status !== 'Lost') outcome = this.stoppedOutcome();
      return outcome;
    } finally {
      this.stopAfterBeats();
      await this.cleanUp();
    }
  }

  private async steps(): Promise<JobOutcome> {
    const { jobId } = this.job;
    await rm(this.jobDir, { recursive: true, force: true });
    await mkdir(this.jobDir, { recursive: true });

    let spec: PayloadSpec;
    try {
      spec = readPayloadSpec(this.job.jdl);
    } catch (e) {
      const message = (e as Error).message;
      await this.report('Failed', MINOR.illegalJobJdl, message);
      return this.outcome('Failed', `${MINOR.illegalJobJdl}: ${message}`);
    }

    const start = { ...this.o.parameters, CPUNormalizationFactor: String(this.o.db12) };
    if (!(await this.report('Running', MINOR.jobInitialization, undefined, start))) return this.stoppedOutcome();

    try {
      this.sandbox = await resolvePayloadSandbox(this.o.isolation ?? {});
    } catch (e) {
      if (!isIsolationUnavailable(e)) throw e;
      return this.refuseIsolation(e.message);
    }
    this.o.log(`payload isolation: ${this.sandbox.description}`);

    if (spec.inputSandbox.length > 0) {
      if (!(await this.report('Running', MINOR.downloadingInputSandbox))) return this.stoppedOutcome();
      const failure = await this.downloadInputs(spec.inputSandbox);
      if (this.stopCause) return this.stoppedOutcome();
      if (failure) return this.fail(failure);
    }

    if (!(await this.report('Running', MINOR.application))) return this.stoppedOutcome();
    const end = await this.runPayload(spec);
    if (this.stopCause) return this.stoppedOutcome();
    if (this.pid !== undefined) this.startAfterBeats(); // its reports and outputs may take a while to get through

    if (end.kind === 'refused') return this.refuseIsolation(end.reason);
    if (end.kind === 'spawn-error') {
      return this.fail({ minorStatus: MINOR.applicationNotFound, applicationStatus: `${spec.executable}: ${end.error.message}` });
    }
    let failure: Failure | null = null;
    let finished: string;
    if (this.limitHit) {
      failure = { minorStatus: this.limitHit.minorStatus, applicationStatus: this.limitHit.detail };
      finished = this.limitHit.minorStatus;
    } else if (end.code === 0) {
      finished = MINOR.applicationSuccess;
    } else {
      const what = end.code !== null ? `Exit code ${end.code}` : `Killed by signal ${end.signal}`;
      failure = { minorStatus: MINOR.applicationErrors, applicationStatus: what };
      finished = MINOR.applicationErrors;
    }
    const finalParameters = this.finalParameters();
    if (!(await this.report('Completing', finished, failure?.applicationStatus, finalParameters))) return this.stoppedOutcome();

    const extra: Record<string, string> = {};
    if (spec.outputSandbox.length > 0) {
      if (!(await this.report('Completing', MINOR.uploadingOutputSandbox))) return this.stoppedOutcome();
      const out = join(this.o.workDir, `.job-${jobId}-output.tar.gz`);
      this.temps.push(out);
      try {
        const packed = await packOutputs(this.jobDir, spec.outputSandbox, out);
        if (packed && packed.missing.length > 0) extra['OutputSandboxMissingFiles'] = packed.missing.join(', ');
        if (!packed) {
          extra['OutputSandboxMissingFiles'] = spec.outputSandbox.join(', ');
          this.o.log('output sandbox: nothing matched');
        } else {
          await retryUntil(() => this.channel.uploadSandbox(out, packed.sha256), {
            deadline: this.deadline,
            signal: this.stopping.signal,
            ...(this.o.retryBackoff ? { backoff: this.o.retryBackoff } : {}),
            onRetry: (e, attempt, waitMs) =>
              this.o.log(`output sandbox upload: ${(e as Error).message}; try ${attempt + 2} in ${(waitMs / 1000).toFixed(1)} s`),
          });
          this.o.log(`output sandbox SB:${packed.sha256}: ${packed.files.length} files, ${packed.size} bytes`);
          if (
            !(await this.report('Completing', MINOR.outputSandboxUploaded, undefined, { OutputSandbox: `SB:${packed.sha256}`, ...extra }))
          )
            return this.stoppedOutcome();
        }
      } catch (e) {
        if (this.stopCause) return this.stoppedOutcome();
        const message = `output sandbox upload failed: ${(e as Error).message}`;
        this.o.log(message);
        failure ??= { minorStatus: MINOR.uploadingOutputSandbox, applicationStatus: message };
      }
    }

    if (failure) return this.fail(failure, { ...finalParameters, ...extra });
    if (!(await this.report('Done', MINOR.executionComplete, undefined, { ...finalParameters, ...extra }))) return this.stoppedOutcome();
    return this.outcome('Done', MINOR.executionComplete);
  }

  /** Fails the job: its payload cannot be isolated as the queue asks (the pilot stops after this). */
  private refuseIsolation(reason: string): Promise<JobOutcome> {
    this.isolationProblem = reason;
    this.o.log(`${ISOLATION_UNAVAILABLE}: ${reason}`);
    return this.fail({ minorStatus: ISOLATION_UNAVAILABLE, applicationStatus: reason });
  }

  private async fail(f: Failure, parameters?: Record<string, string>): Promise<JobOutcome> {
    if (!(await this.report('Failed', f.minorStatus, f.applicationStatus, parameters))) return this.stoppedOutcome();
    return this.outcome('Failed', `${f.minorStatus}: ${f.applicationStatus}`);
  }

  /** Downloads, checks and unpacks each input sandbox; the first failure, or null. */
  private async downloadInputs(entries: string[]): Promise<Failure | null> {
    const failed = (applicationStatus: string, lfn = false): Failure => ({
      minorStatus: lfn ? MINOR.failedDownloadingInputSandboxLfn : MINOR.failedDownloadingInputSandbox,
      applicationStatus,
    });
    for (const [i, entry] of entries.entries()) {
      if (/^LFN:/i.test(entry)) return failed(`${entry}: LFN input sandboxes are not supported (no storage elements)`, true);
      const m = /^SB:([0-9a-f]{64})$/i.exec(entry.trim());
      if (!m) return failed(`InputSandbox entry "${entry}" is not an uploaded sandbox (SB:<sha256>)`);
      const sha = (m[1] as string).toLowerCase();
      const label = `SB:${sha}`;
      const file = join(this.o.workDir, `.job-${this.job.jobId}-input-${i}.tar.gz`);
      this.temps.push(file);
      try {
        await this.channel.downloadSandbox(sha, file);
      } catch (e) {
        return failed(`${label}: download failed: ${(e as Error).message}`);
      }
      if (this.stopCause) return null;
      const got = await sha256File(file);
      if (got !== sha) return failed(`${label}: the downloaded archive has SHA-256 ${got}`);
      try {
        const r = await safeUnpack(file, this.jobDir, this.o.sandboxLimits, label, this.stopping.signal);
        this.o.log(`${label}: ${r.entries} entries, ${r.bytes} bytes unpacked`);
      } catch (e) {
        return failed(isArchiveError(e) ? e.message : `${label}: ${(e as Error).message}`);
      }
      await rm(file, { force: true });
    }
    return null;
  }

  /** Where the executable is: `name` in the job dir (made executable), else a path or PATH. */
  private async resolveExecutable(spec: PayloadSpec, env: Record<string, string>): Promise<string> {
    const exe = expandVars(spec.executable, env);
    if (isAbsolute(exe)) return exe;
    const local = join(this.jobDir, exe);
    const st = await stat(local).catch(() => null);
    if (st?.isFile()) {
      if ((st.mode & 0o100) === 0) await chmod(local, st.mode | 0o755);
      return local;
    }
    return exe; // looked up in PATH by spawn
  }

  private async runPayload(spec: PayloadSpec): Promise<PayloadEnd> {
    const { jobId } = this.job;
    const sandbox = this.sandbox as PayloadSandbox;
    const env: Record<string, string> = {
      ...sandbox.baseEnv(this.jobDir),
      ...this.o.env,
      ...spec.environment,
      DIRACJOBID: String(jobId),
      WMS_JOB_ID: String(jobId),
      DIRAC_JOB_PROCESSORS: String(Math.max(1, this.o.processors)),
      ...(this.job.token ? { WMS_JOB_TOKEN: this.job.token } : {}),
    };
    // dirac-jobexec and any other tool of the bundle: last on the PATH, so a real one wins.
    const tools = await installPayloadTools(this.jobDir);
    if (tools) env['PATH'] = env['PATH'] ? `${env['PATH']}:${tools}` : tools;
    const exe = await this.resolveExecutable(spec, env);
    const unreachable = await sandbox.unreachableExecutable(exe, this.jobDir, env);
    if (unreachable) return { kind: 'spawn-error', error: new Error(unreachable) };
    const stdoutPath = join(this.jobDir, spec.stdout);
    const stderrPath = join(this.jobDir, spec.stderr);
    await mkdir(join(stdoutPath, '..'), { recursive: true });
    await mkdir(join(stderrPath, '..'), { recursive: true });
    const out = await open(stdoutPath, 'w');
    this.files.push(out);
    const err = spec.stderr === spec.stdout ? out : await open(stderrPath, 'w');
    if (err !== out) this.files.push(err);
    // Heartbeats read stdout through this descriptor (/proc/self/fd/N reopens the same file):
    // the payload may replace std.out with a link to anything, which is never followed.
    const peek: FileHandle = await open(stdoutPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    this.files.push(peek);
    const closeFiles = async () => {
      await out.close().catch(() => undefined);
      if (err !== out) await err.close().catch(() => undefined);
    };
    if (this.stopCause) {
      await closeFiles();
      await peek.close();
      return { kind: 'exit', code: null, signal: null };
    }
    try {
      await sandbox.prepare(this.o.workDir, this.jobDir);
    } catch (e) {
      await closeFiles();
      await peek.close();
      if (isIsolationUnavailable(e)) return { kind: 'refused', reason: e.message };
      throw e;
    }

    const cpuBefore = selfChildrenCpuSeconds();
    const cmd = sandbox.command(exe, spec.arguments, this.jobDir, env);
    let child: ChildProcess;
    try {
      child = spawn(cmd.file, cmd.args, {
        cwd: this.jobDir,
        env: cmd.env,
        stdio: ['ignore', out.fd, err.fd, ...(cmd.envFd ? (['pipe'] as const) : [])],
        detached: true, // a session of its own: the whole tree can be found and killed
        ...(cmd.uid !== undefined ? { uid: cmd.uid } : {}),
        ...(cmd.gid !== undefined ? { gid: cmd.gid } : {}),
      });
    } catch (e) {
      await closeFiles();
      await peek.close();
      return { kind: 'spawn-error', error: e as Error };
    }
    const startedAt = Date.now();
    // Listen before anything else is awaited: the payload may end at once.
    const ended = new Promise<PayloadEnd>((resolve) => {
      child.once('error', (error) => {
        if (child.pid === undefined) resolve({ kind: 'spawn-error', error });
        else this.o.log(`payload: ${error.message}`);
      });
      child.once('exit', (code, signal) => resolve({ kind: 'exit', code, signal }));
    });
    const envPipe = child.stdio[3] as Writable | undefined;
    if (envPipe && cmd.envFd) {
      envPipe.on('error', () => undefined); // a payload that ended without reading it
      envPipe.end(cmd.envFd);
    }
    if (child.pid !== undefined) {
      this.pid = child.pid;
      this.payloadRunning = true;
      // The pilot's wrapper kills this session if the pilot dies before the tree is gone.
      const unregistered = registerPayloadSession(this.o.workDir, child.pid);
      if (unregistered) this.o.log(`payload session ${child.pid} not registered: ${unregistered.message}`);
      this.o.log(`payload ${exe} started, pid ${child.pid} (${sandbox.kind === 'none' ? 'not isolated' : sandbox.description})`);
      const cpuLimit = spec.cpuTime === undefined ? Infinity : rawCpuLimitSeconds(spec.cpuTime, this.o.db12, this.o.processors);
      const dog = new Watchdog({
        pid: child.pid,
        jobDir: this.jobDir,
        stdoutFile: `/proc/self/fd/${peek.fd}`,
        pollMs: this.o.pollMs,
        heartbeatMs: this.o.heartbeatMs,
        cpuLimitSeconds: cpuLimit,
        ...(this.o.wallClockLimitSeconds !== undefined ? { wallClockLimitSeconds: this.o.wallClockLimitSeconds } : {}),
        minDiskMb: this.o.minDiskMb ?? DEFAULT_MIN_DISK_MB,
        heartbeat: (hb) => this.beat(hb, false),
        onCommand: (c) => this.command(c),
        onLimit: (hit) => {
          this.limitHit = hit;
          this.killPayload();
        },
        log: (line) => this.o.log(line),
      });
      this.watchdog = dog;
      dog.start();
    }
    await closeFiles();
    if (this.stopCause) this.killPayload(); // a Kill that came while the files were closed
    const end = await ended;

    this.payloadRunning = false;
    const dog = this.watchdog;
    dog?.stop();
    this.wallSeconds = Math.round((Date.now() - startedAt) / 10) / 100;
    if (dog) {
      const st = dog.stats();
      const delta = selfChildrenCpuSeconds() - cpuBefore;
      const bound = st.cpuSeconds + ((Date.now() - st.sampledAt) / 1000) * availableParallelism();
      this.cpuSeconds = Math.round(Math.max(st.cpuSeconds, Math.min(delta, bound)) * 100) / 100;
      this.maxRssMb = st.maxRssMb;
    }
    // The lines written since the last heartbeat: the final reports carry them (StandardOutput).
    this.stdoutTail = await tailLines(`/proc/self/fd/${peek.fd}`, PEEK_LINES);
    await peek.close().catch(() => undefined);
    if (end.kind === 'exit') {
      this.exitCode = end.code;
      this.o.log(`payload ended: ${end.code !== null ? `exit code ${end.code}` : `signal ${end.signal}`}`);
    }
    return end;
  }

  private finalParameters(): Record<string, string> {
    const p: Record<string, string> = {
      'TotalCPUTime(s)': String(this.cpuSeconds),
      'WallClockTime(s)': String(this.wallSeconds),
      'MaxRSS(MB)': String(this.maxRssMb),
      CPUNormalizationFactor: String(this.o.db12),
    };
    if (this.exitCode !== null) p['ExitCode'] = String(this.exitCode);
    if (this.pid !== undefined) p['PayloadPID'] = String(this.pid);
    if (this.stdoutTail !== undefined) p['StandardOutput'] = this.stdoutTail;
    return p;
  }

  private outcome(status: JobOutcome['status'], reason: string): JobOutcome {
    return {
      jobId: this.job.jobId,
      status,
      exitCode: this.exitCode,
      cpuSeconds: this.cpuSeconds,
      wallSeconds: this.wallSeconds,
      reason,
      ...(this.isolationProblem !== null ? { isolationUnavailable: this.isolationProblem } : {}),
    };
  }

  private stoppedOutcome(): JobOutcome {
    const cause = this.stopCause as StopCause;
    return this.outcome(cause.kind === 'kill' ? 'Killed' : 'Lost', cause.reason);
  }

  /** Waits for the payload's tree to be gone (killing what is left of it) and removes the job's files. */
  private async cleanUp(): Promise<void> {
    this.watchdog?.stop();
    if (this.payloadRunning) this.killPayload(); // the wrapper failed while the payload ran
    if (this.killing) await this.killing.catch(() => undefined);
    if (this.pid !== undefined) {
      // Processes the payload left behind in its session or group (its pid is reaped by now).
      const left = await killTree(this.pid, 1000, 20, { includeRoot: false }).catch(() => null);
      if (left && left.terminated.length > 0) this.o.log(`killed ${left.terminated.length} processes the payload left behind`);
      unregisterPayloadSession(this.o.workDir, this.pid);
    }
    // A handle runPayload did not get to close (it threw) would keep the job's deleted files, and their disk, taken.
    for (const h of this.files.splice(0)) await h.close().catch(() => undefined);
    await rm(this.jobDir, { recursive: true, force: true }).catch((e: Error) => this.o.log(`cannot remove ${this.jobDir}: ${e.message}`));
    for (const f of this.temps) await rm(f, { force: true }).catch(() => undefined);
  }
}

/**
 * Runs one matched job (see the module comment). Returns at once; `done` settles when the job
 * is over and its directory removed, and never rejects.
 */
export function startJob(job: MatchedJob, channel: JobChannel, opts: JobWrapperOptions): JobHandle {
  const run = new JobRun(job, channel, opts);
  return { done: run.run(), command: (c) => run.command(c) };
}
