import { beforeEach, expect, it } from 'vitest';
import { JOB_STATES, sourcesOf, type JobState } from '../../core/job-states.js';
import { deleteJobs, getJobHistory, getJobs, killJobs, matchJob, rescheduleJobs, submitJobs, type DbHandle } from '../../db/index.js';
import { describeDb } from '../helpers/db.js';
import { makeJob, makeJobs, makeResource } from './fixtures.js';

/** Puts jobs straight into a state (the way services/agents would get them there). */
async function force(h: DbHandle, ids: number[], status: JobState): Promise<void> {
  await h.query(`update jobs set status = $2::text::job_status where id = any($1::bigint[])`, [ids, status]);
}

async function status(h: DbHandle, id: number): Promise<string> {
  const [row] = await getJobs(h, [id]);
  return row!.status;
}

async function commands(h: DbHandle, id: number): Promise<{ command: string; status: string }[]> {
  return h.query(`select command, status from job_commands where job_id = $1 order by id`, [id]);
}

describeDb('job actions', (ctx) => {
  beforeEach(() => ctx.truncate());
  const source = 'JobManager:alice';

  it('kill answers per job: killed, wrong state, not found, other owner', async () => {
    const [a, b, c] = await submitJobs(ctx.handle, makeJobs(3));
    const [bobs] = await submitJobs(ctx.handle, [makeJob({ requirements: { owner: 'bob' } })]);
    await force(ctx.handle, [b!], 'Done');
    const r = await killJobs(ctx.handle, [a!, b!, 999_999, bobs!, a!], { source, scope: { owner: 'alice' } });
    expect(r.succeeded).toEqual([a]);
    expect(r.failed).toEqual([
      { id: b, code: 'WMS_JOB_STATE', message: `job ${b} is Done: it cannot be killed` },
      { id: 999_999, code: 'WMS_JOB_NOT_FOUND', message: 'job 999999 not found' },
      { id: bobs, code: 'WMS_JOB_NOT_FOUND', message: `job ${bobs} not found` },
    ]);
    expect(await status(ctx.handle, a!)).toBe('Killed');
    expect(await status(ctx.handle, b!)).toBe('Done');
    expect(await status(ctx.handle, c!)).toBe('Waiting');
    expect(await status(ctx.handle, bobs!)).toBe('Waiting');
    const h = await getJobHistory(ctx.handle, a!);
    expect(h.at(-1)).toMatchObject({ status: 'Killed', minorStatus: 'Marked for termination', source });
    // A waiting job needs no command: no pilot holds it.
    expect(await commands(ctx.handle, a!)).toEqual([]);
    // Killing again is refused: Killed -> Killed is not a transition.
    const again = await killJobs(ctx.handle, [a!], { source });
    expect(again.failed[0]).toMatchObject({ code: 'WMS_JOB_STATE', message: `job ${a} is Killed: it cannot be killed` });
  });

  it('a scope is (VO, owner): the same name in another VO gets "not found" for kill, reschedule and delete', async () => {
    const [atlas] = await submitJobs(ctx.handle, [makeJob({ requirements: { owner: 'alice', vo: 'atlas' } })]);
    const [lhcb] = await submitJobs(ctx.handle, [makeJob({ requirements: { owner: 'alice', vo: 'lhcb' } })]);
    const asLhcb = { owner: 'alice', vo: 'lhcb' };
    const notFound = { succeeded: [], failed: [{ id: atlas, code: 'WMS_JOB_NOT_FOUND', message: `job ${atlas} not found` }] };
    expect(await killJobs(ctx.handle, [atlas!], { source, scope: asLhcb })).toEqual(notFound);
    expect(await rescheduleJobs(ctx.handle, [atlas!], { source, scope: asLhcb, maxRescheduling: 3 })).toEqual(notFound);
    expect(await deleteJobs(ctx.handle, [atlas!], { source, scope: asLhcb })).toEqual(notFound);
    expect(await status(ctx.handle, atlas!)).toBe('Waiting');
    expect((await getJobHistory(ctx.handle, atlas!)).map((h) => h.status)).toEqual(['Received', 'Waiting']);
    // Her own job, in her VO, she may kill.
    expect(await killJobs(ctx.handle, [lhcb!, atlas!], { source, scope: asLhcb })).toMatchObject({ succeeded: [lhcb] });
    expect(await status(ctx.handle, lhcb!)).toBe('Killed');
    expect(await status(ctx.handle, atlas!)).toBe('Waiting');
  });

  it('killing a job a pilot holds queues a Kill command', async () => {
    const [a, b] = await submitJobs(ctx.handle, makeJobs(2));
    const m = await matchJob(ctx.handle, makeResource(), { pilotId: 42 });
    expect(m?.id).toBe(a);
    await force(ctx.handle, [b!], 'Running');
    const r = await killJobs(ctx.handle, [a!, b!], { source });
    expect(r.succeeded).toEqual([a, b]);
    expect(await commands(ctx.handle, a!)).toEqual([{ command: 'Kill', status: 'Received' }]);
    expect(await commands(ctx.handle, b!)).toEqual([{ command: 'Kill', status: 'Received' }]);
  });

  it('the state table decides, for every state, whether kill and delete are accepted', async () => {
    const ids = await submitJobs(ctx.handle, makeJobs(JOB_STATES.length * 2));
    const killIds = ids.slice(0, JOB_STATES.length);
    const deleteIds = ids.slice(JOB_STATES.length);
    for (const [i, s] of JOB_STATES.entries()) await force(ctx.handle, [killIds[i]!, deleteIds[i]!], s);
    const killed = await killJobs(ctx.handle, killIds, { source });
    const deleted = await deleteJobs(ctx.handle, deleteIds, { source });
    for (const [i, s] of JOB_STATES.entries()) {
      expect(killed.succeeded.includes(killIds[i]!), `kill from ${s}`).toBe(sourcesOf('Killed').includes(s));
      const deletable = sourcesOf('Deleted').includes(s) || sourcesOf('Killed').includes(s);
      expect(deleted.succeeded.includes(deleteIds[i]!), `delete from ${s}`).toBe(deletable);
    }
    // Done can be deleted but not killed; Completed neither.
    expect(killed.failed.map((f) => f.message)).toContain(`job ${killIds[JOB_STATES.indexOf('Done')]} is Done: it cannot be killed`);
    expect(deleted.failed.map((f) => f.message)).toContain(
      `job ${deleteIds[JOB_STATES.indexOf('Completed')]} is Completed: it cannot be deleted`,
    );
  });

  it('delete of a running job kills it first (both history rows) and queues a Kill', async () => {
    const [a, b] = await submitJobs(ctx.handle, makeJobs(2));
    await force(ctx.handle, [a!], 'Running');
    await force(ctx.handle, [b!], 'Done');
    const r = await deleteJobs(ctx.handle, [a!, b!], { source });
    expect(r).toEqual({ succeeded: [a, b], failed: [] });
    const h = await getJobHistory(ctx.handle, a!);
    expect(h.slice(-2).map((x) => [x.status, x.minorStatus])).toEqual([
      ['Killed', 'Marked for termination'],
      ['Deleted', 'Checking accounting'],
    ]);
    expect(await commands(ctx.handle, a!)).toEqual([{ command: 'Kill', status: 'Received' }]);
    const hb = await getJobHistory(ctx.handle, b!);
    expect(hb.at(-1)).toMatchObject({ status: 'Deleted', minorStatus: 'Checking accounting' });
    expect(await deleteJobs(ctx.handle, [b!], { source })).toEqual({
      succeeded: [],
      failed: [{ id: b, code: 'WMS_JOB_STATE', message: `job ${b} is Deleted: it cannot be deleted` }],
    });
  });

  it('reschedule puts the job back to Waiting in its queue, counts, and fails past the maximum', async () => {
    const [id] = await submitJobs(ctx.handle, [makeJob({ requirements: { sites: ['SITE-A'] } })]);
    const [before] = await getJobs(ctx.handle, [id!]);
    for (let n = 1; n <= 3; n++) {
      const m = await matchJob(ctx.handle, makeResource(), { pilotId: 7 });
      expect(m?.id).toBe(id);
      await force(ctx.handle, [id!], 'Running');
      expect(await rescheduleJobs(ctx.handle, [id!], { source, maxRescheduling: 3 })).toEqual({ succeeded: [id], failed: [] });
      const [row] = await getJobs(ctx.handle, [id!]);
      expect(row).toMatchObject({
        status: 'Waiting',
        minorStatus: 'Pilot Agent Submission',
        applicationStatus: 'Unknown',
        rescheduleCounter: n,
        pilotId: null,
        site: 'SITE-A',
        taskQueueId: before!.taskQueueId,
      });
      expect(row!.rescheduledAt).toBeInstanceOf(Date);
    }
    const h = await getJobHistory(ctx.handle, id!);
    expect(h.slice(-2).map((x) => [x.status, x.minorStatus, x.source])).toEqual([
      ['Received', 'Job Rescheduled', source],
      ['Waiting', 'Pilot Agent Submission', 'JobScheduling'],
    ]);
    // The fourth reschedule is past MaxRescheduling 3: Failed.
    const r = await rescheduleJobs(ctx.handle, [id!], { source, maxRescheduling: 3 });
    expect(r.succeeded).toEqual([id]);
    const [row] = await getJobs(ctx.handle, [id!]);
    expect(row).toMatchObject({ status: 'Failed', minorStatus: 'Maximum of reschedulings reached', rescheduleCounter: 4 });
    const last = await getJobHistory(ctx.handle, id!);
    expect(last.at(-1)).toMatchObject({ status: 'Failed', minorStatus: 'Maximum of reschedulings reached' });
  });

  it('reschedule cancels pending commands and forgets the previous run, refuses Deleted jobs', async () => {
    const [a, b] = await submitJobs(ctx.handle, makeJobs(2));
    await force(ctx.handle, [a!], 'Running');
    await ctx.handle.query(`insert into job_commands (job_id, command) values ($1, 'Kill')`, [a]);
    await ctx.handle.query(`insert into job_parameters (job_id, name, value) values ($1, 'HostName', 'wn1')`, [a]);
    await force(ctx.handle, [b!], 'Deleted');
    const r = await rescheduleJobs(ctx.handle, [a!, b!], { source, maxRescheduling: 3 });
    expect(r).toEqual({
      succeeded: [a],
      failed: [{ id: b, code: 'WMS_JOB_STATE', message: `job ${b} is Deleted: it cannot be rescheduled` }],
    });
    expect(await commands(ctx.handle, a!)).toEqual([{ command: 'Kill', status: 'Cancelled' }]);
    expect(await ctx.handle.query(`select * from job_parameters where job_id = $1`, [a])).toEqual([]);
    // The rescheduled job can be matched again.
    expect((await matchJob(ctx.handle, makeResource()))?.id).toBe(a);
  });

  it('a rescheduled job refills an empty queue and gets its share back', async () => {
    const [a] = await submitJobs(ctx.handle, [makeJob({ requirements: { owner: 'carol' } })]);
    await matchJob(ctx.handle, makeResource());
    await ctx.handle.query(`update task_queues set share_priority = 0.5`);
    await rescheduleJobs(ctx.handle, [a!], { source, maxRescheduling: 3 });
    const [tq] = await ctx.handle.query<{ share_priority: number }>(`select share_priority from task_queues`);
    expect(tq!.share_priority).toBe(1000);
  });
});
