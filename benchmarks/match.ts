/**
 * Scenario `match`: match requests over HTTP from this (load) process against the server in
 * another, with `waiting` jobs in >= 500 task queues and 200 concurrent pilots. In the same run,
 * on the same PostgreSQL, a bare SKIP LOCKED claim loop gives the physical bound.
 * Targets (issue "Central services"): >= 2,000 matches/s, p99 < 50 ms. Throughput and its
 * latency come from a closed loop (every pilot asks again as soon as it is answered, so latency
 * there is pilots / throughput); latency is also measured in an open loop at a fixed offered
 * rate, about half the throughput, which is what p99 means for pilots that do not all ask at once.
 */
import type { BenchOptions, BenchResult } from './run.js';
import { bareClaimLoop } from './lib/bare-claim.js';
import { serverVersion } from './lib/database.js';
import { matchLoad, pacedMatchLoad, withMatchServer } from './lib/match-load.js';
import { round1, summarize } from './lib/stats.js';

const SIZES = {
  smoke: { waiting: 10_000, queues: 500, pilots: 50, warmup: 300, matches: 3_000, pacedRate: 500, paced: 1_500 },
  full: { waiting: 100_000, queues: 500, pilots: 200, warmup: 2_000, matches: 30_000, pacedRate: 1_000, paced: 10_000 },
};

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const size = SIZES[opts.size];
  const { result, dbUrl, seeded } = await withMatchServer(
    { baseDbUrl: opts.baseDbUrl, dbName: 'wms_bench_match', port: 18_082, label: 'match', ...size },
    async ({ api, tokens }) => {
      await matchLoad(api, tokens, size.warmup);
      const closed = await matchLoad(api, tokens, size.matches);
      const paced = await pacedMatchLoad(api, tokens, size.pacedRate, size.paced);
      return { closed, paced };
    },
  );
  const { closed, paced } = result;
  const latency = summarize(closed.latenciesMs);
  const pacedLatency = summarize(paced.latenciesMs);
  const matchesPerSecond = Math.round(closed.matches / closed.seconds);
  const bare = await bareClaimLoop(dbUrl, {
    rows: size.waiting,
    queues: seeded.taskQueues,
    claims: size.matches,
    connections: 32,
  });
  return {
    scenario: 'match',
    size: opts.size,
    headline: { name: 'matches per second', value: matchesPerSecond, unit: 'matches/s' },
    target: {
      matchesPerSecond: 2_000,
      p99Ms: 50,
      met: { throughput: matchesPerSecond >= 2_000, p99AtOfferedRate: pacedLatency.p99 < 50, p99ClosedLoop: latency.p99 < 50 },
    },
    waitingJobs: seeded.waiting,
    taskQueues: seeded.taskQueues,
    pilots: size.pilots,
    matches: closed.matches,
    seconds: round1(closed.seconds),
    latencyMs: latency,
    offered: { ratePerSecond: size.pacedRate, requests: size.paced, matches: paced.matches, latencyMs: pacedLatency },
    bound: { name: 'bare SKIP LOCKED claim loop', ...bare },
    ratioToBound: Math.round((matchesPerSecond / bare.claimsPerSecond) * 1000) / 1000,
    postgres: await serverVersion(dbUrl),
  };
}
