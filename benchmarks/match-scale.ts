/**
 * Scenario `match-scale`: the match scenario at 10^4, 10^5 and 10^6 waiting jobs (full; smoke
 * stops at 10^5). The same number of matches at each size; matches/s must not fall by more than
 * 20 % from the smallest to the largest.
 */
import type { BenchOptions, BenchResult } from './run.js';
import { serverVersion } from './lib/database.js';
import { matchLoad, withMatchServer } from './lib/match-load.js';
import { summarize } from './lib/stats.js';

const SIZES = {
  smoke: { levels: [10_000, 100_000], queues: 500, pilots: 50, warmup: 300, matches: 3_000 },
  full: { levels: [10_000, 100_000, 1_000_000], queues: 500, pilots: 200, warmup: 1_000, matches: 8_000 },
};

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const size = SIZES[opts.size];
  const levels: { waiting: number; taskQueues: number; matchesPerSecond: number; p50Ms: number; p99Ms: number }[] = [];
  let dbUrl = '';
  for (const waiting of size.levels) {
    const run = await withMatchServer(
      { baseDbUrl: opts.baseDbUrl, dbName: 'wms_bench_match_scale', port: 18_083, label: 'match-scale', waiting, ...size },
      async ({ api, tokens }) => {
        await matchLoad(api, tokens, size.warmup);
        return matchLoad(api, tokens, size.matches);
      },
    );
    dbUrl = run.dbUrl;
    const latency = summarize(run.result.latenciesMs);
    levels.push({
      waiting: run.seeded.waiting,
      taskQueues: run.seeded.taskQueues,
      matchesPerSecond: Math.round(run.result.matches / run.result.seconds),
      p50Ms: latency.p50,
      p99Ms: latency.p99,
    });
    console.error(`match-scale: ${JSON.stringify(levels.at(-1))}`);
  }
  const first = levels[0]!.matchesPerSecond;
  const last = levels.at(-1)!.matchesPerSecond;
  const drop = Math.round(((first - last) / first) * 1000) / 10;
  return {
    scenario: 'match-scale',
    size: opts.size,
    headline: { name: 'fall in matches/s from smallest to largest', value: drop, unit: '%' },
    target: { maxDropPercent: 20, met: drop <= 20 },
    levels,
    pilots: size.pilots,
    matchesPerLevel: size.matches,
    postgres: await serverVersion(dbUrl),
  };
}
