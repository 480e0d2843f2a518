/**
 * The acceptance of the 300-job fault scenarios (tests/faults/*-restart, server-kill), once:
 * the faults came mid-run with jobs on pilots, and every job ended Done with exactly one run of
 * its payload and nothing left running. Kept apart from tests/helpers/faults.ts, which the
 * `faults` benchmark imports without vitest.
 */
import { expect } from 'vitest';
import { badJobs, describeResult, runFaultScenario, type FaultScenario, type FaultSystem, type ScenarioResult } from './faults.js';

export async function expectEveryJobDoneOnce(
  sys: FaultSystem,
  scenario: FaultScenario,
  jobs: number,
  faultKinds: readonly string[],
): Promise<ScenarioResult> {
  const r = await runFaultScenario(sys, scenario, { jobs });
  const bad = badJobs(r);
  const why = `${describeResult(r)}${bad.length ? `\n${await sys.diagnose(bad)}` : ''}`;
  console.log(why);
  expect(r.faults.map((f) => f.kind)).toEqual(faultKinds);
  for (const f of r.faults) {
    expect(f.finalBefore, 'each fault came mid-run').toBeLessThan(jobs);
    expect(f.inFlightBefore, 'jobs were on pilots when each fault came').toBeGreaterThan(0);
  }
  expect(r.error, why).toBeNull();
  expect(r.verdict.duplicates, why).toEqual([]);
  expect(r.verdict.notDone, why).toEqual([]);
  expect(r.verdict.done, why).toBe(jobs);
  expect(r.verdict.neverStarted, why).toEqual([]);
  expect(r.verdict.unfinishedRuns, why).toEqual([]);
  expect(r.verdict.strangers, why).toEqual([]);
  expect(r.leftoverPayloads, why).toEqual([]);
  return r;
}
