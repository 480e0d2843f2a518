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
import { freshDatabase, serverVersion } from './lib/database.js';
import { Api } from './lib/http.js';
import { matchLoad, pacedMatchLoad, pilotTokens } from './lib/match-load.js';
import { seedWaitingJobs } from './lib/seed.js';
import { startServer } from './lib/server.js';
import { round1, summarize } from './lib/stats.js';

const SIZES = {
  smoke: { waiting: 10_000, queues: 500, pilots: 50, warmup: 300, matches: 3_000, pacedRate: 500, paced: 1_500 },
  full: { waiting: 100_000, queues: 500, pilots: 200, warmup: 2_000, matches: 30_000, pacedRate: 1_000, paced: 10_000 },
};

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const size = SIZES[opts.size];
  const dbUrl = await freshDatabase(opts.baseDbUrl, 'wms_bench_match');
  const seeded = await seedWaitingJobs(dbUrl, { jobs: size.waiting, queues: size.queues });
  console.error(`match: seeded ${seeded.waiting} waiting jobs in ${seeded.taskQueues} task queues`);
  const server = await startServer({ dbUrl, port: 18_082 });
  const api = new Api(server.url, size.pilots);
  try {
    const tokens = await pilotTokens(api, server.adminToken, size.pilots);
    await matchLoad(api, tokens, size.warmup);
    const load = await matchLoad(api, tokens, size.matches);
    const latency = summarize(load.latenciesMs);
    const matchesPerSecond = Math.round(load.matches / load.seconds);
    const paced = await pacedMatchLoad(api, tokens, size.pacedRate, size.paced);
    const pacedLatency = summarize(paced.latenciesMs);
    await api.close();
    await server.stop();
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
      matches: load.matches,
      seconds: round1(load.seconds),
      latencyMs: latency,
      offered: { ratePerSecond: size.pacedRate, requests: size.paced, matches: paced.matches, latencyMs: pacedLatency },
      bound: { name: 'bare SKIP LOCKED claim loop', ...bare },
      ratioToBound: Math.round((matchesPerSecond / bare.claimsPerSecond) * 1000) / 1000,
      postgres: await serverVersion(dbUrl),
    };
  } finally {
    await api.close().catch(() => undefined);
    await server.stop().catch(() => undefined);
  }
}
