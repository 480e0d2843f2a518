/**
 * HTCondor's words for a job, turned into pilot states (pure: no I/O).
 *
 * `JobStatus` (HTCondor's job ClassAd, 1 Idle to 7 Suspended) and, for held jobs, `HoldReasonCode`/`SubCode`:
 *
 *   1 Idle                  Waiting
 *   2 Running               Running
 *   3 Removed               Aborted  ("removed: <RemoveReason>")
 *   4 Completed             Done when ExitCode is 0; Failed "exit code N" otherwise, or
 *                           "killed by signal N" when ExitBySignal
 *   5 Held                  Aborted with the hold reason, except:
 *                             code 3 subcode 55 (DIRAC's `on_exit_hold = ExitCode =!= 0`)
 *                               -> Failed: the pilot exited non-zero and sits held
 *                             code 16 (SpoolingInput, a -remote submission) -> Waiting
 *                             code 15 (SubmittedOnHold) -> Waiting: it runs once released
 *   6 Transferring Output   Running  (DIRAC: Unknown; the job has run and is finishing)
 *   7 Suspended             Unknown  ("suspended on the execute node"), said so, not guessed
 *   anything else           Unknown  ("JobStatus N")
 *
 * Unlike DIRAC, a Completed job is not Done whatever its exit code: the exit code decides, so
 * a CE without `on_exit_hold` still reports failing pilots as Failed.
 *
 * The parsers read `condor_submit -terse` (`107.0 - 107.4`, one line per cluster), and the
 * JSON of `condor_q -json` / `condor_history -json` (an array of ads; empty output when no
 * job matches, which is not an error).
 */
import type { PilotState } from '../../core/pilot-states.js';
import type { PilotBackendStatus } from './types.js';

/** JobStatus codes: their name and the pilot state each means (5 and 4 are refined). */
export const CONDOR_JOB_STATUS = {
  1: { name: 'Idle', pilot: 'Waiting', why: 'idle: waiting for a slot' },
  2: { name: 'Running', pilot: 'Running', why: 'running' },
  3: { name: 'Removed', pilot: 'Aborted', why: 'removed' },
  4: { name: 'Completed', pilot: 'Done', why: 'completed' },
  5: { name: 'Held', pilot: 'Aborted', why: 'held' },
  6: { name: 'TransferringOutput', pilot: 'Running', why: 'transferring output' },
  7: { name: 'Suspended', pilot: 'Unknown', why: 'suspended on the execute node' },
} as const satisfies Record<number, { name: string; pilot: PilotState; why: string }>;

/** HoldReasonCode labels (hold-table; the `NumHoldsByReason` keys). Codes 2 and 28-31 are unused. */
export const CONDOR_HOLD_CODES: Readonly<Record<number, string>> = {
  1: 'UserRequest',
  3: 'JobPolicy',
  4: 'CorruptedCredential',
  5: 'JobPolicyUndefined',
  6: 'FailedToCreateProcess',
  7: 'UnableToOpenOutput',
  8: 'UnableToOpenInput',
  9: 'UnableToOpenOutputStream',
  10: 'UnableToOpenInputStream',
  11: 'InvalidTransferAck',
  12: 'TransferOutputError',
  13: 'TransferInputError',
  14: 'IwdError',
  15: 'SubmittedOnHold',
  16: 'SpoolingInput',
  17: 'JobShadowMismatch',
  18: 'InvalidTransferGoAhead',
  19: 'HookPrepareJobFailure',
  20: 'MissedDeferredExecutionTime',
  21: 'StartdHeldJob',
  22: 'UnableToInitUserLog',
  23: 'FailedToAccessUserAccount',
  24: 'NoCompatibleShadow',
  25: 'InvalidCronSettings',
  26: 'SystemPolicy',
  27: 'SystemPolicyUndefined',
  32: 'MaxTransferInputSizeExceeded',
  33: 'MaxTransferOutputSizeExceeded',
  34: 'JobOutOfResources',
  35: 'InvalidDockerImage',
  36: 'FailedToCheckpoint',
  37: 'EC2UserError',
  38: 'EC2InternalError',
  39: 'EC2AdminError',
  40: 'EC2ConnectionProblem',
  41: 'EC2ServerError',
  42: 'EC2InstancePotentiallyLostError',
  43: 'PreScriptFailed',
  44: 'PostScriptFailed',
  45: 'SingularityTestFailed',
  46: 'JobDurationExceeded',
  47: 'JobExecuteExceeded',
  48: 'HookShadowPrepareJobFailure',
};

/** The subcode DIRAC (and our CE, when a site adds `on_exit_hold`) uses for "pilot exited non-zero". */
export const ON_EXIT_HOLD_SUBCODE = 55;

/** A job ad as condor_q / condor_history print it in JSON (only the attributes we read). */
export interface CondorJobAd {
  ClusterId: number;
  ProcId: number;
  JobStatus?: number;
  HoldReasonCode?: number;
  HoldReasonSubCode?: number;
  HoldReason?: string;
  RemoveReason?: string;
  ExitCode?: number;
  ExitBySignal?: boolean;
  ExitSignal?: number;
  [attr: string]: unknown;
}

/** The attributes the CE asks for (`-attributes`), so ads stay small. */
export const STATUS_ATTRIBUTES = [
  'ClusterId',
  'ProcId',
  'JobStatus',
  'HoldReasonCode',
  'HoldReasonSubCode',
  'HoldReason',
  'RemoveReason',
  'ExitCode',
  'ExitBySignal',
  'ExitSignal',
] as const;

/** `<cluster>.<proc>` of an ad. */
export function condorJobId(ad: Pick<CondorJobAd, 'ClusterId' | 'ProcId'>): string {
  return `${ad.ClusterId}.${ad.ProcId}`;
}

function holdStatus(ad: CondorJobAd): PilotBackendStatus {
  const code = ad.HoldReasonCode;
  const sub = ad.HoldReasonSubCode;
  if (code === undefined) return { status: 'Unknown', reason: 'held without a HoldReasonCode' };
  const label = CONDOR_HOLD_CODES[code] ?? 'unlisted code';
  const text = ad.HoldReason ? `: ${ad.HoldReason}` : '';
  const held = `held (${code} ${label}${sub ? `, subcode ${sub}` : ''})${text}`;
  if (code === 3 && sub === ON_EXIT_HOLD_SUBCODE) {
    const exit = typeof ad.ExitCode === 'number' ? ad.ExitCode : undefined;
    const reason = exit !== undefined ? `exit code ${exit}, ${held}` : `exited non-zero, ${held}`;
    return exit !== undefined ? { status: 'Failed', reason, exitCode: exit } : { status: 'Failed', reason };
  }
  if (code === 16 || code === 15) return { status: 'Waiting', reason: held };
  return { status: 'Aborted', reason: held };
}

/** The pilot state of one job ad (see the table at the top of this file). */
export function condorAdStatus(ad: CondorJobAd): PilotBackendStatus {
  const js = ad.JobStatus;
  switch (js) {
    case 4: {
      if (ad.ExitBySignal === true) {
        const sig = typeof ad.ExitSignal === 'number' ? ad.ExitSignal : undefined;
        return {
          status: 'Failed',
          reason: sig !== undefined ? `killed by signal ${sig}` : 'killed by a signal',
          exitCode: 128 + (sig ?? 0),
        };
      }
      if (typeof ad.ExitCode !== 'number') return { status: 'Done', reason: 'completed (no exit code recorded)' };
      return ad.ExitCode === 0
        ? { status: 'Done', reason: 'exit code 0', exitCode: 0 }
        : { status: 'Failed', reason: `exit code ${ad.ExitCode}`, exitCode: ad.ExitCode };
    }
    case 5:
      return holdStatus(ad);
    case 3:
      return { status: 'Aborted', reason: ad.RemoveReason ? `removed: ${ad.RemoveReason}` : 'removed' };
    case 1:
    case 2:
    case 6:
    case 7:
      return { status: CONDOR_JOB_STATUS[js].pilot, reason: CONDOR_JOB_STATUS[js].why };
    default:
      return { status: 'Unknown', reason: js === undefined ? 'no JobStatus in the job ad' : `JobStatus ${String(js)} (not a known code)` };
  }
}

/**
 * Reads `condor_submit -terse`: one `<cluster>.<first> - <cluster>.<last>` line per cluster;
 * answers every `<cluster>.<proc>` in order. Throws when no such line is there.
 */
export function parseSubmitTerse(stdout: string): string[] {
  const ids: string[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^\s*(\d+)\.(\d+)\s*-\s*(\d+)\.(\d+)\s*$/.exec(line);
    if (!m) continue;
    const [cluster, first, cluster2, last] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
    if (cluster !== cluster2 || last < first) throw new Error(`condor_submit -terse: unexpected range "${line.trim()}"`);
    for (let p = first; p <= last; p++) ids.push(`${cluster}.${p}`);
  }
  if (ids.length === 0) throw new Error(`condor_submit -terse printed no job range: "${stdout.trim().slice(0, 200)}"`);
  return ids;
}

/**
 * Reads `condor_q -json` / `condor_history -json`: a JSON array of ads. Empty (or blank)
 * output means no job matched — HTCondor prints nothing then, not `[]`. Ads without a numeric
 * ClusterId/ProcId are skipped (they cannot be matched to a pilot). Throws on anything else.
 */
export function parseJobAdsJson(stdout: string): CondorJobAd[] {
  const text = stdout.trim();
  if (text === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`HTCondor printed JSON that cannot be read (${(e as Error).message}): "${text.slice(0, 200)}"`, { cause: e });
  }
  if (!Array.isArray(parsed)) throw new Error(`HTCondor printed JSON that is not an array of job ads: "${text.slice(0, 200)}"`);
  return parsed.filter(
    (ad): ad is CondorJobAd =>
      ad !== null &&
      typeof ad === 'object' &&
      Number.isInteger((ad as CondorJobAd).ClusterId) &&
      Number.isInteger((ad as CondorJobAd).ProcId),
  );
}

/** `htcondorce://<ce>/<cluster>.<proc>` for this CE, or null for any other reference. */
export function condorIdOfReference(reference: string, ce: string): string | null {
  const m = /^htcondorce:\/\/([^/]+)\/(\d+\.\d+)(?::::.*)?$/.exec(reference);
  return m && m[1] === ce ? (m[2] as string) : null;
}

/** The reference of a job: `htcondorce://<ce>/<cluster>.<proc>`. */
export function condorReference(ce: string, id: string): string {
  return `htcondorce://${ce}/${id}`;
}
