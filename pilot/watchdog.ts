/**
 * The watchdog of one payload: samples its process tree, enforces the CPU-time, wall-clock and
 * disk limits, and sends heartbeats whose answers may carry commands (Kill).
 *
 * States: `idle` → start() → `watching` → (a limit is exceeded: `tripped`, once) → stop() →
 * `stopped`. Every `pollMs` it samples the tree (CPU seconds, RSS) and checks the limits; every
 * `heartbeatMs` it sends one heartbeat, never two at once. DIRAC polls every 10 s and sends a
 * heartbeat with its full checks every 30 min; the pilot polls every second (a sample costs a
 * few /proc reads) and beats every 30 s, so limits bite within a second and a Kill carried by a
 * heartbeat answer arrives within 30 s (the pilot's websocket brings it at once).
 *
 * The CPU limit. The JDL's CPUTime is in normalized seconds (DB12·s); this node does `db12`
 * per core, so the payload may use `CPUTime / db12` seconds of one core here, and
 * `processors` times that when it has several cores: the raw limit is
 * `CPUTime / db12 × processors × (1 + margin)`, margin 20 % (DIRAC's JobCPULimitMargin). DIRAC
 * keeps this check off by default because it compares raw seconds with the normalized
 * requirement; here both sides are in the same unit, so it is on.
 */
import { open, statfs } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { MINOR } from '../core/job-states.js';
import type { Heartbeat, HeartbeatAnswer, JobCommand } from '../core/pilot-protocol.js';
import { sampleTree, type TreeSample } from './process-tree.js';

/** DIRAC's JobCPULimitMargin. */
export const CPU_LIMIT_MARGIN = 0.2;
/** DIRAC's MaxJobPeekLines. */
export const PEEK_LINES = 20;
/** DIRAC's MinDiskSpace (MB). */
export const DEFAULT_MIN_DISK_MB = 10;

/** Raw CPU seconds a job may use on this node (see the module comment); Infinity when unknown. */
export function rawCpuLimitSeconds(cpuTime: number, db12: number, processors: number, margin = CPU_LIMIT_MARGIN): number {
  if (!(cpuTime > 0) || !(db12 > 0)) return Infinity;
  return (cpuTime / db12) * Math.max(1, processors) * (1 + margin);
}

export interface WatchdogLimitHit {
  /** DIRAC's minor status for it. */
  minorStatus: string;
  /** What was measured against what. */
  detail: string;
}

export interface WatchdogOptions {
  /** The payload's pid (the root of its tree). */
  pid: number;
  /** Where the payload runs: its free disk is reported and checked. */
  jobDir: string;
  /** The payload's stdout file, for the last lines sent with each heartbeat. */
  stdoutFile: string;
  pollMs: number;
  heartbeatMs: number;
  /** Raw CPU seconds; Infinity or undefined: no limit. */
  cpuLimitSeconds?: number;
  wallClockLimitSeconds?: number;
  /** Free disk (MB) in the job dir below which the payload is stopped; 0 turns the check off. */
  minDiskMb?: number;
  heartbeat(hb: Heartbeat): Promise<HeartbeatAnswer>;
  /** Commands from heartbeat answers. */
  onCommand(c: JobCommand): void;
  /** Called once, the first time a limit is exceeded; the caller kills the payload. */
  onLimit(hit: WatchdogLimitHit): void;
  log(line: string): void;
  now?: () => number;
}

export interface WatchdogStats {
  cpuSeconds: number;
  wallSeconds: number;
  maxRssMb: number;
  rssMb: number;
  /** When the last sample was taken (ms, the watchdog's clock). */
  sampledAt: number;
}

type WatchdogState = 'idle' | 'watching' | 'tripped' | 'stopped';

export class Watchdog {
  private state: WatchdogState = 'idle';
  private readonly startedAt: number;
  private cpuSeconds = 0;
  private rssMb = 0;
  private maxRssMb = 0;
  private sampledAt: number;
  private pollTimer: NodeJS.Timeout | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  private beating = false;
  private readonly now: () => number;

  constructor(private readonly o: WatchdogOptions) {
    this.now = o.now ?? Date.now;
    this.startedAt = this.now();
    this.sampledAt = this.startedAt;
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'watching';
    this.sample();
    this.pollTimer = setInterval(() => this.tick(), this.o.pollMs);
    this.beatTimer = setInterval(() => void this.beat(), this.o.heartbeatMs);
  }

  /** Stops sampling and heartbeats; the figures stay readable. */
  stop(): void {
    this.state = 'stopped';
    clearInterval(this.pollTimer);
    clearInterval(this.beatTimer);
  }

  /** A method, so that a check after an await is not narrowed away by the one before it. */
  private stopped(): boolean {
    return this.state === 'stopped';
  }

  stats(): WatchdogStats {
    return {
      cpuSeconds: this.cpuSeconds,
      wallSeconds: round((this.now() - this.startedAt) / 1000),
      maxRssMb: this.maxRssMb,
      rssMb: this.rssMb,
      sampledAt: this.sampledAt,
    };
  }

  /** Takes one sample of the payload tree (also called by the job wrapper at the end). */
  sample(): TreeSample | null {
    const s = sampleTree(this.o.pid);
    if (s) {
      // A tree's sum can dip when a process ends without a live parent to wait for it.
      this.cpuSeconds = Math.max(this.cpuSeconds, s.cpuSeconds);
      this.rssMb = s.rssMb;
      this.maxRssMb = Math.max(this.maxRssMb, s.rssMb);
      this.sampledAt = this.now();
    }
    return s;
  }

  private tick(): void {
    if (this.state !== 'watching') return;
    this.sample();
    const hit = this.checkLimits();
    if (hit) this.trip(hit);
    else if ((this.o.minDiskMb ?? 0) > 0) void this.checkDisk();
  }

  private checkLimits(): WatchdogLimitHit | null {
    const cpuLimit = this.o.cpuLimitSeconds ?? Infinity;
    if (this.cpuSeconds > cpuLimit) {
      return {
        minorStatus: MINOR.jobExceededCpu,
        detail: `CPU time ${this.cpuSeconds.toFixed(1)} s is over the limit of ${cpuLimit.toFixed(1)} s on this node`,
      };
    }
    const wall = (this.now() - this.startedAt) / 1000;
    const wallLimit = this.o.wallClockLimitSeconds;
    if (wallLimit !== undefined && wallLimit > 0 && wall > wallLimit) {
      return {
        minorStatus: MINOR.jobExceededWallClock,
        detail: `wall-clock time ${wall.toFixed(1)} s is over the limit of ${wallLimit} s`,
      };
    }
    return null;
  }

  private async checkDisk(): Promise<void> {
    const free = await diskFreeMb(this.o.jobDir);
    const min = this.o.minDiskMb ?? 0;
    if (free !== undefined && free < min && this.state === 'watching') {
      this.trip({
        minorStatus: MINOR.jobInsufficientDisk,
        detail: `${free.toFixed(0)} MB free in the job directory, below ${min} MB`,
      });
    }
  }

  private trip(hit: WatchdogLimitHit): void {
    if (this.state !== 'watching') return;
    this.state = 'tripped';
    this.o.log(`watchdog: ${hit.minorStatus}: ${hit.detail}`);
    this.o.onLimit(hit);
  }

  /** Sends one heartbeat (skipped while the previous one is pending) and hands on its commands. */
  async beat(): Promise<void> {
    if (this.beating || this.state === 'stopped') return;
    this.beating = true;
    try {
      const st = this.stats();
      const hb: Heartbeat = {
        cpuSeconds: st.cpuSeconds,
        wallSeconds: st.wallSeconds,
        rssMb: st.rssMb,
        loadAverage: round(loadavg()[0] ?? 0),
      };
      const free = await diskFreeMb(this.o.jobDir);
      if (free !== undefined) hb.diskFreeMb = round(free);
      // Stopped meanwhile: the stdout descriptor may be closed, its number another file's.
      if (this.stopped()) return;
      const tail = await tailLines(this.o.stdoutFile, PEEK_LINES);
      if (tail !== undefined) hb.stdoutTail = tail;
      const answer = await this.o.heartbeat(hb);
      for (const c of answer.commands) this.o.onCommand(c);
    } catch (e) {
      this.o.log(`heartbeat failed: ${(e as Error).message}`);
    } finally {
      this.beating = false;
    }
  }
}

/** Free space (MB) for unprivileged users on the file system of `dir`. */
export async function diskFreeMb(dir: string): Promise<number | undefined> {
  try {
    const s = await statfs(dir);
    return (s.bavail * s.bsize) / (1024 * 1024);
  } catch {
    return undefined;
  }
}

/** The last `n` lines of a text file, read from its last 64 KiB; undefined when unreadable. */
export async function tailLines(file: string, n: number, maxBytes = 64 * 1024): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(file, 'r');
    const { size } = await fh.stat();
    const length = Math.min(size, maxBytes);
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, size - length);
    let text = buf.toString('utf8');
    if (length < size) text = text.slice(text.indexOf('\n') + 1); // drop a partial first line
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-n).join('\n').slice(-60_000);
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
