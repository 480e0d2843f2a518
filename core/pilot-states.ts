/**
 * Pilot states (DIRAC's PilotStatus): the site director writes Submitted; the CE's answers move
 * a pilot through Waiting and Running; the pilot itself reports Running at registration and
 * Done or Failed at its end; the pilot-status agent writes Aborted, Deleted and Unknown.
 */
export const PILOT_STATES = ['Submitted', 'Waiting', 'Running', 'Done', 'Failed', 'Aborted', 'Deleted', 'Unknown'] as const;
export type PilotState = (typeof PILOT_STATES)[number];

/** Not yet running: counted against a queue's maximum of waiting pilots. */
export const PILOT_WAITING_STATES: readonly PilotState[] = ['Submitted', 'Waiting'];
/** Still alive as far as we know: counted against a queue's maximum of pilots. */
export const PILOT_TRANSIENT_STATES: readonly PilotState[] = ['Submitted', 'Waiting', 'Running', 'Unknown'];
export const PILOT_FINAL_STATES: readonly PilotState[] = ['Done', 'Failed', 'Aborted', 'Deleted'];

export function isPilotState(s: string): s is PilotState {
  return (PILOT_STATES as readonly string[]).includes(s);
}

export function isPilotFinal(s: PilotState): boolean {
  return PILOT_FINAL_STATES.includes(s);
}
