import { beforeAll, expect, it } from 'vitest';
import {
  assignSandboxes,
  countJobsByStatus,
  getJobParameters,
  getJobs,
  getSandbox,
  killJobs,
  listJobs,
  matchJob,
  recordSandbox,
  submitJobs,
} from '../../db/index.js';
import { describeDb } from '../helpers/db.js';
import { makeJob, makeResource } from './fixtures.js';

describeDb('listing and counting jobs', (ctx) => {
  let alice: number[] = [];
  let bob: number[] = [];

  beforeAll(async () => {
    alice = await submitJobs(
      ctx.handle,
      Array.from({ length: 25 }, (_, i) => makeJob({ jobName: `sim-${i}`, jobGroup: i % 2 ? 'odd' : 'even' })),
    );
    await matchJob(ctx.handle, makeResource({ site: 'SITE-Z' })); // alice[0] -> Matched at SITE-Z
    await killJobs(ctx.handle, alice.slice(1, 4), { source: 'test' });
    bob = await submitJobs(
      ctx.handle,
      Array.from({ length: 5 }, (_, i) => makeJob({ jobName: `reco-${i}`, requirements: { owner: 'bob' } })),
    );
  });

  it('pages newest first with a total', async () => {
    const p1 = await listJobs(ctx.handle, {}, { limit: 10 });
    expect(p1.total).toBe(30);
    expect(p1.jobs.map((j) => j.id)).toEqual([...bob].reverse().concat([...alice].reverse().slice(0, 5)));
    const p3 = await listJobs(ctx.handle, {}, { limit: 10, offset: 20 });
    expect(p3.jobs.map((j) => j.id)).toEqual([...alice].reverse().slice(15, 25));
    const beyond = await listJobs(ctx.handle, {}, { limit: 10, offset: 100 });
    expect(beyond).toEqual({ jobs: [], total: 30 });
  });

  it('filters by status, owner scope, group, site, search and time', async () => {
    const killed = await listJobs(ctx.handle, { status: ['Killed'] }, { limit: 100 });
    expect(killed.jobs.map((j) => j.id).sort()).toEqual(alice.slice(1, 4).sort());
    const waitingOrMatched = await listJobs(ctx.handle, { status: ['Waiting', 'Matched'] }, { limit: 100 });
    expect(waitingOrMatched.total).toBe(27);
    const mine = await listJobs(ctx.handle, {}, { limit: 100 }, { owner: 'bob' });
    expect(mine.total).toBe(5);
    expect(mine.jobs.every((j) => j.owner === 'bob')).toBe(true);
    expect((await listJobs(ctx.handle, { owner: 'alice' }, { limit: 1 }, { owner: 'bob' })).total).toBe(0);
    expect((await listJobs(ctx.handle, { jobGroup: 'odd' }, { limit: 100 })).total).toBe(12);
    const atZ = await listJobs(ctx.handle, { site: 'SITE-Z' }, { limit: 100 });
    expect(atZ.jobs.map((j) => j.id)).toEqual([alice[0]]);
    expect((await listJobs(ctx.handle, { search: 'RECO' }, { limit: 100 })).total).toBe(5);
    // A number finds that id, and names containing it (none here: ids 26..30, names sim-0..24).
    expect((await listJobs(ctx.handle, { search: String(bob[2]) }, { limit: 100 })).jobs.map((j) => j.id)).toEqual([bob[2]]);
    expect((await listJobs(ctx.handle, { search: '8' }, { limit: 100 })).total).toBe(3); // id 8, sim-8, sim-18
    expect((await listJobs(ctx.handle, { search: '50%' }, { limit: 100 })).total).toBe(0);
    const future = new Date(Date.now() + 3_600_000);
    expect((await listJobs(ctx.handle, { since: future }, { limit: 100 })).total).toBe(0);
    expect((await listJobs(ctx.handle, { until: future, since: new Date(0) }, { limit: 100 })).total).toBe(30);
  });

  it('the name search can be served by the trigram index (jobs_name_trgm)', async () => {
    const h = await ctx.open({ poolSize: 1 }); // one connection: the setting applies to the explain
    await h.query('set enable_seqscan = off');
    try {
      const plan = await h.query<{ 'QUERY PLAN': string }>(`explain select id from jobs where job_name ilike '%RECO%'`);
      expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toContain('jobs_name_trgm');
    } finally {
      await h.query('reset enable_seqscan');
    }
  });

  it('counts by status, every state present', async () => {
    const all = await countJobsByStatus(ctx.handle, {});
    expect(all).toMatchObject({ Waiting: 26, Matched: 1, Killed: 3, Done: 0, Deleted: 0 });
    expect(Object.keys(all)).toHaveLength(16);
    expect(await countJobsByStatus(ctx.handle, { jobGroup: 'even' }, { owner: 'alice' })).toMatchObject({
      Waiting: 11,
      Matched: 1,
      Killed: 1,
    });
  });

  it('a scope is (VO, owner): the same name in another VO sees none of these jobs', async () => {
    // Every job of this suite is of VO vo1 (bob's and alice's).
    const other = { owner: 'bob', vo: 'vo2' };
    expect(await getJobs(ctx.handle, [bob[0]!, bob[1]!], other)).toEqual([]);
    expect(await listJobs(ctx.handle, {}, { limit: 100 }, other)).toEqual({ jobs: [], total: 0 });
    expect(Object.values(await countJobsByStatus(ctx.handle, {}, other)).every((n) => n === 0)).toBe(true);
    const same = { owner: 'bob', vo: 'vo1' };
    expect((await getJobs(ctx.handle, [bob[0]!, bob[1]!], same)).map((r) => r.id)).toEqual([bob[0], bob[1]]);
    expect((await listJobs(ctx.handle, {}, { limit: 100 }, same)).total).toBe(bob.length);
  });

  it('getJobs answers only existing jobs in scope, in id order', async () => {
    const rows = await getJobs(ctx.handle, [bob[1]!, alice[2]!, 999_999], { owner: 'bob' });
    expect(rows.map((r) => r.id)).toEqual([bob[1]]);
    expect(await getJobs(ctx.handle, [])).toEqual([]);
  });

  it('sandboxes: recorded once, linked to jobs; parameters read back', async () => {
    const sha = 'c'.repeat(64);
    await recordSandbox(ctx.handle, { sha256: sha, size: 123, owner: 'alice', ownerGroup: 'users', vo: 'vo1' });
    await recordSandbox(ctx.handle, { sha256: sha, size: 123, owner: 'alice', ownerGroup: 'users', vo: 'vo1' });
    expect(await getSandbox(ctx.handle, sha)).toEqual({
      sha256: sha,
      size: 123,
      createdAt: expect.any(Date),
      lastAccessAt: expect.any(Date),
    });
    expect(await getSandbox(ctx.handle, 'd'.repeat(64))).toBeNull();
    await assignSandboxes(ctx.handle, alice[0]!, 'Output', [sha, sha]);
    await assignSandboxes(ctx.handle, alice[0]!, 'Output', [sha]);
    expect(await ctx.handle.query('select job_id, kind from job_sandboxes')).toEqual([{ job_id: alice[0], kind: 'Output' }]);
    await ctx.handle.query(`insert into job_parameters (job_id, name, value) values ($1, 'HostName', 'wn1'), ($1, 'CPU', '4')`, [alice[0]]);
    expect(await getJobParameters(ctx.handle, alice[0]!)).toEqual({ CPU: '4', HostName: 'wn1' });
  });
});
