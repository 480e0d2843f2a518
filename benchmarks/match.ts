/**
 * Scenario `match`: match requests over HTTP from this (load) process against the server in
 * another, with `waiting` jobs in >= 500 task queues and 200 concurrent pilots. In the same run,
 * on the same PostgreSQL, a bare SKIP LOCKED claim loop gives the physical bound.
 * Targets (issue "Central services"): >= 2,000 matches/s, p99 < 50 ms; issue 14: >= 2,500/s
 * on one replica (median of three runs), ratio to the bound >= 0.5. Throughput and its
 * latency come from a closed loop (every pilot asks again as soon as it is answered, so latency
 * there is pilots / throughput); latency is also measured in an open loop at a fixed offered
 * rate, about half the throughput, which is what p99 means for pilots that do not all ask at once.
 *
 * A second phase (issue 14) runs TWO replicas (`wms server start --no-agents`, each its own
 * process) on a second fresh database of the same size: the same closed loop through HAProxy
 * (tests/helpers/haproxy.ts: round robin, keep-alive towards the replicas as in
 * deploy/haproxy/haproxy.cfg, health checks allowed 30 s), then with the
 * pilots split evenly between the two replicas directly, which tells HAProxy's cost apart. Both
 * are compared with the same bound.
 */
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { startHaproxy, type Haproxy } from '../tests/helpers/haproxy.js';
import type { BenchOptions, BenchResult } from './run.js';
import { bareClaimLoop } from './lib/bare-claim.js';
import { serverVersion } from './lib/database.js';
import { Api } from './lib/http.js';
import { matchLoad, pacedMatchLoad, withMatchServer, type MatchLoadResult, type MatchServer } from './lib/match-load.js';
import { round1, summarize } from './lib/stats.js';

const SIZES = {
  smoke: { waiting: 10_000, queues: 500, pilots: 50, warmup: 300, matches: 3_000, pacedRate: 500, paced: 1_500 },
  full: { waiting: 100_000, queues: 500, pilots: 200, warmup: 2_000, matches: 30_000, pacedRate: 1_000, paced: 10_000 },
};
type Size = (typeof SIZES)['full'];

/** Throughput, latency and ratio to the bound of one closed loop. */
function closedFigures(run: MatchLoadResult, boundPerSecond: number) {
  const matchesPerSecond = Math.round(run.matches / run.seconds);
  return {
    matchesPerSecond,
    matches: run.matches,
    unavailable: run.unavailable,
    seconds: round1(run.seconds),
    ratioToBound: Math.round((matchesPerSecond / boundPerSecond) * 1000) / 1000,
    latencyMs: summarize(run.latenciesMs),
  };
}

/** Two replicas: the closed loop through HAProxy, then split between them directly. */
async function twoReplicaLoads(
  size: Size,
  { servers, tokens }: MatchServer,
): Promise<{ proxied: MatchLoadResult; direct: MatchLoadResult }> {
  // Saturated replicas answer their health checks late (the closed loop queues every request).
  const backends = servers.map((s, i) => ({ name: `r${i + 1}`, url: s.url }));
  const proxy = await startHaproxy({ backends, checkTimeoutMs: 30_000, keepAlive: true });
  await everyReplicaUp(proxy);
  const viaProxy = new Api(proxy.url, size.pilots);
  const direct = servers.map((s) => new Api(s.url, Math.ceil(size.pilots / servers.length)));
  try {
    await matchLoad(viaProxy, tokens, size.warmup);
    const proxied = await matchLoad(viaProxy, tokens, size.matches);
    await matchLoad(direct, tokens, size.warmup);
    return { proxied, direct: await matchLoad(direct, tokens, size.matches) };
  } finally {
    await Promise.all([viaProxy.close(), ...direct.map((a) => a.close())]);
    await proxy.stop();
  }
}

/** Waits until HAProxy's health checks see every replica up (it starts them as not yet checked). */
async function everyReplicaUp(proxy: Haproxy): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const states = await proxy.servers();
    if (Object.values(states).length > 0 && Object.values(states).every((s) => s === 'UP')) return;
    if (Date.now() > deadline) throw new Error(`haproxy: replicas not up after 30 s: ${JSON.stringify(states)}`);
    await sleep(200);
  }
}

function haproxyVersion(): string {
  const out = spawnSync('haproxy', ['-v'], { encoding: 'utf8' }).stdout ?? '';
  return /version (\S+)/i.exec(out)?.[1] ?? 'unknown';
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const size = SIZES[opts.size];
  const common = { baseDbUrl: opts.baseDbUrl, ...size };
  const { result, dbUrl, seeded } = await withMatchServer(
    { ...common, dbName: 'wms_bench_match', port: 18_082, label: 'match' },
    async ({ api, tokens }) => {
      await matchLoad(api, tokens, size.warmup);
      const closed = await matchLoad(api, tokens, size.matches);
      const paced = await pacedMatchLoad(api, tokens, size.pacedRate, size.paced);
      return { closed, paced };
    },
  );
  const { closed, paced } = result;
  const pacedLatency = summarize(paced.latenciesMs);
  const bare = await bareClaimLoop(dbUrl, {
    rows: size.waiting,
    queues: seeded.taskQueues,
    claims: size.matches,
    connections: 32,
  });
  const one = closedFigures(closed, bare.claimsPerSecond);
  console.error(`match: one replica ${one.matchesPerSecond}/s, bound ${bare.claimsPerSecond}/s; now two replicas`);
  const two = await withMatchServer(
    { ...common, dbName: 'wms_bench_match_2', port: 18_083, label: 'match, two replicas', replicas: 2 },
    (s) => twoReplicaLoads(size, s),
  );
  return {
    scenario: 'match',
    size: opts.size,
    headline: { name: 'matches per second', value: one.matchesPerSecond, unit: 'matches/s' },
    target: {
      matchesPerSecond: 2_000,
      p99Ms: 50,
      met: {
        throughput: one.matchesPerSecond >= 2_000,
        p99AtOfferedRate: pacedLatency.p99 < 50,
        p99ClosedLoop: one.latencyMs.p99 < 50,
        issue14: one.matchesPerSecond >= 2_500 && one.ratioToBound >= 0.5,
      },
    },
    waitingJobs: seeded.waiting,
    taskQueues: seeded.taskQueues,
    pilots: size.pilots,
    matches: one.matches,
    unavailable: one.unavailable,
    seconds: one.seconds,
    latencyMs: one.latencyMs,
    offered: { ratePerSecond: size.pacedRate, requests: size.paced, matches: paced.matches, latencyMs: pacedLatency },
    bound: { name: 'bare SKIP LOCKED claim loop', ...bare },
    ratioToBound: one.ratioToBound,
    twoReplicas: {
      waitingJobs: two.seeded.waiting,
      viaHaproxy: { haproxy: haproxyVersion(), ...closedFigures(two.result.proxied, bare.claimsPerSecond) },
      direct: closedFigures(two.result.direct, bare.claimsPerSecond),
    },
    postgres: await serverVersion(dbUrl),
  };
}
