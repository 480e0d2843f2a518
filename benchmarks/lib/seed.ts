/**
 * Seeds waiting jobs for the match scenarios: `queues` template jobs go through the real
 * submission path (so task queues, keys and shares are the system's own), then one
 * `generate_series` statement copies each template until `jobs` rows wait.
 * Templates: 25 owners in two groups x (queues / 25) site lists, each list holding the
 * benchmark pilots' site BENCH.HOME.org and one other, so every queue is eligible.
 */
import { describeJobs } from '../../core/jdl/index.js';
import { DEFAULT_JOB_LIMITS } from '../../core/job-model.js';
import { openDb, recomputeSharePriorities, submitJobs } from '../../db/index.js';

export const PILOT_SITE = 'BENCH.HOME.org';
const OWNERS = 25;

export async function seedWaitingJobs(
  dbUrl: string,
  opts: { jobs: number; queues: number },
): Promise<{ taskQueues: number; waiting: number }> {
  const handle = await openDb(dbUrl, { poolSize: 4 });
  try {
    const perOwner = Math.ceil(opts.queues / OWNERS);
    const descriptions = [];
    for (let o = 0; o < OWNERS; o++) {
      const identity = { owner: `user${o}`, ownerGroup: o < OWNERS / 2 ? 'bench_a' : 'bench_b', vo: 'bench' };
      for (let s = 0; s < perOwner && descriptions.length < opts.queues; s++) {
        const jdl = `Executable = "run.sh"; CPUTime = 3600; Site = { "${PILOT_SITE}", "BENCH.S${s}.org" };`;
        descriptions.push(...describeJobs(jdl, identity, DEFAULT_JOB_LIMITS));
      }
    }
    await submitJobs(handle.db, descriptions, { source: 'bench' });
    const copies = Math.max(0, Math.ceil(opts.jobs / descriptions.length) - 1);
    await handle.query(
      `INSERT INTO jobs (owner, owner_group, vo, job_name, job_group, job_type, site, status, minor_status,
                         application_status, user_priority, cpu_time, task_queue_id, jdl)
       SELECT owner, owner_group, vo, job_name, job_group, job_type, site, status, minor_status,
              application_status, user_priority, cpu_time, task_queue_id, jdl
       FROM jobs CROSS JOIN generate_series(1, $1::int)`,
      [copies],
    );
    await recomputeSharePriorities(handle.db);
    await handle.query('ANALYZE');
    const [tq] = await handle.query<{ n: string }>('SELECT count(*) AS n FROM task_queues');
    const [w] = await handle.query<{ n: string }>(`SELECT count(*) AS n FROM jobs WHERE status = 'Waiting'`);
    return { taskQueues: Number(tq?.n), waiting: Number(w?.n) };
  } finally {
    await handle.close();
  }
}
