/**
 * DB12, DIRAC's quick CPU benchmark, in Node.
 *
 * One copy: a warm-up round that is not timed (lets variable-frequency CPUs ramp up and V8
 * compile the loop), then one timed round of 12.5 M draws from Normal(10, 1) by the
 * ratio-of-uniforms method (the one CPython's `random.normalvariate` uses), each draw feeding
 * four running sums that are sent back so the work cannot be optimised away. The raw score is
 * 250 / (CPU seconds of the timed round). The pilot runs one copy per allocated core at once and
 * keeps the lowest score, as DIRAC does for multi-core slots.
 *
 * V8 draws about ten times faster than CPython, so the raw score is multiplied by
 * `DB12_CALIBRATION` to land on the scale of DIRAC's Python DB12 on the same machine; the result
 * keeps the raw values, the constant and the engine so the server can recompute.
 *
 * CPU time per copy: `process.cpuUsage()` in a worker thread counts the whole process, so each
 * worker reads its own thread's CPU time from `/proc/thread-self/schedstat` (nanoseconds on
 * CPU) or, where the kernel lacks it, `/proc/thread-self/stat` (utime + stime in 1/100 s ticks).
 * Without either (not Linux), each copy runs in a child process re-running `process.execPath`
 * with inline code, where `process.cpuUsage()` is the copy's own. No file besides the pilot
 * bundle is needed either way.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { PILOT_COMMAND_EXIT_CODES, PilotCommandError } from './command-error.js';

/** Draws per round in DIRAC's DB12. */
export const DB12_DRAWS = 12_500_000;

/** HS06·s that DIRAC equates with one round of 12.5 M draws. */
const SCORE_PER_ROUND = 250;

/**
 * Raw Node score × this = DIRAC's Python DB12 score on the same machine.
 *
 * Measured 2026-11-22 on this project's development machine (2 vCPU "AMD EPYC" VM, Linux 6.18,
 * Debian 12), Node v20.20.2 against CPython 3.11.7 running benchmarks/lib/db12_reference.py,
 * alternating (`npm run bench -- db12 --size full` with the constant at 0.1):
 * - 1 copy, 5 rounds: Node raw 500.5-509.0 (median 504.7), Python 58.3-62.2 (median 60.2):
 *   60.2 / 504.7 = 0.1194;
 * - 2 copies, 3 rounds (minimum of the copies): Node raw median 476.6, Python median 58.3:
 *   0.1223.
 * Rounded to 0.12: run-to-run spread is about 3 % on both sides, so a third digit would be
 * noise. The ratio of V8's to CPython's speed depends on the CPU and the two versions; re-run
 * the scenario on a new reference machine or interpreter before trusting the constant there.
 */
export const DB12_CALIBRATION = 0.12;

export type Db12Method = 'worker-thread' | 'child-process';

/** Where a copy read its CPU time: per-thread (ns or ticks) or per-process. */
export type Db12CpuClock = 'schedstat' | 'stat' | 'process';

export interface Db12Options {
  /** Copies run at once: one per allocated core. */
  copies: number;
  /** Draws per round; default 12.5 M (tests use fewer; the score is scaled to 12.5 M). */
  draws?: number;
  /** Multiplier from the raw Node score to DIRAC's scale; default DB12_CALIBRATION. */
  calibration?: number;
  /** Force how copies run; default worker threads when per-thread CPU time is readable. */
  method?: Db12Method;
}

export interface Db12Result {
  /** The lowest raw score × calibration, rounded to 0.1 like DIRAC. */
  score: number;
  /** Raw score of each copy, ascending. */
  raw: number[];
  /** CPU seconds of each copy's timed round, in the order of `raw`. */
  cpuSeconds: number[];
  /** Wall seconds of the whole run, warm-up and start-up included. */
  wallSeconds: number;
  copies: number;
  calibration: number;
  engine: string;
  method: Db12Method;
  cpuClock: Db12CpuClock;
}

/** What one copy reports. */
interface CopyMeasure {
  cpuSeconds: number;
  sums: number;
}

// ---------------------------------------------------------------------------------------------
// The code a copy runs, as text: a worker thread gets it through `eval`, a child process through
// `-e`. Plain CommonJS JavaScript, self-contained, because it runs outside the bundle.

/**
 * Defines `measureCopy(draws, clock)`: warm-up round, timed round, returns
 * `{ cpuSeconds, sums }`.
 *
 * The sampler: pick a point (u, v) uniformly in the box 0 < u <= 1, |v| <= sqrt(2/e) and keep
 * z = v / u when u² <= exp(-z²/2), i.e. z² <= -4 ln u; the kept z are standard normal (about
 * 73 % of points are kept). `1 - Math.random()` keeps u away from 0.
 */
const COPY_SOURCE = String.raw`
const fs = require('node:fs');
const HALF_WIDTH_X2 = Math.sqrt(8 / Math.E);

function normal(mean, sd) {
  for (;;) {
    const u = 1 - Math.random();
    const z = (HALF_WIDTH_X2 * (Math.random() - 0.5)) / u;
    if (z * z <= -4 * Math.log(u)) return mean + z * sd;
  }
}

function round(draws, s) {
  let total = s[0], totalSq = s[1], running = s[2], runningSq = s[3];
  for (let i = 0; i < draws; i++) {
    const t = normal(10, 1);
    total += t;
    totalSq += t * t;
    running += total;
    runningSq += totalSq;
  }
  return [total, totalSq, running, runningSq];
}

function cpuNow(clock) {
  if (clock === 'schedstat') {
    return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e9;
  }
  if (clock === 'stat') {
    const text = fs.readFileSync('/proc/thread-self/stat', 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  }
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function measureCopy(draws, clock) {
  let sums = round(draws, [0, 0, 0, 0]);
  const start = cpuNow(clock);
  sums = round(draws, sums);
  const cpuSeconds = cpuNow(clock) - start;
  return { cpuSeconds, sums: sums[0] + sums[1] + sums[2] + sums[3] };
}
`;

const WORKER_SOURCE = `${COPY_SOURCE}
const { parentPort, workerData } = require('node:worker_threads');
parentPort.postMessage(measureCopy(workerData.draws, workerData.clock));
`;

const CHILD_SOURCE = `${COPY_SOURCE}
process.stdout.write(JSON.stringify(measureCopy(Number(process.argv[1]), 'process')) + '\\n');
`;

// ---------------------------------------------------------------------------------------------

/** The per-thread CPU clock this kernel offers, or null (then copies run as child processes). */
export function threadCpuClock(): 'schedstat' | 'stat' | null {
  try {
    const ns = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
    if (Number.isFinite(ns) && ns > 0) return 'schedstat';
  } catch {
    // no schedstat (kernel without CONFIG_SCHED_INFO, or not Linux): try stat
  }
  try {
    const text = readFileSync('/proc/thread-self/stat', 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    if (Number.isFinite(Number(f[11])) && Number.isFinite(Number(f[12]))) return 'stat';
  } catch {
    // not Linux
  }
  return null;
}

function db12Error(reason: string): PilotCommandError {
  return new PilotCommandError('db12', reason, PILOT_COMMAND_EXIT_CODES.db12);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs one copy in a worker thread reading its own thread's CPU time. */
function runInWorker(draws: number, clock: Db12CpuClock): Promise<CopyMeasure> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { draws, clock } });
    worker.once('message', (m: CopyMeasure) => {
      settled = true;
      resolve(m);
    });
    worker.once('error', (e) => {
      settled = true;
      reject(e);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`benchmark thread exited with code ${code} before reporting`));
    });
  });
}

/** Runs one copy in a child Node process, whose own CPU time is the copy's. */
function runInChild(draws: number): Promise<CopyMeasure> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CHILD_SOURCE, String(draws)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', reject);
    child.once('close', (code) => {
      try {
        if (code !== 0) throw new Error(`exit code ${code}${err ? `: ${lastLine(err)}` : ''}`);
        resolve(JSON.parse(out) as CopyMeasure);
      } catch (e) {
        reject(new Error(`benchmark process failed (${messageOf(e)})`));
      }
    });
  });
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}

function checkOptions(copies: number, draws: number, calibration: number): void {
  if (!Number.isInteger(copies) || copies < 1) throw db12Error(`copies must be a whole number >= 1, not ${copies}`);
  if (!Number.isInteger(draws) || draws < 1) throw db12Error(`draws must be a whole number >= 1, not ${draws}`);
  if (!Number.isFinite(calibration) || calibration <= 0) {
    throw db12Error(`the calibration constant must be a positive number, not ${calibration}`);
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Runs `copies` DB12 copies at once and scores the node by the slowest. Throws a
 * PilotCommandError (exit code 22) when a copy fails or measures no CPU time.
 */
export async function runDb12(opts: Db12Options): Promise<Db12Result> {
  const draws = opts.draws ?? DB12_DRAWS;
  const calibration = opts.calibration ?? DB12_CALIBRATION;
  checkOptions(opts.copies, draws, calibration);
  const threadClock = threadCpuClock();
  const method: Db12Method = opts.method ?? (threadClock ? 'worker-thread' : 'child-process');
  if (method === 'worker-thread' && !threadClock) {
    throw db12Error('worker threads need /proc/thread-self to measure CPU time per copy; use child processes');
  }
  const cpuClock: Db12CpuClock = method === 'worker-thread' ? threadClock! : 'process';

  const started = performance.now();
  const runs = Array.from({ length: opts.copies }, () => (method === 'worker-thread' ? runInWorker(draws, cpuClock) : runInChild(draws)));
  const settled = await Promise.allSettled(runs);
  const wallSeconds = (performance.now() - started) / 1000;

  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw db12Error(`a benchmark copy failed: ${messageOf(failed.reason)}`);
  const measures = settled.map((s) => (s as PromiseFulfilledResult<CopyMeasure>).value);
  if (measures.some((m) => !(m.cpuSeconds > 0) || !Number.isFinite(m.sums))) {
    throw db12Error(`a copy measured no CPU time (${measures.map((m) => m.cpuSeconds).join(', ')} s)`);
  }

  const byScore = measures
    .map((m) => ({ raw: (SCORE_PER_ROUND * (draws / DB12_DRAWS)) / m.cpuSeconds, cpu: m.cpuSeconds }))
    .sort((a, b) => a.raw - b.raw);
  return {
    score: round1(byScore[0]!.raw * calibration),
    raw: byScore.map((c) => Math.round(c.raw * 100) / 100),
    cpuSeconds: byScore.map((c) => round3(c.cpu)),
    wallSeconds: round3(wallSeconds),
    copies: opts.copies,
    calibration,
    engine: `node ${process.version}`,
    method,
    cpuClock,
  };
}
