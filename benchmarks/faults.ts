/**
 * Scenario `faults` (issue 10, "No job lost, none run twice"): the three faults of
 * `tests/faults/` with the same harness (tests/helpers/faults.ts), each on a fresh private
 * PostgreSQL cluster (initdb on a free port; `--db` is not used: the faults restart the
 * database) and the server as a child process from dist/ with local pilots:
 * - `server-kill`: SIGKILL of the server a third of the way through, and a restart;
 * - `pg-restart`: `pg_ctl restart -m fast` at 20 % and 40 % of the jobs final, `-m immediate` at 60 %;
 * - `graceful-restart`: SIGTERM a third of the way through, the wait for the exit, a restart.
 *
 * Per fault: seconds from the fault to the API answering again and to all jobs final, the jobs
 * Done, the jobs whose payload ran twice (the payloads' ledger), the payloads left running. The
 * headline is the longest recovery (fault to all jobs final) of the run. The floor to compare
 * with: the same jobs without a fault, on the same machine in the same run (`noFaultSeconds`).
 */
import { cpus, totalmem } from 'node:os';
import type { BenchOptions, BenchResult } from './run.js';
import {
  badJobs,
  describeResult,
  FaultSystem,
  runFaultScenario,
  type FaultScenario,
  type ScenarioResult,
} from '../tests/helpers/faults.js';

const SIZES = { smoke: { jobs: 60 }, full: { jobs: 300 } };
const SLOTS = 6;
const PAYLOAD_SECONDS = 1;
const SCENARIOS: FaultScenario[] = ['server-kill', 'pg-restart', 'graceful-restart'];

async function once(
  name: string,
  fn: (sys: FaultSystem) => Promise<ScenarioResult | number>,
): Promise<{ result: ScenarioResult | number; pg: string; diagnosis: string }> {
  const sys = await FaultSystem.start({
    name,
    slots: SLOTS,
    payloadSeconds: PAYLOAD_SECONDS,
    log: (l) => process.stderr.write(`[${name}] ${l}\n`),
  });
  try {
    const result = await fn(sys);
    const [v] = await sys.query<{ v: string }>("select current_setting('server_version') as v");
    const bad = typeof result === 'number' ? [] : badJobs(result);
    return { result, pg: v?.v ?? '?', diagnosis: bad.length ? await sys.diagnose(bad, 3) : '' };
  } finally {
    await sys.destroy();
  }
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const { jobs } = SIZES[opts.size];
  // The same jobs without a fault: what a recovery is compared with.
  const base = await once('nofault', async (sys) => {
    await sys.submit(jobs);
    await sys.waitAllFinal(600_000);
    await sys.stopServer(60_000);
    return (sys.allFinalAt! - sys.submittedAt) / 1000;
  });
  const noFaultSeconds = Math.round((base.result as number) * 10) / 10;
  const results: ScenarioResult[] = [];
  for (const scenario of SCENARIOS) {
    const { result, diagnosis } = await once(scenario.replace(/-/g, '_'), (sys) =>
      runFaultScenario(sys, scenario, { jobs, finalTimeoutMs: 600_000 }),
    );
    const r = result as ScenarioResult;
    process.stderr.write(`${describeResult(r)}\n${diagnosis}${diagnosis ? '\n' : ''}`);
    results.push(r);
  }
  const recoveries = results.flatMap((r) => r.faults.map((f) => f.recoverySeconds ?? Number.POSITIVE_INFINITY));
  const passed = results.every(
    (r) =>
      r.error === null &&
      r.verdict.done === r.jobs &&
      r.verdict.duplicates.length === 0 &&
      r.verdict.neverStarted.length === 0 &&
      r.verdict.unfinishedRuns.length === 0 &&
      r.leftoverPayloads.length === 0,
  );
  const worst = Math.max(...recoveries);
  return {
    scenario: 'faults',
    size: opts.size,
    headline: { name: 'longest recovery (fault to all jobs final)', value: Number.isFinite(worst) ? worst : -1, unit: 's' },
    passed,
    jobs,
    slots: SLOTS,
    payloadSeconds: PAYLOAD_SECONDS,
    noFaultSeconds,
    faults: Object.fromEntries(
      results.map((r) => [
        r.scenario,
        {
          done: r.verdict.done,
          byStatus: r.verdict.byStatus,
          duplicates: r.verdict.duplicates.length,
          doneWithoutRun: r.verdict.neverStarted.length,
          runsCutShort: r.verdict.unfinishedRuns.length,
          payloadsLeft: r.leftoverPayloads.length,
          pilotsLeft: r.leftoverPilots.length,
          totalSeconds: r.totalSeconds,
          extraSecondsOverNoFault: Math.round((r.totalSeconds - noFaultSeconds) * 10) / 10,
          error: r.error,
          faults: r.faults.map((f) => ({
            kind: f.kind,
            finalBefore: f.finalBefore,
            inFlightBefore: f.inFlightBefore,
            apiBackSeconds: f.apiBackSeconds,
            recoverySeconds: f.recoverySeconds,
            ...(f.exitMs !== undefined ? { exitSeconds: Math.round(f.exitMs / 100) / 10 } : {}),
          })),
        },
      ]),
    ),
    machine: {
      cpu: cpus()[0]?.model ?? '?',
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 1024 ** 3),
      node: process.version,
      postgres: base.pg,
    },
  };
}
