/**
 * Scenario `jobs-list`: the dashboard's Jobs page at 100,000 jobs (issue 5: "stays responsive
 * with 100,000 jobs"). Seeds 20 template jobs through the real submission path, then one
 * `generate_series` INSERT copies them with statuses, sites, owners, groups, names and
 * submission times spread over the set; ANALYZE. The server runs in its own process.
 *
 * Queries, each timed `samples` times after a warm-up, one request at a time:
 * first page, a deep offset (90 % down), status filter, site filter, job-group filter, search
 * by name, as admin (every job visible) and as one user (owner scope); and `/api/jobs/summary`
 * (counts by status) unfiltered and with a site filter; the last hour of submissions, the
 * Jobs page's combined filters (site, group and a day) for the list and for its counts, and
 * `/api/usage` (waiting and running per group and user; the accounting table is empty here).
 * Headline: the worst p99 of them.
 */
import { cpus } from 'node:os';
import type { BenchOptions, BenchResult } from './run.js';
import { JOB_STATES } from '../core/job-states.js';
import { describeJobs } from '../core/jdl/index.js';
import { DEFAULT_JOB_LIMITS } from '../core/job-model.js';
import { openDb, submitJobs } from '../db/index.js';
import { freshDatabase, serverVersion } from './lib/database.js';
import { Api, issueToken } from './lib/http.js';
import { startServer } from './lib/server.js';
import { summarize } from './lib/stats.js';

const SIZES = {
  smoke: { jobs: 10_000, samples: 30 },
  full: { jobs: 100_000, samples: 100 },
};
const OWNERS = 25;
const SITES = 20;
const GROUPS = 50;

/** `jobs` rows with spread-out columns; returns how many rows there are. */
async function seed(dbUrl: string, jobs: number): Promise<number> {
  const handle = await openDb(dbUrl, { poolSize: 2 });
  try {
    const identity = { owner: 'user0', ownerGroup: 'bench_user', vo: 'bench' };
    const templates = describeJobs(
      '[ Executable = "run.sh"; CPUTime = 3600; Parameters = 20; ParameterStart = 0; ParameterStep = 1; Arguments = "%s"; ]',
      identity,
      DEFAULT_JOB_LIMITS,
    );
    await submitJobs(handle.db, templates, { source: 'bench' });
    // One statement: g numbers the copies; every column that the filters touch varies with g.
    await handle.query(
      `INSERT INTO jobs (owner, owner_group, vo, job_name, job_group, job_type, site, status, minor_status,
                         application_status, user_priority, cpu_time, task_queue_id, jdl, submitted_at, last_update_at)
       SELECT 'user' || (g % ${OWNERS}), owner_group, vo, 'run_' || g, 'group' || (g % ${GROUPS}), job_type,
              'BENCH.S' || (g % ${SITES}) || '.org',
              ($2::text[])[1 + (g % array_length($2::text[], 1))]::job_status,
              minor_status, application_status, user_priority, cpu_time, task_queue_id, jdl,
              now() - make_interval(secs => ($1::int - g)), now() - make_interval(secs => ($1::int - g))
       FROM (SELECT * FROM jobs LIMIT 1) t CROSS JOIN generate_series(1, $1::int - ${templates.length}) g`,
      [jobs, [...JOB_STATES]],
    );
    await handle.query('ANALYZE');
    const [n] = await handle.query<{ n: string }>('SELECT count(*) AS n FROM jobs');
    return Number(n?.n);
  } finally {
    await handle.close();
  }
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const size = SIZES[opts.size];
  const dbUrl = await freshDatabase(opts.baseDbUrl, 'wms_bench_jobs_list');
  const t0 = performance.now();
  const rows = await seed(dbUrl, size.jobs);
  const seedSeconds = Math.round((performance.now() - t0) / 100) / 10;
  console.error(`jobs-list: seeded ${rows} jobs in ${seedSeconds} s`);
  const server = await startServer({ dbUrl, port: 18_087 });
  const api = new Api(server.url, 2);
  try {
    const admin = await issueToken(api, server.adminToken, { user: 'root', vo: 'bench', group: 'bench_admin', role: 'admin' });
    const user = await issueToken(api, server.adminToken, { user: 'user7', vo: 'bench', group: 'bench_user' });
    const deep = Math.floor(rows * 0.9);
    const hourAgo = encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString());
    const dayAgo = encodeURIComponent(new Date(Date.now() - 86_400_000).toISOString());
    const combined = `site=BENCH.S3.org&group=group3&since=${dayAgo}`;
    const queries: Record<string, [string, string]> = {
      firstPage: ['/api/jobs?limit=50', admin],
      deepOffset: [`/api/jobs?limit=50&offset=${deep}`, admin],
      statusFilter: ['/api/jobs?limit=50&status=Running', admin],
      twoStatuses: ['/api/jobs?limit=50&status=Done&status=Failed', admin],
      siteFilter: ['/api/jobs?limit=50&site=BENCH.S3.org', admin],
      groupFilter: ['/api/jobs?limit=50&group=group7', admin],
      search: ['/api/jobs?limit=50&search=run_4242', admin],
      userFirstPage: ['/api/jobs?limit=50', user],
      userStatusFilter: ['/api/jobs?limit=50&status=Waiting', user],
      summary: ['/api/jobs/summary', admin],
      summarySite: ['/api/jobs/summary?site=BENCH.S3.org', admin],
      userSummary: ['/api/jobs/summary', user],
      lastHour: [`/api/jobs?limit=50&since=${hourAgo}`, admin],
      combinedFilters: [`/api/jobs?limit=50&${combined}`, admin],
      summaryCombined: [`/api/jobs/summary?${combined}`, admin],
      usage: ['/api/usage', admin],
      userUsage: ['/api/usage', user],
    };
    const figures: Record<string, { p50: number; p99: number; total: number }> = {};
    for (const [name, [path, token]] of Object.entries(queries)) {
      for (let i = 0; i < 5; i++) await api.ok('GET', path, token, undefined); // warm-up
      const samples: number[] = [];
      let total = 0;
      for (let i = 0; i < size.samples; i++) {
        const t = performance.now();
        const body = await api.ok<{ total?: number; users?: unknown[] }>('GET', path, token, undefined);
        samples.push(performance.now() - t);
        total = body.total ?? body.users?.length ?? 0;
      }
      const s = summarize(samples);
      figures[name] = { p50: s.p50, p99: s.p99, total };
      console.error(`jobs-list: ${name} p50 ${s.p50} ms p99 ${s.p99} ms (${total} matching)`);
    }
    const worst = Math.max(...Object.values(figures).map((f) => f.p99));
    return {
      scenario: 'jobs-list',
      size: opts.size,
      headline: { name: 'worst p99 of the jobs-list queries', value: worst, unit: 'ms' },
      jobs: rows,
      samplesPerQuery: size.samples,
      seedSeconds,
      queries: figures,
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown' },
      postgres: await serverVersion(dbUrl),
    };
  } finally {
    await api.close();
    await server.stop();
  }
}
