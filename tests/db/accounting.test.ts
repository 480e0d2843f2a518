/**
 * Accounting: the agent's statement records every job that ended (wrapper report, kill, the
 * stalled sweep's Failed, a reschedule past MaxRescheduling) exactly once, with the pilot's
 * DB12 as the normalization factor; reports group, filter by time and by owner. On PGlite and
 * PostgreSQL (where concurrent ticks race for real).
 */
import { beforeAll, expect, it } from 'vitest';
import {
  accountingReport,
  createPilots,
  killJobs,
  matchJob,
  recordFinishedJobs,
  registerPilot,
  reportJobStatus,
  rescheduleJobs,
  setJobParameters,
  submitJobs,
  type DbHandle,
} from '../../db/index.js';
import { describeDb } from '../helpers/db.js';
import { makeJob, makeResource } from './fixtures.js';

async function pilotAt(h: DbHandle, site: string, benchmark: number): Promise<number> {
  const [id] = await createPilots(h, [
    { stamp: `stamp-${site}`, site, ce: `ce.${site}`, ceType: 'fake', queue: 'q1', queueId: null, vo: 'vo1' },
  ]);
  await registerPilot(h, id!, { environment: {}, benchmark, clockOffsetSeconds: 0 }, null);
  return id!;
}

/** Submits one job and has `pilotId` match and start it. */
async function runningJob(
  h: DbHandle,
  pilotId: number,
  site: string,
  o: { owner?: string; group?: string; vo?: string; processors?: number } = {},
) {
  const [id] = await submitJobs(h, [
    makeJob({
      requirements: {
        owner: o.owner ?? 'alice',
        ownerGroup: o.group ?? 'users',
        vo: o.vo ?? 'vo1',
        processors: o.processors ?? 1,
      } as never,
    }),
  ]);
  const m = await matchJob(h, makeResource({ site, processors: o.processors ?? 1 }), { pilotId });
  expect(m?.id).toBe(id);
  const r = await reportJobStatus(h, id!, pilotId, { status: 'Running', minorStatus: 'Application' }, 'JobWrapper');
  expect(r.accepted).toBe(true);
  return id!;
}

describeDb('accounting', (ctx) => {
  const ids: Record<string, number> = {};

  beforeAll(async () => {
    await ctx.truncate();
    const h = ctx.handle;
    const a = await pilotAt(h, 'SITE-A', 10);
    const b = await pilotAt(h, 'SITE-B', 2.5);

    // Done, reported by the wrapper with its measurements.
    ids.done = await runningJob(h, a, 'SITE-A');
    await reportJobStatus(
      h,
      ids.done,
      a,
      {
        status: 'Done',
        minorStatus: 'Execution Complete',
        parameters: { 'TotalCPUTime(s)': '100', 'WallClockTime(s)': '120.5', ExitCode: '0' },
      },
      'JobWrapper',
    );
    // Failed by the wrapper, a 4-core job on the slower pilot.
    ids.failed = await runningJob(h, b, 'SITE-B', { processors: 4 });
    await reportJobStatus(
      h,
      ids.failed,
      b,
      {
        status: 'Failed',
        minorStatus: 'Application Finished With Errors',
        parameters: { 'TotalCPUTime(s)': '40', 'WallClockTime(s)': '50', ExitCode: '3' },
      },
      'JobWrapper',
    );
    // Failed by the stalled sweep (set by SQL, as the sweep's statement does), with a junk exit code.
    ids.stalled = await runningJob(h, a, 'SITE-A', { owner: 'bob', group: 'prod', vo: 'vo2' });
    await setJobParameters(h, ids.stalled, { 'TotalCPUTime(s)': '50', ExitCode: 'n/a' });
    await h.query(`update jobs set status = 'Stalled' where id = $1`, [ids.stalled]);
    await h.query(
      `update jobs set status = 'Failed', minor_status = 'Stalling for more than 900 sec', last_update_at = now() where id = $1`,
      [ids.stalled],
    );
    // Killed while waiting: never ran.
    ids.killed = (await submitJobs(h, [makeJob()]))[0]!;
    expect((await killJobs(h, [ids.killed!], { source: 'test' })).succeeded).toEqual([ids.killed]);
    // Rescheduled past MaxRescheduling: Failed.
    ids.maxResched = (await submitJobs(h, [makeJob({ requirements: { owner: 'bob', ownerGroup: 'prod', vo: 'vo2' } as never })]))[0]!;
    expect((await rescheduleJobs(h, [ids.maxResched!], { source: 'test', maxRescheduling: 0 })).succeeded).toEqual([ids.maxResched]);
    // Not finished: running and waiting.
    ids.running = await runningJob(h, a, 'SITE-A');
    ids.waiting = (await submitJobs(h, [makeJob()]))[0]!;
  });

  it('records each finished job once, whichever way it ended', async () => {
    const first = await recordFinishedJobs(ctx.handle, { batchSize: 2 });
    expect(first).toEqual([ids.done, ids.failed, ids.stalled, ids.killed, ids.maxResched].sort((x, y) => x! - y!));
    expect(await recordFinishedJobs(ctx.handle)).toEqual([]);
    const statuses = await ctx.handle.query<{ job_id: number; status: string; minor_status: string }>(
      `select job_id, status, minor_status from accounting order by job_id`,
    );
    expect(statuses.map((r) => [Number(r.job_id), r.status])).toEqual([
      [ids.done, 'Done'],
      [ids.failed, 'Failed'],
      [ids.stalled, 'Failed'],
      [ids.killed, 'Killed'],
      [ids.maxResched, 'Failed'],
    ]);
    expect(statuses.find((r) => Number(r.job_id) === ids.maxResched)?.minor_status).toBe('Maximum of reschedulings reached');
  });

  it('copies the pilot and the measurements, and normalizes CPU with the pilot DB12', async () => {
    const recs = await ctx.handle.query<Record<string, unknown>>(`select * from accounting order by job_id`);
    const rec = (id: number) => recs.find((r) => Number(r['job_id']) === id)!;
    expect(rec(ids.done!)).toMatchObject({ owner: 'alice', owner_group: 'users', vo: 'vo1', site: 'SITE-A', ce: 'ce.SITE-A', queue: 'q1' });
    expect(rec(ids.done!)).toMatchObject({
      cpu_seconds: 100,
      wall_seconds: 120.5,
      benchmark: 10,
      normalized_cpu_seconds: 1000,
      exit_code: 0,
      processors: 1,
    });
    expect(rec(ids.done!)['started_at']).toBeInstanceOf(Date);
    expect(rec(ids.failed!)).toMatchObject({
      cpu_seconds: 40,
      benchmark: 2.5,
      normalized_cpu_seconds: 100,
      exit_code: 3,
      processors: 4,
      site: 'SITE-B',
    });
    expect(rec(ids.stalled!)).toMatchObject({
      cpu_seconds: 50,
      wall_seconds: 0,
      normalized_cpu_seconds: 500,
      exit_code: null,
      owner: 'bob',
    });
    expect(rec(ids.killed!)).toMatchObject({
      cpu_seconds: 0,
      benchmark: null,
      normalized_cpu_seconds: null,
      pilot_id: null,
      ce: '',
      site: 'ANY',
    });
  });

  it('groups, sorts by normalized CPU and scopes to one owner', async () => {
    const since = new Date(Date.now() - 3600_000);
    expect(await accountingReport(ctx.handle, { by: 'site', since })).toEqual([
      { key: 'SITE-A', jobs: 2, done: 1, failed: 1, killed: 0, cpuSeconds: 150, wallSeconds: 120.5, normalizedCpuSeconds: 1500 },
      { key: 'SITE-B', jobs: 1, done: 0, failed: 1, killed: 0, cpuSeconds: 40, wallSeconds: 50, normalizedCpuSeconds: 100 },
      { key: 'ANY', jobs: 2, done: 0, failed: 1, killed: 1, cpuSeconds: 0, wallSeconds: 0, normalizedCpuSeconds: 0 },
    ]);
    const byGroup = await accountingReport(ctx.handle, { by: 'group', since });
    expect(byGroup.map((r) => [r.key, r.jobs, r.normalizedCpuSeconds])).toEqual([
      ['users', 3, 1100],
      ['prod', 2, 500],
    ]);
    const byVo = await accountingReport(ctx.handle, { by: 'vo', since });
    expect(byVo.map((r) => r.key)).toEqual(['vo1', 'vo2']);
    const mine = await accountingReport(ctx.handle, { by: 'user', since, owner: 'alice' });
    expect(mine.map((r) => [r.key, r.jobs])).toEqual([['alice', 3]]);
    expect(await accountingReport(ctx.handle, { by: 'user', since, owner: 'nobody' })).toEqual([]);
  });

  it('filters on when the job ended', async () => {
    await ctx.handle.query(`update accounting set ended_at = now() - interval '10 days' where job_id = $1`, [ids.done]);
    const week = await accountingReport(ctx.handle, { by: 'site', since: new Date(Date.now() - 7 * 86_400_000) });
    expect(week.find((r) => r.key === 'SITE-A')).toMatchObject({ jobs: 1, normalizedCpuSeconds: 500 });
    const month = await accountingReport(ctx.handle, { by: 'site', since: new Date(Date.now() - 30 * 86_400_000) });
    expect(month.find((r) => r.key === 'SITE-A')).toMatchObject({ jobs: 2, normalizedCpuSeconds: 1500 });
  });

  it('keeps records when the jobs are removed', async () => {
    await ctx.handle.query(`delete from jobs where id = $1`, [ids.killed]);
    const [r] = await ctx.handle.query<{ n: number }>(`select count(*)::int as n from accounting where job_id = $1`, [ids.killed]);
    expect(r!.n).toBe(1);
  });

  it('concurrent ticks record each job once', async () => {
    await ctx.handle.query(`delete from accounting`);
    const more = await submitJobs(
      ctx.handle,
      Array.from({ length: 40 }, () => makeJob()),
    );
    expect((await killJobs(ctx.handle, more, { source: 'test' })).succeeded).toHaveLength(40);
    const pool = await ctx.open({ poolSize: 6 });
    const results = await Promise.all(Array.from({ length: 6 }, () => recordFinishedJobs(pool, { batchSize: 7 })));
    const all = results.flat();
    expect(all).toHaveLength(new Set(all).size);
    const [r] = await ctx.handle.query<{ n: number }>(`select count(*)::int as n from accounting`);
    // 40 killed now, 4 finished jobs left from before (one was removed).
    expect(r!.n).toBe(44);
    expect(all).toHaveLength(44);
  });
});
