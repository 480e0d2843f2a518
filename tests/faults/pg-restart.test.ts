/**
 * Issue 10, "No job lost, none run twice": the private PostgreSQL cluster under the server is
 * restarted three times while 300 short jobs run (`pg_ctl restart -m fast` at a fifth and at two
 * fifths of the jobs final, `-m immediate` at three fifths), the server staying up. Every job must
 * end Done, its payload having run exactly once (the ledger the payloads write says so), and no
 * payload may be left running. The harness is tests/helpers/faults.ts.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { badJobs, describeResult, FaultSystem, runFaultScenario } from '../helpers/faults.js';

const JOBS = Number(process.env['FAULTS_JOBS'] ?? 300);
let sys: FaultSystem | null = null;

beforeAll(async () => {
  sys = await FaultSystem.start({ name: 'pg_restart', slots: 6, payloadSeconds: 1, log: (l) => console.log(`[pg-restart] ${l}`) });
});
afterAll(async () => {
  await sys?.destroy();
});

it(`PostgreSQL restarted -m fast twice and -m immediate once mid-run: ${JOBS} jobs, each Done exactly once, no payload left`, async () => {
  const r = await runFaultScenario(sys!, 'pg-restart', { jobs: JOBS });
  const bad = badJobs(r);
  const why = `${describeResult(r)}${bad.length ? `\n${await sys!.diagnose(bad)}` : ''}`;
  console.log(why);
  expect(r.faults.map((f) => f.kind)).toEqual(['postgres restart -m fast', 'postgres restart -m fast', 'postgres restart -m immediate']);
  for (const f of r.faults) {
    expect(f.finalBefore, 'each fault came mid-run').toBeLessThan(JOBS);
    expect(f.inFlightBefore, 'jobs were on pilots when each fault came').toBeGreaterThan(0);
  }
  expect(r.error, why).toBeNull();
  expect(r.verdict.duplicates, why).toEqual([]);
  expect(r.verdict.notDone, why).toEqual([]);
  expect(r.verdict.done, why).toBe(JOBS);
  expect(r.verdict.neverStarted, why).toEqual([]);
  expect(r.verdict.unfinishedRuns, why).toEqual([]);
  expect(r.verdict.strangers, why).toEqual([]);
  expect(r.leftoverPayloads, why).toEqual([]);
});
