import { beforeEach, expect, it } from 'vitest';
import { getJobHistory, getJobs, getTaskQueues, recordSandbox, submitJobs } from '../../db/index.js';
import { describeDb, describePg } from '../helpers/db.js';
import { makeJob, makeJobs } from './fixtures.js';

describeDb('submitJobs', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('stores jobs as Waiting, replaces %j, and answers ids in input order', async () => {
    const ids = await submitJobs(ctx.handle, [makeJob({ jobName: 'a' }), makeJob({ jobName: 'b' }), makeJob({ jobName: 'c' })]);
    expect(ids).toHaveLength(3);
    expect([...ids].sort((x, y) => x - y)).toEqual(ids);
    const rows = await getJobs(ctx.handle, ids);
    expect(rows.map((r) => r.jobName)).toEqual(['a', 'b', 'c']);
    for (const r of rows) {
      expect(r.status).toBe('Waiting');
      expect(r.minorStatus).toBe('Pilot Agent Submission');
      expect(r.applicationStatus).toBe('Unknown');
      expect(r.jdl).toContain(`Arguments = "job ${r.id}"`);
      expect(r.jdl).toContain(`"${r.id}.log"`);
      expect(r.jdl).not.toContain('%j');
      expect(r.owner).toBe('alice');
      expect(r.ownerGroup).toBe('users');
      expect(r.vo).toBe('vo1');
      expect(r.site).toBe('ANY');
      expect(r.bulkId).toBe(ids[0]);
      expect(r.submittedAt).toBeInstanceOf(Date);
    }
  });

  it('writes two history rows per job: Received then Waiting', async () => {
    const [id] = await submitJobs(ctx.handle, [makeJob()], { source: 'JobManager:alice' });
    const h = await getJobHistory(ctx.handle, id!);
    expect(h.map((x) => [x.status, x.minorStatus, x.source])).toEqual([
      ['Received', 'Job accepted', 'JobManager:alice'],
      ['Waiting', 'Pilot Agent Submission', 'JobScheduling'],
    ]);
    expect(h[0]!.at).toBeInstanceOf(Date);
  });

  it('a single job has no bulk id; parametric jobs keep their parameter number', async () => {
    const [single] = await submitJobs(ctx.handle, [makeJob()]);
    const para = await submitJobs(
      ctx.handle,
      [0, 1, 2].map((n) => makeJob({ parametric: { number: n, values: { x: n } } })),
    );
    const [s] = await getJobs(ctx.handle, [single!]);
    expect(s!.bulkId).toBeNull();
    expect(s!.parameterNumber).toBeNull();
    const rows = await getJobs(ctx.handle, para);
    expect(rows.map((r) => r.parameterNumber)).toEqual([0, 1, 2]);
    expect(rows.map((r) => r.bulkId)).toEqual([para[0], para[0], para[0]]);
  });

  it('identical requirements share a task queue; different ones get their own', async () => {
    const ids = await submitJobs(ctx.handle, [
      makeJob(),
      makeJob({ requirements: { tags: ['b', 'a'] } }),
      makeJob(),
      makeJob({ requirements: { tags: ['a', 'b', 'a'] } }), // same set as above
      makeJob({ requirements: { processors: 4 } }),
      makeJob({ requirements: { owner: 'bob' } }),
    ]);
    const rows = await getJobs(ctx.handle, ids);
    const tq = rows.map((r) => r.taskQueueId);
    expect(tq[0]).toBe(tq[2]);
    expect(tq[1]).toBe(tq[3]);
    expect(new Set(tq).size).toBe(4);
    // A later submission files into the existing queue.
    const [later] = await submitJobs(ctx.handle, [makeJob()]);
    const [l] = await getJobs(ctx.handle, [later!]);
    expect(l!.taskQueueId).toBe(tq[0]);
    const queues = await getTaskQueues(ctx.handle, null);
    expect(queues).toHaveLength(4);
    const first = queues.find((q) => q.id === tq[0])!;
    expect(first.waitingJobs).toBe(3);
    expect(queues.find((q) => q.id === tq[1])!.tags).toEqual(['a', 'b']);
  });

  it('stores all jobs or none (a failing row rolls back the whole submission)', async () => {
    const jobs = makeJobs(100);
    jobs[57] = makeJob({ cpuTime: 3_000_000_000 }); // out of the integer range of cpu_time
    await expect(submitJobs(ctx.handle, jobs)).rejects.toThrow();
    const [{ n }] = (await ctx.handle.query<{ n: number }>('select count(*) as n from jobs')) as [{ n: number }];
    expect(n).toBe(0);
    const [{ h }] = (await ctx.handle.query<{ h: number }>('select count(*) as h from job_history')) as [{ h: number }];
    expect(h).toBe(0);
    expect(await getTaskQueues(ctx.handle, null)).toHaveLength(0);
  });

  it('links input sandboxes, and a missing sandbox stores nothing', async () => {
    const sha = 'a'.repeat(64);
    await recordSandbox(ctx.handle, { sha256: sha, size: 10, owner: 'alice', ownerGroup: 'users', vo: 'vo1' });
    const ids = await submitJobs(ctx.handle, makeJobs(2), { inputSandboxes: [[sha], [sha, sha]] });
    const links = await ctx.handle.query<{ job_id: number; kind: string }>('select job_id, kind from job_sandboxes order by job_id');
    expect(links).toEqual(ids.map((id) => ({ job_id: id, kind: 'Input' })));
    await expect(submitJobs(ctx.handle, makeJobs(3), { inputSandboxes: [[], ['b'.repeat(64)], []] })).rejects.toThrow();
    const [{ n }] = (await ctx.handle.query<{ n: number }>('select count(*) as n from jobs')) as [{ n: number }];
    expect(n).toBe(2);
  });

  it('an empty submission stores nothing', async () => {
    expect(await submitJobs(ctx.handle, [])).toEqual([]);
  });
});

describePg('submitJobs at scale', (ctx) => {
  it('stores 100,000 jobs in one call', async () => {
    const jobs = Array.from({ length: 100_000 }, (_, i) =>
      makeJob({ jobName: `bulk-${i}`, parametric: { number: i, values: { i } }, requirements: { owner: `u${i % 4}` } }),
    );
    const t0 = performance.now();
    const ids = await submitJobs(ctx.handle, jobs);
    const ms = performance.now() - t0;
    console.log(`[db] submitJobs: 100,000 jobs in ${(ms / 1000).toFixed(2)} s on PostgreSQL (${Math.round(100_000 / (ms / 1000))} jobs/s)`);
    expect(ids).toHaveLength(100_000);
    const [c] = await ctx.handle.query<{ jobs: number; hist: number; tqs: number; jdl_ok: number }>(
      `select (select count(*) from jobs where status = 'Waiting') as jobs,
              (select count(*) from job_history) as hist,
              (select count(*) from task_queues) as tqs,
              (select count(*) from jobs where jdl like '%"job ' || id || '"%') as jdl_ok`,
    );
    expect(c).toEqual({ jobs: 100_000, hist: 200_000, tqs: 4, jdl_ok: 100_000 });
  });
});
