/**
 * Issue 10, "No job lost, none run twice": the server is stopped the graceful way (SIGTERM, and
 * the wait for its exit) a third of the way through 300 short jobs and started again on the
 * same data dir and database. Every job must end Done, its payload having run exactly once (the
 * ledger the payloads write says so), and no payload may be left running. The harness is tests/helpers/faults.ts.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { badJobs, describeResult, FaultSystem, runFaultScenario } from '../helpers/faults.js';

const JOBS = Number(process.env['FAULTS_JOBS'] ?? 300);
let sys: FaultSystem | null = null;

beforeAll(async () => {
  sys = await FaultSystem.start({ name: 'graceful_restart', slots: 6, payloadSeconds: 1, log: (l) => console.log(`[graceful-restart] ${l}`) });
});
afterAll(async () => {
  await sys?.destroy();
});

it(`graceful stop and restart of the server mid-run: ${JOBS} jobs, each Done exactly once, no payload left`, async () => {
  const r = await runFaultScenario(sys!, 'graceful-restart', { jobs: JOBS });
  const bad = badJobs(r);
  const why = `${describeResult(r)}${bad.length ? `\n${await sys!.diagnose(bad)}` : ''}`;
  console.log(why);
  expect(r.faults.map((f) => f.kind)).toEqual(['server SIGTERM']);
  expect(r.faults[0]!.finalBefore, 'the fault came mid-run').toBeLessThan(JOBS);
  expect(r.faults[0]!.inFlightBefore, 'jobs were on pilots when the fault came').toBeGreaterThan(0);
  expect(r.error, why).toBeNull();
  expect(r.verdict.duplicates, why).toEqual([]);
  expect(r.verdict.notDone, why).toEqual([]);
  expect(r.verdict.done, why).toBe(JOBS);
  expect(r.verdict.neverStarted, why).toEqual([]);
  expect(r.verdict.unfinishedRuns, why).toEqual([]);
  expect(r.verdict.strangers, why).toEqual([]);
  expect(r.leftoverPayloads, why).toEqual([]);
});
