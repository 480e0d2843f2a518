/**
 * The job state machine: DIRAC's state names and transition table (JobsStateMachine).
 *
 * ```
 *  Submitting -> Received -> Checking -> Waiting -> Matched -> Running -> Completing -> Done
 *                   ^                     |  ^                   |  ^         |
 *                   |                     |  '-- Rescheduled <---'  '-- Stalled
 *                   '--------------------- reschedule ---------------'
 *  any live state -> Killed | Failed;   Done | Failed | Killed -> Deleted
 * ```
 *
 * - Submitting: a parametric bulk insert not yet confirmed (kept for DIRAC compatibility;
 *   pilot-wms inserts a whole submission in one transaction and never leaves jobs here).
 * - Received: accepted, requirements not yet computed; a reschedule returns here (DIRAC quirk).
 * - Checking: inside the optimizer chain.
 * - Scouting / Staging: used by extensions and tape recall; kept for name compatibility.
 * - Waiting: in a task queue, waiting for a pilot.
 * - Matched: handed to a pilot by the matcher.
 * - Rescheduled: transient; the job is on its way back to Received.
 * - Running: the job wrapper started it.
 * - Stalled: no heartbeat for too long (Running, or Matched with its pilot alive); any sign of life
 *   (a heartbeat, a report of the holding pilot) revives it (DIRAC quirk).
 * - Completing / Completed: payload finished, outputs being handled.
 * - Done / Failed / Killed: final. Deleted: absorbing, purged later.
 *
 * Guarded updates use the inverse table: `UPDATE ... WHERE status = ANY(sourcesOf(target))`.
 */

export const JOB_STATES = [
  'Submitting',
  'Received',
  'Checking',
  'Scouting',
  'Staging',
  'Waiting',
  'Matched',
  'Rescheduled',
  'Running',
  'Stalled',
  'Completing',
  'Completed',
  'Done',
  'Failed',
  'Killed',
  'Deleted',
] as const;

export type JobState = (typeof JOB_STATES)[number];

export const JOB_TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  Submitting: ['Received', 'Checking', 'Deleted', 'Killed'],
  Received: ['Scouting', 'Checking', 'Waiting', 'Failed', 'Deleted', 'Killed'],
  Checking: ['Scouting', 'Staging', 'Waiting', 'Rescheduled', 'Failed', 'Deleted', 'Killed'],
  Scouting: ['Checking', 'Failed', 'Stalled', 'Killed'],
  Staging: ['Checking', 'Waiting', 'Failed', 'Killed'],
  Waiting: ['Matched', 'Rescheduled', 'Deleted', 'Killed'],
  Matched: ['Running', 'Stalled', 'Failed', 'Rescheduled', 'Killed'],
  Rescheduled: ['Waiting', 'Received', 'Deleted', 'Failed', 'Killed'],
  Running: ['Stalled', 'Done', 'Failed', 'Rescheduled', 'Completing', 'Killed', 'Received'],
  Stalled: ['Running', 'Failed', 'Killed'],
  Completing: ['Done', 'Failed', 'Completed', 'Stalled', 'Killed'],
  Completed: ['Done', 'Failed'],
  Done: ['Deleted'],
  Failed: ['Rescheduled', 'Deleted'],
  Killed: ['Deleted'],
  Deleted: [],
};

/** DIRAC's JOB_FINAL_STATES. */
export const FINAL_STATES: readonly JobState[] = ['Done', 'Completed', 'Failed', 'Killed'];

/** States a job leaves only by Deleted or a reschedule: nothing runs any more. */
export function isFinal(state: JobState): boolean {
  return FINAL_STATES.includes(state) || state === 'Deleted';
}

export function isJobState(s: string): s is JobState {
  return (JOB_STATES as readonly string[]).includes(s);
}

export function canTransition(from: JobState, to: JobState): boolean {
  return JOB_TRANSITIONS[from].includes(to);
}

const SOURCES: Record<JobState, JobState[]> = Object.fromEntries(
  JOB_STATES.map((to) => [to, JOB_STATES.filter((from) => canTransition(from, to))]),
) as Record<JobState, JobState[]>;

/** The inverse table: every state from which `to` may be reached. */
export function sourcesOf(to: JobState): readonly JobState[] {
  return SOURCES[to];
}

/**
 * States from which a reschedule is accepted. DIRAC forces reschedules past the table (so even a
 * Running job can be rescheduled by its owner); pilot-wms allows it from every state that is not
 * Deleted, and the reschedule counter decides between Received and Failed.
 */
export const RESCHEDULABLE_STATES: readonly JobState[] = JOB_STATES.filter((s) => s !== 'Deleted');

/**
 * How usage reports count live jobs: "waiting" = not yet handed to a pilot (accepted, being
 * checked, in a task queue, on the way back from a reschedule); "running" = held by a pilot
 * (matched, running, finishing, or silent for a while). Final and Deleted jobs are neither.
 */
export const WAITING_STATES: readonly JobState[] = ['Submitting', 'Received', 'Checking', 'Scouting', 'Staging', 'Waiting', 'Rescheduled'];
export const RUNNING_STATES: readonly JobState[] = ['Matched', 'Running', 'Stalled', 'Completing'];

/** DIRAC's default MaxRescheduling. */
export const DEFAULT_MAX_RESCHEDULING = 3;

/** Minor statuses used by the services (exact DIRAC strings). */
export const MINOR = {
  jobAccepted: 'Job accepted',
  pilotAgentSubmission: 'Pilot Agent Submission',
  assigned: 'Assigned',
  markedForTermination: 'Marked for termination',
  jobRescheduled: 'Job Rescheduled',
  maxReschedulings: 'Maximum of reschedulings reached',
  checkingAccounting: 'Checking accounting',
  // The job wrapper and its watchdog (DIRAC's JobMinorStatus).
  jobInitialization: 'Job Initialization',
  downloadingInputSandbox: 'Downloading InputSandbox',
  failedDownloadingInputSandbox: 'Failed Downloading InputSandbox',
  failedDownloadingInputSandboxLfn: 'Failed Downloading InputSandbox LFN(s)',
  illegalJobJdl: 'Illegal Job JDL',
  application: 'Application',
  applicationNotFound: 'Application not found',
  applicationSuccess: 'Application Finished Successfully',
  applicationErrors: 'Application Finished With Errors',
  exceptionDuringExecution: 'Exception During Execution',
  uploadingOutputSandbox: 'Uploading Output Sandbox',
  outputSandboxUploaded: 'Output Sandbox Uploaded',
  executionComplete: 'Execution Complete',
  receivedKillSignal: 'Received Kill signal',
  jobExceededCpu: 'Job has reached the CPU limit of the queue',
  jobExceededWallClock: 'Job has exceeded maximum wall clock time',
  jobInsufficientDisk: 'Job has insufficient disk space to continue',
} as const;
