/**
 * The job listing's sorts (GET /api/jobs `sort` and `order`): each column orders in either
 * direction with ties by id, status in lifecycle order, and each order is an index's.
 */
import { beforeAll, expect, it } from 'vitest';
import { killJobs, listJobs, submitJobs } from '../../db/index.js';
import type { JobSort } from '../../db/queries/jobs.js';
import { describeDb } from '../helpers/db.js';
import { makeJob } from './fixtures.js';

describeDb('sorting the job listing', (ctx) => {
  let ids: number[] = [];

  beforeAll(async () => {
    // group, site, owner per job: ties on each column, so the id decides among them.
    const spec = [
      ['g-b', 'SITE-B', 'carol'],
      ['g-a', 'SITE-C', 'alice'],
      ['g-b', 'SITE-A', 'bob'],
      ['g-a', 'SITE-B', 'alice'],
      ['g-c', 'SITE-A', 'bob'],
    ] as const;
    ids = await submitJobs(
      ctx.handle,
      spec.map(([jobGroup, site, owner]) => makeJob({ jobGroup, requirements: { sites: [site], owner } })),
    );
    await killJobs(ctx.handle, [ids[0]!, ids[3]!], { source: 'test' });
  });

  const order = async (sort: JobSort) => (await listJobs(ctx.handle, {}, { limit: 100, sort })).jobs.map((j) => j.id);
  const at = (...i: number[]) => i.map((k) => ids[k]!);

  it('newest first by default, and by id either way', async () => {
    expect((await listJobs(ctx.handle, {}, { limit: 100 })).jobs.map((j) => j.id)).toEqual(at(4, 3, 2, 1, 0));
    expect(await order({ column: 'id', order: 'asc' })).toEqual(at(0, 1, 2, 3, 4));
  });

  it('by status in lifecycle order (Waiting before Killed), ties by id in the same direction', async () => {
    expect(await order({ column: 'status', order: 'asc' })).toEqual(at(1, 2, 4, 0, 3));
    expect(await order({ column: 'status', order: 'desc' })).toEqual(at(3, 0, 4, 2, 1));
  });

  it('by group, site and owner (owner: then status), ties by id', async () => {
    expect(await order({ column: 'group', order: 'asc' })).toEqual(at(1, 3, 0, 2, 4));
    expect(await order({ column: 'site', order: 'asc' })).toEqual(at(2, 4, 0, 3, 1));
    expect(await order({ column: 'site', order: 'desc' })).toEqual(at(1, 3, 0, 4, 2));
    // alice: 1 Waiting, 3 Killed; bob: 2, 4 Waiting; carol: 0 Killed.
    expect(await order({ column: 'owner', order: 'asc' })).toEqual(at(1, 3, 2, 4, 0));
  });

  it('pages follow the sort', async () => {
    const page = await listJobs(ctx.handle, {}, { limit: 2, offset: 2, sort: { column: 'group', order: 'asc' } });
    expect(page.jobs.map((j) => j.id)).toEqual(at(0, 2));
    expect(page.total).toBe(5);
  });

  it('each sort is the order of an index', async () => {
    const h = await ctx.open({ poolSize: 1 }); // one connection: the setting applies to the explains
    await h.query('set enable_seqscan = off');
    await h.query('set enable_sort = off');
    try {
      for (const [by, index] of [
        ['status desc, id desc', 'jobs_status'],
        ['site, id', 'jobs_site'],
        ['job_group desc, id desc', 'jobs_group'],
        ['owner, status, id', 'jobs_owner_status'],
      ] as const) {
        const plan = await h.query<{ 'QUERY PLAN': string }>(`explain select id from jobs order by ${by} limit 25`);
        expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toContain(index);
      }
    } finally {
      await h.query('reset enable_seqscan');
      await h.query('reset enable_sort');
    }
  });
});
