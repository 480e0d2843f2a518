/**
 * Scenario `e2e`: trivial jobs (`/bin/true`, no sandboxes) through the local site with real
 * pilots, on PostgreSQL. Headline: the median overhead per job on a pilot = its time from
 * Matched to Done minus the payload's own wall clock (sandbox handling, status reports, the
 * wrapper's process start). Target (issue "Pilots that call home"): < 50 ms. Also: jobs/s from
 * submission to the last Done, with as many pilots as cores. The floor it is compared with: a
 * bare spawn of `/bin/true` from node, measured in the same run.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { BenchOptions, BenchResult } from './run.js';
import { summarize } from './lib/stats.js';
import { median, poll, withSystem } from './lib/system.js';

const SIZES = { smoke: { jobs: 100 }, full: { jobs: 1_000 } };

/**
 * The floor under any per-job overhead: starting `/bin/true` from node and seeing it exit, with
 * nothing else (measured in the same run, on the same loaded machine).
 */
async function bareSpawnMs(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await new Promise<void>((resolve, reject) =>
      spawn('/bin/true', { stdio: 'ignore' })
        .once('exit', () => resolve())
        .once('error', reject),
    );
    out.push(performance.now() - t);
  }
  return out;
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const { jobs } = SIZES[opts.size];
  const slots = availableParallelism();
  return withSystem(
    opts.baseDbUrl,
    'e2e',
    { localSlots: slots, stopAfterFailedMatches: 20, pollSeconds: 0.2, maxPollSeconds: 1 },
    async (s) => {
      const t0 = performance.now();
      const { jobIds } = await s.api<{ jobIds: number[] }>('POST', '/api/jobs', {
        jdl: `[ JobName = "e2e_%n"; Executable = "/bin/true"; Parameters = ${jobs}; ParameterStart = 1; ParameterStep = 1; CPUTime = 600; ]`,
      });
      await poll(
        `${jobs} jobs final`,
        async () => {
          const [r] = await s.query<{ n: string }>(`select count(*) as n from jobs where status in ('Done', 'Failed')`);
          process.stderr.write(`\r  ${r!.n}/${jobs} final`);
          return Number(r!.n) >= jobs;
        },
        3_600_000,
        500,
      );
      process.stderr.write('\n');
      const seconds = (performance.now() - t0) / 1000;
      const rows = await s.query<{ id: string; status: string; matched: string; done: string; wall: string | null }>(
        `select j.id, j.status,
              (select min(at) from job_history h where h.job_id = j.id and h.status = 'Matched') as matched,
              (select max(at) from job_history h where h.job_id = j.id and h.status in ('Done', 'Failed')) as done,
              (select value from job_parameters p where p.job_id = j.id and p.name = 'WallClockTime(s)') as wall
         from jobs j where j.id = any($1::bigint[])`,
        [jobIds],
      );
      const failed = rows.filter((r) => r.status !== 'Done').length;
      const onPilot = rows.map((r) => new Date(r.done).getTime() - new Date(r.matched).getTime());
      const overhead = rows.map((r, i) => onPilot[i]! - Number(r.wall ?? 0) * 1000);
      const pilots = await s.query<{ n: string }>(`select count(*) as n from pilots`);
      const o = summarize(overhead);
      const spawnFloor = summarize(await bareSpawnMs(200));
      return {
        scenario: 'e2e',
        size: opts.size,
        headline: { name: 'overhead per job on a pilot (median)', value: Math.round(o.p50 * 10) / 10, unit: 'ms' },
        target: { overheadMs: 50, met: o.p50 < 50 },
        jobs,
        failed,
        slots,
        pilots: Number(pilots[0]!.n),
        seconds: Math.round(seconds * 10) / 10,
        jobsPerSecond: Math.round((jobs / seconds) * 10) / 10,
        overheadMs: o,
        matchedToDoneMs: summarize(onPilot),
        payloadWallMsMedian: median(rows.map((r) => Number(r.wall ?? 0) * 1000)),
        bareSpawnMs: spawnFloor,
        overheadOverSpawnFloor: Math.round((o.p50 / spawnFloor.p50) * 10) / 10,
      };
    },
  );
}
