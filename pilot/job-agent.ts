/**
 * The job agent (DIRAC's JobAgent inside the pilot): asks the matcher for work with its resource
 * description, runs what it gets through the job wrapper, one job per free slot, and stops when
 * there is no work (after `stopAfterFailedMatches` empty answers in a row, waiting longer after
 * each, up to `maxPollSeconds`), when too little time is left, or when asked to drain (SIGTERM:
 * no new work, running jobs finish).
 *
 * CPU work offered = seconds left × DB12 score (normalized seconds, the unit of JDL CPUTime).
 *
 * At most once. Each match attempt has a random claim id. While the call fails on the way (the
 * services away: cannot connect, timeout, 5xx, 429) the SAME claim id is sent again with back-off
 * and jitter, for as long as time is left; that is not "no work", and no new attempt starts
 * before this one got an answer. So an answer lost after the services claimed a job brings that
 * job back (with a fresh job token), never a second one; and a payload starts only once the
 * services said the job is this pilot's (the match answer is that acknowledgement). The job
 * wrapper's reports and uploads are retried until the pilot's end (`deadline`). A job matched
 * to this pilot again while an earlier run of it goes on (rescheduled meanwhile) kills that
 * earlier run first.
 *
 * A job refused because its payload cannot be isolated as the queue asks (isolation.ts) stops
 * the agent at once: every other job would be refused the same way. The result is then
 * `fatal`, and the pilot ends Failed with that reason for the site admin.
 */
import type { JobCommand, PilotConfig } from '../core/pilot-protocol.js';
import { newClaimId, type PilotApi } from './client.js';
import { lowDiskReason } from './disk.js';
import type { IsolationSettings } from './isolation.js';
import { startJob, type JobOutcome } from './job-wrapper.js';

export interface JobAgentOptions {
  api: PilotApi;
  config: PilotConfig;
  db12: number;
  workDir: string;
  /** When the pilot started (ms, its own clock): time left counts from here. */
  startedAt: number;
  now: () => number;
  log: (line: string) => void;
  /** Variables every payload gets (never the pilot's own environment: see job-wrapper.ts). */
  env: Record<string, string>;
  /** How payloads are isolated (the queue's settings and the pilot's PATH). */
  isolation?: IsolationSettings;
  parameters: Record<string, string>;
}

export interface JobAgentResult {
  jobs: JobOutcome[];
  /** Why the agent stopped, for the pilot's final status. */
  reason: string;
  /** The agent stopped on something it cannot recover from (payloads cannot be isolated). */
  fatal?: boolean;
}

/** A sleep that `wake()` ends early. */
class Waker {
  private wakeUp: (() => void) | null = null;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wakeUp = null;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  wake(): void {
    this.wakeUp?.();
  }
}

export class JobAgent {
  private readonly running = new Map<number, ReturnType<typeof startJob>>();
  private readonly waker = new Waker();
  private draining: string | null = null;
  /** Aborted on drain: a match attempt being retried gives up. */
  private readonly drained = new AbortController();
  private fatal: string | null = null;
  /** Resolves the wait for a free slot (a job ended, or drain). */
  private slotFreed: (() => void) | null = null;

  private freeSlot(): void {
    const f = this.slotFreed;
    this.slotFreed = null;
    f?.();
  }

  constructor(private readonly o: JobAgentOptions) {}

  /** Stop asking for work; running jobs go on. */
  drain(reason: string): void {
    if (this.draining) return;
    this.draining = reason;
    this.o.log(`draining: ${reason}; ${this.running.size} job(s) still running`);
    this.drained.abort();
    this.waker.wake();
    this.freeSlot();
  }

  /** New work was announced: an idle agent asks now. */
  nudge(): void {
    this.waker.wake();
  }

  /** Commands pushed over the websocket. */
  deliver(commands: JobCommand[]): void {
    for (const c of commands) {
      const job = this.running.get(c.jobId);
      if (job) {
        this.o.log(`job ${c.jobId}: command ${c.command} received`);
        job.command(c);
      }
    }
  }

  private resource(): Record<string, unknown> {
    const c = this.o.config;
    const secondsLeft = Math.max(0, c.timeLimitSeconds - (this.o.now() - this.o.startedAt) / 1000);
    const r: Record<string, unknown> = {
      site: c.site,
      ce: c.ce,
      queue: c.queue,
      tags: c.tags,
      requiredTags: c.requiredTags,
      processors: c.slots === 1 ? c.processors : 1,
      ramMb: c.ramMb,
      gpus: c.gpus,
      cpuWork: Math.floor(secondsLeft * this.o.db12),
    };
    if (c.platform) r['platform'] = c.platform;
    return r;
  }

  private secondsLeft(): number {
    return this.o.config.timeLimitSeconds - (this.o.now() - this.o.startedAt) / 1000;
  }

  async run(): Promise<JobAgentResult> {
    const c = this.o.config;
    const outcomes: JobOutcome[] = [];
    let failedMatches = 0;
    let stopReason = '';
    this.o.log(`job agent: asking for work (${c.slots} slot(s), DB12 ${this.o.db12})`);
    // The pilot's end on this process's clock: reports and the pilot's status retry until then.
    const pilotEnd = Date.now() + this.secondsLeft() * 1000;
    this.o.api.deadline = pilotEnd;

    while (!this.draining) {
      if (this.running.size >= c.slots) {
        await new Promise<void>((r) => (this.slotFreed = r));
        continue;
      }
      const left = this.secondsLeft();
      if (left < c.minTimeLeftSeconds) {
        stopReason = `time left ${Math.max(0, Math.round(left))} s is below ${c.minTimeLeftSeconds} s`;
        break;
      }
      const lowDisk = await lowDiskReason(this.o.workDir, c.minDiskMb); // waits briefly for a finished job's space
      if (lowDisk !== null) {
        stopReason = lowDisk;
        break;
      }
      let answer;
      const claimId = newClaimId();
      try {
        // Retried with the same claim id until an answer, while at least minTimeLeftSeconds is left.
        const until = Date.now() + (left - c.minTimeLeftSeconds) * 1000;
        answer = await this.o.api.matchUntil(this.resource(), claimId, until, this.drained.signal);
      } catch (e) {
        this.o.log(`match: ${(e as Error).message}`);
        answer = { match: null };
      }
      if (this.draining && !answer.match) break;
      if (!answer.match) {
        failedMatches++;
        if (failedMatches >= c.stopAfterFailedMatches) {
          stopReason = `no work after ${failedMatches} requests`;
          break;
        }
        const wait = Math.min(c.maxPollSeconds, c.pollSeconds * 2 ** (failedMatches - 1));
        await this.waker.sleep(wait * 1000);
        continue;
      }
      failedMatches = 0;
      const { jobId, jdl, token } = answer.match;
      this.o.log(`job ${jobId}: matched`);
      const earlier = this.running.get(jobId);
      if (earlier) {
        // The job was rescheduled and matched to this pilot again while its earlier wrapper
        // still runs (the services have not told it yet): that one is of an earlier match. It
        // is killed, and gone (its job dir and journal removed), before the job starts again.
        this.o.log(`job ${jobId}: matched again while its earlier run goes on: killing that one first`);
        earlier.command({ jobId, command: 'Kill', arguments: 'matched again to this pilot' });
        await earlier.done.catch(() => undefined);
        while (this.running.has(jobId)) await new Promise((r) => setImmediate(r));
      }
      const handle = startJob({ jobId, jdl, token }, this.o.api.jobChannel(jobId, token), {
        workDir: this.o.workDir,
        db12: this.o.db12,
        processors: c.slots === 1 ? c.processors : 1,
        heartbeatMs: c.heartbeatSeconds * 1000,
        pollMs: 1000,
        wallClockLimitSeconds: Math.max(1, Math.floor(left)),
        sandboxLimits: { maxEntries: c.sandboxMaxEntries, maxBytes: c.sandboxMaxBytes },
        env: this.o.env,
        ...(this.o.isolation ? { isolation: this.o.isolation } : {}),
        parameters: this.o.parameters,
        deadline: pilotEnd,
        log: (line: string) => this.o.log(`job ${jobId}: ${line}`),
      });
      this.running.set(jobId, handle);
      void handle.done
        .catch((e: unknown): JobOutcome => {
          this.o.log(`job ${jobId}: wrapper error ${(e as Error).message}`);
          return { jobId, status: 'Lost', exitCode: null, cpuSeconds: 0, wallSeconds: 0, reason: (e as Error).message };
        })
        .then((outcome) => {
          this.o.log(
            `job ${jobId}: ${outcome.status}${outcome.exitCode !== null ? ` (exit code ${outcome.exitCode})` : ''} ${outcome.reason}`,
          );
          outcomes.push(outcome);
          if (outcome.isolationUnavailable !== undefined && this.fatal === null) {
            this.fatal = `payload isolation unavailable: ${outcome.isolationUnavailable}`;
            this.drain(this.fatal);
          }
          this.running.delete(jobId);
          this.freeSlot();
        });
    }
    if (this.draining) stopReason = `drained: ${this.draining}`;
    await Promise.allSettled([...this.running.values()].map((h) => h.done));
    if (this.fatal !== null) return { jobs: outcomes, reason: this.fatal, fatal: true };
    return { jobs: outcomes, reason: stopReason };
  }

  /** Kills every running job (a second SIGTERM). */
  killAll(): void {
    for (const [jobId, job] of this.running) job.command({ jobId, command: 'Kill', arguments: 'pilot stopping' });
  }
}
