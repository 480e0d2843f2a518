/**
 * The pilot transition table (core/pilot-states.ts): its shape, and that every move the code
 * decides is one the table allows (the database refuses the others).
 */
import { describe, expect, it } from 'vitest';
import { decidePilotStatus } from '../../agents/pilot-status.js';
import {
  canPilotTransition,
  isPilotFinal,
  PILOT_FINAL_STATES,
  PILOT_INITIAL_STATE,
  PILOT_STATES,
  PILOT_TRANSIENT_STATES,
  PILOT_TRANSITIONS,
  PILOT_WAITING_STATES,
  pilotSourcesOf,
  type PilotState,
} from '../../core/pilot-states.js';

/** The states reachable from `start` by following the table. */
function reachableFrom(start: PilotState): Set<PilotState> {
  const seen = new Set<PilotState>([start]);
  const todo = [start];
  while (todo.length > 0) {
    for (const next of PILOT_TRANSITIONS[todo.pop()!]) {
      if (!seen.has(next)) {
        seen.add(next);
        todo.push(next);
      }
    }
  }
  return seen;
}

describe('pilot transition table', () => {
  it('has a row for every state and names only known states', () => {
    expect(Object.keys(PILOT_TRANSITIONS).sort()).toEqual([...PILOT_STATES].sort());
    for (const targets of Object.values(PILOT_TRANSITIONS)) for (const t of targets) expect(PILOT_STATES).toContain(t);
  });

  it('reaches every state from the initial one', () => {
    expect([...reachableFrom(PILOT_INITIAL_STATE)].sort()).toEqual([...PILOT_STATES].sort());
  });

  it('gives the final states no way out, and every live state a way to each final one', () => {
    for (const s of PILOT_STATES) expect(PILOT_TRANSITIONS[s].length === 0).toBe(isPilotFinal(s));
    expect(PILOT_STATES.filter((s) => PILOT_TRANSITIONS[s].length === 0)).toEqual([...PILOT_FINAL_STATES]);
    for (const s of PILOT_TRANSIENT_STATES) for (const f of PILOT_FINAL_STATES) expect(canPilotTransition(s, f)).toBe(true);
  });

  it('never leads back into a waiting state from Running (the CE moves pilots forward only)', () => {
    for (const w of PILOT_WAITING_STATES) expect(canPilotTransition('Running', w)).toBe(false);
  });

  it('lets a live state be written over itself, never a final one', () => {
    for (const s of PILOT_STATES) expect(canPilotTransition(s, s)).toBe(!isPilotFinal(s));
  });

  it('has pilotSourcesOf as its exact inverse', () => {
    for (const to of PILOT_STATES) {
      expect([...pilotSourcesOf(to)].sort()).toEqual(PILOT_STATES.filter((from) => canPilotTransition(from, to)).sort());
    }
    // What the pilot-status agent's timers write: Unknown -> Aborted, every live state -> Deleted.
    expect(pilotSourcesOf('Aborted')).toContain('Unknown');
    expect([...pilotSourcesOf('Deleted')].sort()).toEqual([...PILOT_TRANSIENT_STATES].sort());
  });
});

describe('what the code writes follows the table', () => {
  const pilot = (status: PilotState) => ({ id: 1, reference: 'ref-1', ce: 'ce01', ceType: 'local', status, lastUpdateAt: new Date(0) });

  it('every change the pilot-status agent decides from a CE answer is allowed', () => {
    for (const from of PILOT_TRANSIENT_STATES) {
      for (const answer of [undefined, ...PILOT_STATES.map((status) => ({ status, reason: 'because' }))]) {
        const change = decidePilotStatus(pilot(from), answer);
        if (change) expect(canPilotTransition(change.from, change.status), `${from} -> ${change.status}`).toBe(true);
      }
    }
  });

  it('allows the writes of the site director, the pilot and its registration', () => {
    expect(canPilotTransition('Submitted', 'Aborted')).toBe(true); // submission failed
    for (const from of PILOT_TRANSIENT_STATES) {
      for (const to of ['Running', 'Done', 'Failed'] as const) expect(canPilotTransition(from, to), `${from} -> ${to}`).toBe(true);
    }
  });
});
