/**
 * Claim races on real PostgreSQL: many concurrent matchers, every job matched exactly once.
 */
import { expect, it } from 'vitest';
import { matchJob, submitJobs } from '../../db/index.js';
import { describePg } from '../helpers/db.js';
import { makeJob, makeResource } from './fixtures.js';

const JOBS = 10_000;
const CALLERS = 200;
const POOL = 32;

describePg('matchJob race', (ctx) => {
  it(`${CALLERS} concurrent matchers over ${JOBS} jobs: each job matched exactly once`, async () => {
    // 20 task queues (owners x priorities), so callers also fall back between queues.
    await submitJobs(
      ctx.handle,
      Array.from({ length: JOBS }, (_, i) => makeJob({ requirements: { owner: `u${i % 10}`, priority: 1 + (i % 2) } })),
    );
    const pool = await ctx.open({ poolSize: POOL });
    const resource = makeResource();
    const matched: number[] = [];
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CALLERS }, async (_, caller) => {
        for (;;) {
          const m = await matchJob(pool, resource, { pilotId: caller + 1 });
          if (!m) return;
          matched.push(m.id);
        }
      }),
    );
    const s = (performance.now() - t0) / 1000;
    console.log(
      `[db] race: ${matched.length} matches by ${CALLERS} callers on ${POOL} connections in ${s.toFixed(2)} s (${Math.round(matched.length / s)} matches/s)`,
    );
    expect(matched).toHaveLength(JOBS);
    expect(new Set(matched).size).toBe(JOBS);
    const [c] = await ctx.handle.query<{ waiting: number; matched: number; history: number; doubles: number }>(
      `select (select count(*) from jobs where status = 'Waiting') as waiting,
              (select count(*) from jobs where status = 'Matched') as matched,
              (select count(*) from job_history where status = 'Matched') as history,
              (select count(*) from (select job_id from job_history where status = 'Matched'
                                      group by job_id having count(*) <> 1) d) as doubles`,
    );
    expect(c).toEqual({ waiting: 0, matched: JOBS, history: JOBS, doubles: 0 });
  });
});
