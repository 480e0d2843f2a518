import { beforeEach, expect, it } from 'vitest';
import type { JobRequirements } from '../../core/job-model.js';
import type { ResourceDescription } from '../../core/matching.js';
import {
  explainJob,
  explainResource,
  getJobHistory,
  getJobs,
  createPilots,
  matchJob,
  pauseQueue,
  reportJobStatus,
  setComputingElementBanned,
  setGroupShare,
  setSiteBanned,
  submitJobs,
  upsertCeQueue,
  upsertComputingElement,
} from '../../db/index.js';
import { describeDb } from '../helpers/db.js';
import { makeJob, makeJobs, makeResource } from './fixtures.js';

/** A requirement, a resource that cannot take it, and one that can. */
const criteria: [string, Partial<JobRequirements>, Partial<ResourceDescription>, Partial<ResourceDescription>][] = [
  ['site', { sites: ['SITE-B', 'SITE-C'] }, { site: 'SITE-A' }, { site: 'SITE-C' }],
  ['banned site', { bannedSites: ['SITE-A'] }, { site: 'SITE-A' }, { site: 'SITE-B' }],
  ['CE', { gridCEs: ['ce2.example.org'] }, { ce: 'ce1.example.org' }, { ce: 'ce2.example.org' }],
  ['CE (resource names none)', { gridCEs: ['ce2.example.org'] }, {}, { ce: 'ce2.example.org' }],
  ['tags', { tags: ['GPU', 'CVMFS'] }, { tags: ['CVMFS'] }, { tags: ['CVMFS', 'GPU', 'extra'] }],
  ['processors', { processors: 8 }, { processors: 4 }, { processors: 8 }],
  ['RAM', { ramMb: 8000 }, { ramMb: 4000 }, { ramMb: 16000 }],
  ['GPUs', { gpus: 1 }, { gpus: 0 }, { gpus: 2 }],
  ['CPU time', { cpuTime: 86_400 }, { cpuWork: 3600 }, { cpuWork: 86_400 }],
  ['platform', { platforms: ['EL9-x86_64'] }, { platform: 'EL8-x86_64' }, { platform: 'EL9-x86_64' }],
  ['platform (resource states none)', { platforms: ['EL9-x86_64'] }, {}, { platform: 'EL9-x86_64' }],
  ['VO', { vo: 'vo2' }, { vo: 'vo1' }, { vo: 'vo2' }],
  ['owner group', { ownerGroup: 'prod' }, { ownerGroups: ['users'] }, { ownerGroups: ['users', 'prod'] }],
  ['job type', { jobTypes: ['MCSimulation'] }, { jobTypes: ['User'] }, { jobTypes: ['User', 'MCSimulation'] }],
  ['required tag', { tags: [] }, { requiredTags: ['WholeNode'] }, {}],
];

describeDb('matchJob', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('hands out the oldest fitting job: Matched, history, site, pilot linked', async () => {
    const ids = await submitJobs(ctx.handle, makeJobs(3));
    await ctx.handle.query(`insert into pilots (id, stamp, site) values (42, 'stamp-42', 'SITE-A')`);
    const m = await matchJob(ctx.handle, makeResource({ site: 'SITE-A' }), { pilotId: 42 });
    expect(m).toEqual({
      id: ids[0],
      jdl: expect.stringContaining(`"job ${ids[0]}"`),
      owner: 'alice',
      ownerGroup: 'users',
      vo: 'vo1',
    });
    const [row] = await getJobs(ctx.handle, [ids[0]!]);
    expect(row).toMatchObject({ status: 'Matched', minorStatus: 'Assigned', applicationStatus: 'Unknown', site: 'SITE-A', pilotId: 42 });
    const h = await getJobHistory(ctx.handle, ids[0]!);
    expect(h.at(-1)).toMatchObject({ status: 'Matched', minorStatus: 'Assigned', source: 'Matcher' });
    const [p] = await ctx.handle.query<{ current_job_id: number }>(`select current_job_id from pilots where id = 42`);
    expect(p!.current_job_id).toBe(ids[0]);
    expect((await matchJob(ctx.handle, makeResource()))?.id).toBe(ids[1]);
    expect((await matchJob(ctx.handle, makeResource()))?.id).toBe(ids[2]);
    expect(await matchJob(ctx.handle, makeResource())).toBeNull();
  });

  it('answers null when nothing waits', async () => {
    expect(await matchJob(ctx.handle, makeResource())).toBeNull();
  });

  for (const [name, requirement, refused, accepted] of criteria) {
    it(`respects the ${name}`, async () => {
      const [id] = await submitJobs(ctx.handle, [makeJob({ requirements: requirement })]);
      expect(await matchJob(ctx.handle, makeResource(refused))).toBeNull();
      const m = await matchJob(ctx.handle, makeResource(accepted));
      expect(m?.id).toBe(id);
    });
  }

  it('a multi-core pilot requiring a tag takes only jobs carrying it', async () => {
    const [single, whole] = await submitJobs(ctx.handle, [makeJob(), makeJob({ requirements: { tags: ['WholeNode'], processors: 8 } })]);
    const r = makeResource({ processors: 8, requiredTags: ['WholeNode'] });
    expect((await matchJob(ctx.handle, r))?.id).toBe(whole);
    expect(await matchJob(ctx.handle, r)).toBeNull();
    expect((await matchJob(ctx.handle, makeResource()))?.id).toBe(single);
  });

  it('a banned site or CE gets nothing at all; allowed again, it gets work', async () => {
    const [id] = await submitJobs(ctx.handle, [makeJob()]);
    await setSiteBanned(ctx.handle, 'SITE-A', true, 'downtime');
    expect(await matchJob(ctx.handle, makeResource({ site: 'SITE-A' }))).toBeNull();
    await setSiteBanned(ctx.handle, 'SITE-A', false);
    await upsertComputingElement(ctx.handle, { site: 'SITE-A', name: 'ce1', type: 'slurm' });
    await setComputingElementBanned(ctx.handle, 'ce1', true, 'broken');
    expect(await matchJob(ctx.handle, makeResource({ site: 'SITE-A', ce: 'ce1' }))).toBeNull();
    // Another CE of the same site is fine.
    expect((await matchJob(ctx.handle, makeResource({ site: 'SITE-A', ce: 'ce2' })))?.id).toBe(id);
  });

  it('ignores queues whose jobs are all taken and falls back to others', async () => {
    const [a] = await submitJobs(ctx.handle, [makeJob({ requirements: { owner: 'x' } })]);
    const [b] = await submitJobs(ctx.handle, [makeJob({ requirements: { owner: 'y' } })]);
    const got = [await matchJob(ctx.handle, makeResource()), await matchJob(ctx.handle, makeResource())].map((m) => m?.id);
    expect(got.sort()).toEqual([a, b].sort());
    expect(await matchJob(ctx.handle, makeResource())).toBeNull();
  });
});

describeDb('matcher snapshot of the task queues', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('sees a task queue created through another handle (another replica) on its next match', async () => {
    await submitJobs(ctx.handle, [makeJob()]);
    expect(await matchJob(ctx.handle, makeResource())).not.toBeNull(); // snapshot cached
    expect(await matchJob(ctx.handle, makeResource())).toBeNull();
    // PostgreSQL: a second pool, whose submission the first handle's cache knows nothing of.
    // (PGlite has one connection: the same handle, still through the generation check.)
    const other = await ctx.open({ poolSize: 1 });
    const [id] = await submitJobs(other, [makeJob({ requirements: { tags: ['GPU'] } })]);
    expect((await matchJob(ctx.handle, makeResource({ tags: ['GPU'] })))?.id).toBe(id);
  });

  it('follows share changes made elsewhere', async () => {
    await submitJobs(ctx.handle, [
      ...makeJobs(50, { requirements: { ownerGroup: 'g1' } }),
      ...makeJobs(50, { requirements: { ownerGroup: 'g2' } }),
    ]);
    await matchJob(ctx.handle, makeResource()); // snapshot cached with equal shares
    await setGroupShare(await ctx.open({ poolSize: 1 }), 'vo1', 'g2', 1e-9); // g2: 0.001 against 1000
    const groups: string[] = [];
    for (let i = 0; i < 20; i++) groups.push((await matchJob(ctx.handle, makeResource()))!.ownerGroup);
    expect(groups.filter((g) => g === 'g2').length).toBeLessThanOrEqual(1);
  });
});

describeDb('explain', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('explainResource lists every task queue with its waiting jobs and the reasons', async () => {
    const [small, big] = await submitJobs(ctx.handle, [
      makeJob(),
      makeJob({ requirements: { processors: 8, tags: ['GPU'], sites: ['SITE-B'], cpuTime: 172_800 } }),
    ]);
    const r = await explainResource(ctx.handle, makeResource({ site: 'SITE-A', processors: 4, cpuWork: 3600 }));
    expect(r.blockers).toEqual([]);
    expect(r.site).toEqual({ name: 'SITE-A', registered: false, banned: false, reason: null });
    expect(r.taskQueues).toHaveLength(2);
    const rows = await getJobs(ctx.handle, [small!, big!]);
    const tqSmall = r.taskQueues.find((q) => q.id === rows[0]!.taskQueueId);
    const tqBig = r.taskQueues.find((q) => q.id === rows[1]!.taskQueueId);
    expect(tqSmall).toMatchObject({ owner: 'alice', ownerGroup: 'users', waitingJobs: 1, eligible: true, reasons: [] });
    expect(tqBig!.eligible).toBe(false);
    expect(tqBig!.reasons).toEqual([
      'CPU time 172800 > resource CPU work 3600',
      'needs site in {SITE-B}, resource is at SITE-A',
      'tag GPU not offered',
      'needs 8 processors, resource offers 4',
    ]);
    await matchJob(ctx.handle, makeResource());
    const after = await explainResource(ctx.handle, makeResource());
    expect(after.taskQueues.find((q) => q.id === tqSmall!.id)).toMatchObject({
      waitingJobs: 0,
      eligible: false,
      reasons: ['no waiting jobs'],
    });
  });

  it('explainResource names a banned site and CE as blockers', async () => {
    await submitJobs(ctx.handle, [makeJob()]);
    await setSiteBanned(ctx.handle, 'SITE-A', true, 'downtime');
    await upsertComputingElement(ctx.handle, { site: 'SITE-A', name: 'ce1', type: 'slurm' });
    await setComputingElementBanned(ctx.handle, 'ce1', true);
    const r = await explainResource(ctx.handle, makeResource({ site: 'SITE-A', ce: 'ce1' }));
    expect(r.blockers).toEqual(['site SITE-A is banned: downtime', 'CE ce1 is banned']);
    expect(r.ce).toEqual({ name: 'ce1', registered: true, banned: true, reason: null });
    expect(r.taskQueues[0]).toMatchObject({ eligible: false, reasons: [] });
  });

  it('explainJob says which registered queues could run the job and what stops the others', async () => {
    await upsertComputingElement(ctx.handle, { site: 'SITE-A', name: 'ce-a', type: 'slurm' });
    await upsertComputingElement(ctx.handle, { site: 'SITE-B', name: 'ce-b', type: 'htcondor' });
    await upsertComputingElement(ctx.handle, { site: 'SITE-C', name: 'ce-c', type: 'local' });
    await upsertCeQueue(ctx.handle, { ce: 'ce-a', name: 'big', processors: 16, ramMb: 64000, cpuTime: 200_000, tags: ['GPU'], gpus: 1 });
    await upsertCeQueue(ctx.handle, { ce: 'ce-a', name: 'small', processors: 1, ramMb: 2000, cpuTime: 3600 });
    await upsertCeQueue(ctx.handle, {
      ce: 'ce-b',
      name: 'q',
      processors: 16,
      ramMb: 64000,
      cpuTime: 200_000,
      tags: ['GPU'],
      gpus: 1,
      allowedVos: ['vo9'],
    });
    await upsertCeQueue(ctx.handle, { ce: 'ce-c', name: 'q', processors: 16, ramMb: 64000, cpuTime: 200_000, tags: ['GPU'], gpus: 1 });
    await setSiteBanned(ctx.handle, 'SITE-C', true, 'maintenance');
    const [id] = await submitJobs(ctx.handle, [
      makeJob({ requirements: { processors: 8, ramMb: 8000, tags: ['GPU'], gpus: 1, cpuTime: 86_400, bannedSites: ['SITE-B'] } }),
    ]);
    const e = await explainJob(ctx.handle, id!);
    expect(e.job).toMatchObject({ id, status: 'Waiting', owner: 'alice' });
    expect(e.waiting).toBe(true);
    expect(e.note).toBeNull();
    expect(e.taskQueue).toMatchObject({ processors: 8, tags: ['GPU'], waitingJobs: 1 });
    const byName = Object.fromEntries(e.queues.map((q) => [`${q.ce}/${q.queue}`, q]));
    expect(byName['ce-a/big']).toMatchObject({ site: 'SITE-A', ceType: 'slurm', canRun: true, reasons: [] });
    expect(byName['ce-a/small']!.canRun).toBe(false);
    expect(byName['ce-a/small']!.reasons).toEqual([
      'CPU time 86400 > resource CPU work 3600',
      'tag GPU not offered',
      'needs 8 processors, resource offers 1',
      'needs 8000 MB RAM, resource offers 2000',
      'needs 1 GPUs, resource offers 0',
    ]);
    expect(byName['ce-b/q']!.reasons).toEqual(['queue serves VOs {vo9}, job is of VO vo1', 'bans site SITE-B']);
    expect(byName['ce-c/q']!.reasons).toEqual(['site SITE-C is banned: maintenance']);
  });

  it('explainJob says when the job is no longer waiting, and hides other owners\u2019 jobs', async () => {
    const [id] = await submitJobs(ctx.handle, [makeJob()]);
    await matchJob(ctx.handle, makeResource());
    const e = await explainJob(ctx.handle, id!, { owner: 'alice' });
    expect(e.waiting).toBe(false);
    expect(e.note).toBe(`job ${id} is Matched: it is not waiting for a pilot (it has one, at SITE-A)`);
    await expect(explainJob(ctx.handle, id!, { owner: 'bob' })).rejects.toMatchObject({ code: 'WMS_JOB_NOT_FOUND' });
    await expect(explainJob(ctx.handle, 123_456)).rejects.toMatchObject({ code: 'WMS_JOB_NOT_FOUND', message: 'job 123456 not found' });
  });

  it('explainJob says a Done job is done, without a word about pilots it waits for', async () => {
    const [id] = await submitJobs(ctx.handle, [makeJob()]);
    await matchJob(ctx.handle, makeResource());
    for (const status of ['Running', 'Done'] as const) {
      await reportJobStatus(ctx.handle, id!, null, { status, minorStatus: status }, 'JobWrapper');
    }
    const e = await explainJob(ctx.handle, id!);
    expect(e.waiting).toBe(false);
    expect(e.note).toBe(`job ${id} is Done: it is not waiting for a pilot`);
  });

  it('explainJob names what stops the site director, as it does: a pause with its end, a full pilot limit with its count', async () => {
    const now = new Date('2026-12-04T14:00:00Z');
    await upsertComputingElement(ctx.handle, { site: 'SITE-A', name: 'ce-a', type: 'slurm' });
    const ok = await upsertCeQueue(ctx.handle, { ce: 'ce-a', name: 'ok' });
    const paused = await upsertCeQueue(ctx.handle, { ce: 'ce-a', name: 'paused' });
    const full = await upsertCeQueue(ctx.handle, { ce: 'ce-a', name: 'full', maxWaitingPilots: 2, maxTotalPilots: 3 });
    await upsertCeQueue(ctx.handle, {
      ce: 'ce-a',
      name: 'whole',
      tags: ['WholeNode'],
      settings: { requiredTags: ['WholeNode'] },
    });
    await pauseQueue(ctx.handle, paused, new Date('2026-12-04T15:00:00.500Z'), '3 pilots in a row failed (last: boom); paused for 3600 s');
    // A pause that has ended stops nothing.
    await pauseQueue(ctx.handle, ok, new Date('2026-12-04T13:59:59Z'), 'an old pause');
    const pilot = { stamp: '', site: 'SITE-A', ce: 'ce-a', ceType: 'slurm', queue: 'full', queueId: full, vo: 'vo1' };
    const [id, running] = await submitJobs(ctx.handle, [makeJob(), makeJob()]);
    await createPilots(
      ctx.handle,
      ['p1', 'p2', 'p3'].map((stamp) => ({ ...pilot, stamp })),
    );
    // A pilot with a job is live but no longer waiting.
    await ctx.handle.query(`update pilots set status = 'Running', current_job_id = $1 where stamp = 'p3'`, [running]);
    const e = await explainJob(ctx.handle, id!, undefined, now);
    const byName = Object.fromEntries(e.queues.map((q) => [q.queue, q]));
    expect(byName['ok']).toMatchObject({ canRun: true, reasons: [], blockers: [], pausedUntil: null });
    expect(byName['paused']).toMatchObject({
      canRun: false,
      reasons: ['queue paused until 2026-12-04T15:00:00Z: 3 pilots in a row failed (last: boom); paused for 3600 s'],
      blockers: [{ kind: 'queue-paused' }],
      pausedUntil: new Date('2026-12-04T15:00:00.500Z'),
    });
    expect(byName['full']).toMatchObject({
      canRun: false,
      reasons: ['queue has 2 of 2 waiting pilots (maxWaitingPilots)', 'queue has 3 of 3 live pilots (maxTotalPilots)'],
      blockers: [{ kind: 'waiting-pilots-full' }, { kind: 'total-pilots-full' }],
      pilots: { waiting: 2, total: 3, maxWaiting: 2, maxTotal: 3 },
    });
    // The queue's pilots require a tag the job lacks: the matcher would not hand it out.
    expect(byName['whole']).toMatchObject({
      canRun: false,
      blockers: [{ kind: 'requirement', reason: 'resource requires tag WholeNode, queue lacks it' }],
    });
    // Once the pause has ended, the queue can run the job.
    const later = await explainJob(ctx.handle, id!, undefined, new Date('2026-12-04T15:00:01Z'));
    expect(later.queues.find((q) => q.queue === 'paused')).toMatchObject({ canRun: true, pausedUntil: null });
  });
});
