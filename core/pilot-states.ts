/**
 * The pilot state machine (DIRAC's PilotStatus), in the same form as core/job-states.ts.
 *
 * ```
 *  Submitted -> Waiting -> Running -> Done | Failed        (the CE's answers, the pilot's reports)
 *      |           |          |
 *      '-----------+----------+--> Unknown -> any state but Unknown   (the CE lost track of it)
 *  any live state -> Failed | Aborted | Deleted            (the CE, the site director, the agent's timers)
 * ```
 *
 * - Submitted: written by the site director when it sends the pilot to a CE.
 * - Waiting / Running: the CE's answers move a pilot forward only (never back to Waiting); the
 *   pilot itself reports Running when it registers.
 * - Unknown: its CE no longer knows it; any later CE answer moves it on, and the pilot-status
 *   agent aborts it after a while.
 * - Done / Failed: the pilot's own end report (or the CE's: ended without reporting).
 * - Aborted / Deleted: the CE refused or lost it, or the pilot-status agent gave up on it.
 * - Done, Failed, Aborted and Deleted are final: the first final status written wins.
 *
 * A live state may be written again over itself (a new reason or exit code: a pilot reporting
 * Running twice); that is not a transition. Guarded updates use the inverse table:
 * `UPDATE pilots ... WHERE status = ANY(pilotSourcesOf(target))`, so an illegal move changes nothing.
 */
export const PILOT_STATES = ['Submitted', 'Waiting', 'Running', 'Done', 'Failed', 'Aborted', 'Deleted', 'Unknown'] as const;
export type PilotState = (typeof PILOT_STATES)[number];

/** The state a pilot record is created in (by the site director). */
export const PILOT_INITIAL_STATE: PilotState = 'Submitted';

export const PILOT_TRANSITIONS: Readonly<Record<PilotState, readonly PilotState[]>> = {
  Submitted: ['Waiting', 'Running', 'Unknown', 'Done', 'Failed', 'Aborted', 'Deleted'],
  Waiting: ['Running', 'Unknown', 'Done', 'Failed', 'Aborted', 'Deleted'],
  Running: ['Unknown', 'Done', 'Failed', 'Aborted', 'Deleted'],
  Unknown: ['Submitted', 'Waiting', 'Running', 'Done', 'Failed', 'Aborted', 'Deleted'],
  Done: [],
  Failed: [],
  Aborted: [],
  Deleted: [],
};

/** Not yet running: counted against a queue's maximum of waiting pilots. */
export const PILOT_WAITING_STATES: readonly PilotState[] = ['Submitted', 'Waiting'];
/** Still alive as far as we know: counted against a queue's maximum of pilots. */
export const PILOT_TRANSIENT_STATES: readonly PilotState[] = ['Submitted', 'Waiting', 'Running', 'Unknown'];
/** The states with no way out (empty rows of the table). */
export const PILOT_FINAL_STATES: readonly PilotState[] = ['Done', 'Failed', 'Aborted', 'Deleted'];

export function isPilotState(s: string): s is PilotState {
  return (PILOT_STATES as readonly string[]).includes(s);
}

export function isPilotFinal(s: PilotState): boolean {
  return PILOT_FINAL_STATES.includes(s);
}

/** May a pilot in `from` be written `to`? A live state over itself is allowed (see above). */
export function canPilotTransition(from: PilotState, to: PilotState): boolean {
  return PILOT_TRANSITIONS[from].includes(to) || (from === to && !isPilotFinal(from));
}

const PILOT_SOURCES: Record<PilotState, PilotState[]> = Object.fromEntries(
  PILOT_STATES.map((to) => [to, PILOT_STATES.filter((from) => canPilotTransition(from, to))]),
) as Record<PilotState, PilotState[]>;

/** The inverse table: every state a pilot may be in to be written `to` (re-statement included). */
export function pilotSourcesOf(to: PilotState): readonly PilotState[] {
  return PILOT_SOURCES[to];
}
