/**
 * What the fault harness (tests/helpers/faults.ts) and the failover topology
 * (tests/helpers/topology.ts) share to run pilot-wms as real processes: the built CLI spawned
 * with a log file and an environment without WMS_*, `/api/health` polled until it answers, a
 * run directory that local pilots (nobody, when the tests run as root) can reach, the ledger
 * payload script and its JDL, the ledger's parser, and the config with agents and pilots on
 * schedules of a second or two; one SQL query on a connection of its own. Imports no vitest.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'dist/cli/main.js');

/** A CLI process: its exit, and the file its stdout and stderr go to. */
export interface CliProcess {
  child: ChildProcess;
  exited: Promise<void>;
  log: string;
}

/** Throws unless `npm run build` made the CLI and the pilot bundle. */
export function requireBuild(): void {
  if (!existsSync(CLI) || !existsSync(join(ROOT, 'dist/pilot/pilot.tar.gz')))
    throw new Error(`no ${CLI} or pilot bundle: run npm run build`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `b` merged over `a`, objects key by key, anything else replaced. */
export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isObject(v) && isObject(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  return out;
}

/** Our environment without WMS_*, plus `extra`. */
export function envWithoutWms(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('WMS_')) env[k] = v;
  return { ...env, ...extra };
}

/** Starts `node dist/cli/main.js ...args` in `cwd`, stdout and stderr appended to `log`. */
export async function spawnCli(o: { args: string[]; log: string; cwd: string; env: Record<string, string> }): Promise<CliProcess> {
  const out = await open(o.log, 'a');
  const child = spawn(process.execPath, [CLI, ...o.args], { cwd: o.cwd, env: o.env, stdio: ['ignore', out.fd, out.fd] });
  await out.close();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { child, exited, log: o.log };
}

/** Whether the process has exited. */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** The last `lines` lines of a file ('' when there is none). */
export async function tail(file: string, lines: number): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').slice(-lines).join('\n');
}

/** GET `url`/api/health answers 200. */
export async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(3000) });
    await res.text();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Polls `url`/api/health every 200 ms until it answers 200; throws, with the end of the log of
 * `proc` (if given), when `proc` exits first or after `timeoutMs`. `what` names it in the error.
 */
export async function waitHealthy(url: string, timeoutMs: number, what: string, proc?: CliProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await healthy(url))) {
    if (proc && hasExited(proc.child))
      throw new Error(`${what} exited (${proc.child.exitCode ?? proc.child.signalCode}):\n${await tail(proc.log, 40)}`);
    if (Date.now() > deadline) throw new Error(`${what} did not answer in ${timeoutMs} ms${proc ? `:\n${await tail(proc.log, 40)}` : ''}`);
    await sleep(200);
  }
}

/**
 * Makes `base` reachable, `base`/tmp (mode 1777: the pilots' run dir) and `base`/ledger (777):
 * local pilots run as nobody when the tests run as root.
 */
export async function makeRunDirs(base: string): Promise<void> {
  await chmod(base, 0o755);
  await mkdir(join(base, 'tmp'), { mode: 0o1777 });
  await chmod(join(base, 'tmp'), 0o1777);
  await mkdir(join(base, 'ledger'), { mode: 0o777 });
  await chmod(join(base, 'ledger'), 0o777);
}

/** The ledger file and the payload script of a run (under `base`/ledger). */
export function ledgerPaths(base: string, marker: string): { ledgerFile: string; payloadScript: string } {
  return { ledgerFile: join(base, 'ledger', 'ledger.txt'), payloadScript: join(base, 'ledger', `payload-${marker}.sh`) };
}

/**
 * Writes an empty ledger and the payload script: it appends `<jobId> <pid> start <ms>`, sleeps
 * `payloadSeconds`, appends `<jobId> <pid> end <ms>`. Its `$1` is the marker, so that the shell's
 * command line carries it; `sleep` inherits it through the environment (ExecutionEnvironment).
 * `label` names the script's owner in its comment line.
 */
export async function writeLedgerPayload(base: string, marker: string, payloadSeconds: number, label: string): Promise<void> {
  const { ledgerFile, payloadScript } = ledgerPaths(base, marker);
  await writeFile(ledgerFile, '', { mode: 0o666 });
  await chmod(ledgerFile, 0o666);
  const script = [
    '#!/bin/sh',
    `# pilot-wms ${label} payload (${marker})`,
    `L='${ledgerFile}'`,
    'echo "$DIRACJOBID $$ start $(date +%s%3N)" >> "$L"',
    `sleep ${payloadSeconds}`,
    'echo "$DIRACJOBID $$ end $(date +%s%3N)" >> "$L"',
    'echo "payload of job $DIRACJOBID done"',
    '',
  ].join('\n');
  await writeFile(payloadScript, script, { mode: 0o755 });
  await chmod(payloadScript, 0o755);
}

/** The lines of a parametric JDL of `n` jobs named `<jobName>_%n`, each running the ledger payload. */
export function ledgerJdlLines(o: { jobName: string; payloadScript: string; marker: string; markerVar: string; n: number }): string[] {
  return [
    '[',
    `  JobName = "${o.jobName}_%n";`,
    '  Executable = "/bin/sh";',
    `  Arguments = "${o.payloadScript} ${o.marker}";`,
    `  ExecutionEnvironment = "${o.markerVar}=${o.marker}";`,
    `  Parameters = ${o.n}; ParameterStart = 1; ParameterStep = 1;`,
    '  CPUTime = 600;',
    ']',
  ];
}

/** One run of a payload in the ledger: its pid, and the ms of its `start` and `end` lines. */
export interface LedgerRun {
  pid: number;
  start: number;
  end: number | null;
}

/**
 * Parses the ledger: per job id, its payload runs; `strange` holds the lines that do not parse,
 * `end` lines without their `start`, and (when `ours` is given) the lines of other ids.
 */
export function parseLedger(text: string, ours: ReadonlySet<number> | null = null): { runs: Map<number, LedgerRun[]>; strange: string[] } {
  const runs = new Map<number, LedgerRun[]>();
  const strange: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const m = /^(\d+) (\d+) (start|end) (\d+)$/.exec(line.trim());
    if (!m || (ours !== null && !ours.has(Number(m[1])))) {
      strange.push(line);
      continue;
    }
    const id = Number(m[1]);
    const pid = Number(m[2]);
    const list = runs.get(id) ?? [];
    if (m[3] === 'start') list.push({ pid, start: Number(m[4]), end: null });
    else {
      const run = list.find((r) => r.pid === pid && r.end === null);
      if (run) run.end = Number(m[4]);
      else strange.push(line);
    }
    runs.set(id, list);
  }
  return { runs, strange };
}

export interface FastConfigOptions {
  /** `pilot.localSlots`. */
  slots: number;
  /** `pilot.heartbeatSeconds`. */
  heartbeatSeconds: number;
  /** `agentSettings.stalledJobs`: when a job without heartbeats is Stalled, and Failed. */
  stalledAfterSeconds: number;
  failedAfterSeconds: number;
  /** `shutdownGrace` (left out when not given). */
  shutdownGrace?: number;
}

/**
 * The config file's content: agents every second (pilot status every two), pilots polling every
 * 0.2-1 s with payload isolation `none`, `overrides` deep-merged over it.
 */
export function fastConfig(o: FastConfigOptions, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const every = '* * * * * *';
  return deepMerge(
    {
      ...(o.shutdownGrace !== undefined ? { shutdownGrace: o.shutdownGrace } : {}),
      agentSettings: {
        siteDirector: { schedule: every },
        pilotStatus: { schedule: '*/2 * * * * *' },
        stalledJobs: {
          schedule: every,
          stalledAfterSeconds: o.stalledAfterSeconds,
          failedAfterSeconds: o.failedAfterSeconds,
          matchedTimeoutSeconds: 30,
        },
        leaseSeconds: 10,
      },
      pilot: {
        localSlots: o.slots,
        localIsolation: 'none',
        pollSeconds: 0.2,
        maxPollSeconds: 1,
        stopAfterFailedMatches: 5,
        heartbeatSeconds: o.heartbeatSeconds,
        minDiskMb: 50,
        logFlushSeconds: 0.5,
      },
    },
    overrides,
  );
}

/** Runs one SQL query on `dbUrl` on a connection of its own (closed after). */
export async function queryOnce<T = any>(dbUrl: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: dbUrl, connectionTimeoutMillis: 10_000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end().catch(() => undefined);
  }
}
