/**
 * Scenario `latency`: submit -> Running with idle pilots waiting. Pilots are started with one
 * warm-up job and then sit idle (long back-off); each job is submitted alone and followed to
 * Done before the next, after a random pause. Latency = the Running history row's time minus the
 * job's submission time (both written by the server). Headline: p50. Target (issue "Pilots that
 * call home"): < 100 ms. An idle pilot hears of new work over its websocket.
 */
import { availableParallelism } from 'node:os';
import type { BenchOptions, BenchResult } from './run.js';
import { summarize } from './lib/stats.js';
import { poll, withSystem } from './lib/system.js';

const SIZES = { smoke: { jobs: 20 }, full: { jobs: 100 } };

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const { jobs } = SIZES[opts.size];
  const slots = Math.min(2, availableParallelism());
  // Long back-off: without the websocket nudge an idle pilot would wait up to 30 s.
  return withSystem(
    opts.baseDbUrl,
    'latency',
    { localSlots: slots, stopAfterFailedMatches: 1000, pollSeconds: 5, maxPollSeconds: 30 },
    async (s) => {
      const submit = async () =>
        (await s.api<{ jobIds: number[] }>('POST', '/api/jobs', { jdl: '[ Executable = "/bin/true"; CPUTime = 600; ]' })).jobIds[0]!;
      const done = (id: number) =>
        poll(
          `job ${id} done`,
          async () => (await s.query<{ status: string }>(`select status from jobs where id = $1`, [id]))[0]?.status === 'Done',
          120_000,
          20,
        );
      // Warm-up: pilots start, run one job each, then idle.
      const warm = await Promise.all(Array.from({ length: slots }, submit));
      for (const id of warm) await done(id);
      await poll(
        'idle pilots',
        async () => {
          const [r] = await s.query<{ n: string }>(`select count(*) as n from pilots where status = 'Running'`);
          return Number(r!.n) >= slots;
        },
        60_000,
      );
      await new Promise((r) => setTimeout(r, 2000)); // let them enter their back-off
      const latencies: number[] = [];
      for (let i = 0; i < jobs; i++) {
        const id = await submit();
        await done(id);
        const [r] = await s.query<{ ms: string }>(
          `select extract(epoch from (h.at - j.submitted_at)) * 1000 as ms
           from jobs j join job_history h on h.job_id = j.id and h.status = 'Running'
          where j.id = $1 order by h.id limit 1`,
          [id],
        );
        latencies.push(Number(r!.ms));
        process.stderr.write(`\r  ${i + 1}/${jobs}`);
        await new Promise((res) => setTimeout(res, 200 + Math.random() * 300));
      }
      process.stderr.write('\n');
      const l = summarize(latencies);
      return {
        scenario: 'latency',
        size: opts.size,
        headline: { name: 'submit to Running (p50)', value: Math.round(l.p50 * 10) / 10, unit: 'ms' },
        target: { p50Ms: 100, met: l.p50 < 100 },
        idlePilots: slots,
        latencyMs: l,
      };
    },
  );
}
