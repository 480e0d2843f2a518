/**
 * SLURM's words for a job, turned into pilot states (pure: no I/O).
 *
 * Every job state name SLURM documents (squeue `%T`, scontrol `JobState`, sacct
 * `State`) maps to one pilot state with a reason a site admin can act on:
 *
 *   Waiting  PENDING, CONFIGURING, SUSPENDED (CPUs given back), REQUEUED, REQUEUE_HOLD,
 *            REQUEUE_FED, RESV_DEL_HOLD             -- not running now, may still run
 *   Running  RUNNING, COMPLETING, STOPPED, SIGNALING, STAGE_OUT, RESIZING
 *   Done     COMPLETED (every process exited 0)
 *   Failed   FAILED ("exit code N"), TIMEOUT, NODE_FAIL, BOOT_FAIL, OUT_OF_MEMORY, DEADLINE,
 *            SPECIAL_EXIT
 *   Aborted  CANCELLED (sacct: "CANCELLED by <uid>"), PREEMPTED, REVOKED
 *   Unknown  any other name (a newer SLURM): said so in the reason, never guessed
 *
 * Unlike DIRAC's exact-string table, "CANCELLED by 0", BOOT_FAIL, OUT_OF_MEMORY and DEADLINE
 * are not Unknown: the first word decides, and the compact codes (PD, R, CA, OOM...) are read too.
 *
 * The parsers read `squeue -h -t all -o '%i|%T|%r'` (see SQUEUE_FORMAT), `scontrol show job -o`,
 * `sacct -X -n -P -o JobID,State,ExitCode` and `sbatch --parsable`.
 */
import type { PilotState } from '../../core/pilot-states.js';
import type { PilotBackendStatus } from './types.js';

/** Each SLURM job state name, its compact code, and the pilot state it means. */
export const SLURM_STATES = {
  PENDING: { code: 'PD', pilot: 'Waiting', why: 'waiting for resources' },
  CONFIGURING: { code: 'CF', pilot: 'Waiting', why: 'nodes allocated and booting' },
  SUSPENDED: { code: 'S', pilot: 'Waiting', why: 'suspended, its CPUs given to other jobs' },
  REQUEUED: { code: 'RQ', pilot: 'Waiting', why: 'requeued, it will start again' },
  REQUEUE_HOLD: { code: 'RH', pilot: 'Waiting', why: 'requeued and held' },
  REQUEUE_FED: { code: 'RF', pilot: 'Waiting', why: 'requeued by the federation' },
  RESV_DEL_HOLD: { code: 'RD', pilot: 'Waiting', why: 'held because its reservation was deleted' },
  RUNNING: { code: 'R', pilot: 'Running', why: 'running' },
  COMPLETING: { code: 'CG', pilot: 'Running', why: 'finishing, some processes still alive' },
  STOPPED: { code: 'ST', pilot: 'Running', why: 'stopped by SIGSTOP, CPUs kept' },
  SIGNALING: { code: 'SI', pilot: 'Running', why: 'being signalled' },
  STAGE_OUT: { code: 'SO', pilot: 'Running', why: 'staging out' },
  RESIZING: { code: 'RS', pilot: 'Running', why: 'changing size' },
  COMPLETED: { code: 'CD', pilot: 'Done', why: 'exit code 0' },
  FAILED: { code: 'F', pilot: 'Failed', why: 'non-zero exit code or other failure' },
  TIMEOUT: { code: 'TO', pilot: 'Failed', why: 'killed at its time limit' },
  NODE_FAIL: { code: 'NF', pilot: 'Failed', why: 'its node failed' },
  BOOT_FAIL: { code: 'BF', pilot: 'Failed', why: 'its node failed to boot' },
  OUT_OF_MEMORY: { code: 'OOM', pilot: 'Failed', why: 'killed for using more memory than it asked for' },
  DEADLINE: { code: 'DL', pilot: 'Failed', why: 'terminated at its deadline' },
  SPECIAL_EXIT: { code: 'SE', pilot: 'Failed', why: 'requeued in the special exit state' },
  CANCELLED: { code: 'CA', pilot: 'Aborted', why: 'cancelled' },
  PREEMPTED: { code: 'PR', pilot: 'Aborted', why: 'preempted' },
  REVOKED: { code: 'RV', pilot: 'Aborted', why: 'revoked by a federation sibling' },
} as const satisfies Record<string, { code: string; pilot: PilotState; why: string }>;

export type SlurmStateName = keyof typeof SLURM_STATES;

const BY_CODE = new Map<string, SlurmStateName>(Object.entries(SLURM_STATES).map(([name, s]) => [s.code, name as SlurmStateName]));

/** The state's name from a name, a compact code, "CANCELLED by 0" or a truncated "CANCELLED+". */
export function slurmStateName(raw: string): SlurmStateName | null {
  const word = raw.trim().split(/\s+/)[0]!.replace(/\+$/, '').toUpperCase();
  if (Object.hasOwn(SLURM_STATES, word)) return word as SlurmStateName;
  return BY_CODE.get(word) ?? null;
}

/** Parses SLURM's `<exit>:<signal>` (ExitCode in scontrol and sacct). */
export function parseExitCode(raw: string | undefined): { exit: number; signal: number } | null {
  const m = /^(\d+):(\d+)$/.exec(raw?.trim() ?? '');
  return m ? { exit: Number(m[1]), signal: Number(m[2]) } : null;
}

/** What SLURM said about one job, as the parsers below return it. */
export interface SlurmJobInfo {
  jobId: string;
  /** As SLURM printed it ("CANCELLED by 0" included). */
  state: string;
  /** squeue `%r` / scontrol `Reason` ("None" when there is none). */
  reason?: string;
  /** `<exit>:<signal>` when the source has it (scontrol, sacct). */
  exitCode?: string;
}

/**
 * The pilot state for a SLURM job, with a reason for site admins ("exit code 3",
 * "SLURM: OUT_OF_MEMORY (killed for using more memory than it asked for)").
 */
export function mapSlurmState(info: Pick<SlurmJobInfo, 'state' | 'reason' | 'exitCode'>): PilotBackendStatus {
  const name = slurmStateName(info.state);
  const reason = info.reason && info.reason !== 'None' && info.reason !== '(null)' ? info.reason : null;
  const code = parseExitCode(info.exitCode);
  if (name === null) {
    return { status: 'Unknown', reason: `SLURM: unknown job state ${info.state.trim() || '(empty)'}${reason ? ` (${reason})` : ''}` };
  }
  const s = SLURM_STATES[name];
  const out: PilotBackendStatus = { status: s.pilot, reason: '' };
  if (code && s.pilot !== 'Waiting' && s.pilot !== 'Running') out.exitCode = code.signal ? 128 + code.signal : code.exit;
  if (name === 'COMPLETED') {
    out.reason = 'exit code 0';
    out.exitCode = 0;
  } else if (name === 'FAILED' && code) {
    out.reason = code.signal ? `killed by signal ${code.signal}` : `exit code ${code.exit}`;
  } else if (name === 'CANCELLED') {
    const by = /^\S+\s+by\s+(\S+)/.exec(info.state.trim());
    out.reason = `SLURM: CANCELLED${by ? ` by uid ${by[1]}` : ''}`;
  } else {
    out.reason = `SLURM: ${name} (${s.why})`;
  }
  if (reason && name !== 'COMPLETED' && name !== 'RUNNING' && !(name === 'FAILED' && code)) out.reason += `, reason ${reason}`;
  return out;
}

/** The squeue output format the parser reads: id, state, reason (last, so it may hold anything). */
export const SQUEUE_FORMAT = '%i|%T|%r';

/** Parses `squeue -h -o '%i|%T|%r'` lines; blank and malformed lines are skipped. */
export function parseSqueue(stdout: string): SlurmJobInfo[] {
  const out: SlurmJobInfo[] = [];
  for (const line of stdout.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const a = t.indexOf('|');
    const b = a < 0 ? -1 : t.indexOf('|', a + 1);
    if (a <= 0 || b < 0) continue;
    out.push({ jobId: t.slice(0, a), state: t.slice(a + 1, b), reason: t.slice(b + 1) });
  }
  return out;
}

/**
 * Parses `scontrol show job -o` output: one job per line of `Key=Value` pairs. A value runs up
 * to the next ` Key=`, so values with spaces (Command, WorkDir, Reason) stay whole.
 */
export function parseScontrolJobs(stdout: string): Array<Record<string, string>> {
  const jobs: Array<Record<string, string>> = [];
  for (const line of stdout.split('\n')) {
    if (!/^\s*JobId=/.test(line)) continue;
    const fields: Record<string, string> = {};
    const keyRe = /(?:^|\s)([A-Za-z][\w:/]*)=/g;
    const keys: Array<{ key: string; start: number; end: number }> = [];
    for (let m = keyRe.exec(line); m; m = keyRe.exec(line)) keys.push({ key: m[1]!, start: m.index, end: keyRe.lastIndex });
    keys.forEach((k, i) => {
      fields[k.key] = line.slice(k.end, i + 1 < keys.length ? keys[i + 1]!.start : undefined).trim();
    });
    jobs.push(fields);
  }
  return jobs;
}

/** The jobs of `scontrol show job -o` as SlurmJobInfo. */
export function parseScontrol(stdout: string): SlurmJobInfo[] {
  return parseScontrolJobs(stdout)
    .filter((f) => f['JobId'] && f['JobState'])
    .map((f) => ({ jobId: f['JobId']!, state: f['JobState']!, reason: f['Reason'], exitCode: f['ExitCode'] }));
}

/** Parses `sacct -X -n -P -o JobID,State,ExitCode` (`|`-separated, no trailing `|`). */
export function parseSacct(stdout: string): SlurmJobInfo[] {
  const out: SlurmJobInfo[] = [];
  for (const line of stdout.split('\n')) {
    const f = line.trim().split('|');
    if (f.length < 2 || !f[0]) continue;
    out.push({ jobId: f[0], state: f[1]!, ...(f[2] ? { exitCode: f[2] } : {}) });
  }
  return out;
}

/**
 * Parses `sbatch --parsable` stdout: `<jobid>` or `<jobid>;<cluster>`. Throws when there is no
 * job id, quoting what sbatch printed.
 */
export function parseSbatch(stdout: string): { jobId: string; cluster?: string } {
  const line =
    stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .pop() ?? '';
  const m = /^(\d+)(?:;(\S+))?$/.exec(line);
  if (!m) throw new Error(`sbatch printed no job id: ${JSON.stringify(stdout.trim().slice(0, 200))}`);
  return m[2] ? { jobId: m[1]!, cluster: m[2] } : { jobId: m[1]! };
}
