/**
 * Scenario `submit`: bulk parametric submission over HTTP. Each request carries one parametric
 * JDL of `perRequest` jobs; `concurrency` requests are in flight at once. Headline: jobs/s.
 * Target (issue "Central services"): >= 10,000 jobs/s for 100,000 jobs.
 */
import type { BenchOptions, BenchResult } from './run.js';
import { freshDatabase, serverVersion } from './lib/database.js';
import { Api, issueToken } from './lib/http.js';
import { startServer } from './lib/server.js';
import { round1, summarize } from './lib/stats.js';

const SIZES = {
  smoke: { jobs: 10_000, perRequest: 2_000, concurrency: 2 },
  full: { jobs: 100_000, perRequest: 10_000, concurrency: 2 },
};

const jdl = (n: number) => `[
  Executable = "run.sh";
  Arguments = "--event %s --job %j";
  JobGroup = "bench";
  Parameters = ${n};
  ParameterStart = 0;
  ParameterStep = 1;
  OutputSandbox = { "std.out", "std.err" };
  CPUTime = 3600;
]`;

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const size = SIZES[opts.size];
  const dbUrl = await freshDatabase(opts.baseDbUrl, 'wms_bench_submit');
  const server = await startServer({ dbUrl, port: 18_081 });
  const api = new Api(server.url, size.concurrency * 2);
  try {
    const token = await issueToken(api, server.adminToken, { user: 'alice', vo: 'bench', group: 'bench_user' });
    // Warm-up: one small submission so JIT and pools are ready.
    await api.ok('POST', '/api/jobs', token, { jdl: jdl(100) }, 201);
    const requests = Math.ceil(size.jobs / size.perRequest);
    const latencies: number[] = [];
    let next = 0;
    let submitted = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: size.concurrency }, async () => {
        while (next < requests) {
          next++;
          const t = performance.now();
          const r = await api.ok<{ jobIds: number[] }>('POST', '/api/jobs', token, { jdl: jdl(size.perRequest) }, 201);
          latencies.push(performance.now() - t);
          submitted += r.jobIds.length;
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    const jobsPerSecond = Math.round(submitted / seconds);
    return {
      scenario: 'submit',
      size: opts.size,
      headline: { name: 'jobs per second', value: jobsPerSecond, unit: 'jobs/s' },
      target: { jobsPerSecond: 10_000, met: jobsPerSecond >= 10_000 },
      jobs: submitted,
      seconds: round1(seconds),
      jobsPerRequest: size.perRequest,
      concurrency: size.concurrency,
      requestLatencyMs: summarize(latencies),
      postgres: await serverVersion(dbUrl),
    };
  } finally {
    await api.close();
    await server.stop();
  }
}
