/**
 * `GET /api/usage` and `GET/PUT /api/shares` through `app.inject()`, on PGlite and PostgreSQL:
 * the figures are exactly what was inserted (jobs in live and final states; accounting records
 * inside the last day, inside the week only, and older), fractions per VO, a user sees their
 * group and themselves only, admins and site admins everything; shares are admin-only,
 * validated, and a change shows in /api/usage and in the task queues' priorities.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTaskQueues, submitJobs } from '../../db/index.js';
import { makeJob } from '../db/fixtures.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';
import type { UsageAnswer, UsedFigures } from '../../core/usage.js';

const HOUR = 3_600_000;

const used = (jobs: number, cpuSeconds: number, normalizedCpuSeconds: number): UsedFigures => ({ jobs, cpuSeconds, normalizedCpuSeconds });

describeDb('usage and shares API', (ctx) => {
  let t: TestApp;
  let admin: string;
  let alice: string;

  function job(owner: string, ownerGroup: string, vo = 'vo1') {
    return makeJob({ requirements: { owner, ownerGroup, vo } });
  }

  async function record(
    jobId: number,
    owner: string,
    group: string,
    vo: string,
    agoMs: number,
    cpu: number,
    norm: number | null,
  ): Promise<void> {
    await ctx.handle.query(
      `insert into accounting (job_id, owner, owner_group, vo, site, status, submitted_at, ended_at, cpu_seconds, normalized_cpu_seconds)
       values ($1, $2, $3, $4, 'SITE-A', 'Done', $5::timestamptz, $5::timestamptz, $6, $7)`,
      [jobId, owner, group, vo, new Date(Date.now() - agoMs).toISOString(), cpu, norm],
    );
  }

  async function usage(token: string): Promise<UsageAnswer> {
    const res = await t.call('GET', '/api/usage', token);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<UsageAnswer>();
  }

  beforeAll(async () => {
    await ctx.truncate();
    t = await createTestApp({ db: ctx.handle });
    admin = await t.admin();
    alice = await t.user('alice', 'vo1', 'users');
    // vo1/users: alice 2 waiting + 1 running + 1 done + 1 killed; bob 1 waiting + 1 matched.
    // vo2/physics: dave 1 received (waiting). vo1/prod (carol) has only accounting records.
    const ids = await submitJobs(ctx.handle, [
      job('alice', 'users'),
      job('alice', 'users'),
      job('alice', 'users'),
      job('alice', 'users'),
      job('alice', 'users'),
      job('bob', 'users'),
      job('bob', 'users'),
      job('dave', 'physics', 'vo2'),
    ]);
    const set = (status: string, i: number) => ctx.handle.query(`update jobs set status = $1::job_status where id = $2`, [status, ids[i]]);
    await set('Running', 2);
    await set('Done', 3);
    await set('Killed', 4);
    await set('Matched', 6);
    await set('Received', 7);
    // Records: inside the last day, inside the week only, older than the week.
    await record(1001, 'alice', 'users', 'vo1', 2 * HOUR, 100, 1000);
    await record(1002, 'alice', 'users', 'vo1', 3 * 24 * HOUR, 200, 2000);
    await record(1003, 'alice', 'users', 'vo1', 10 * 24 * HOUR, 400, 4000);
    await record(1004, 'bob', 'users', 'vo1', 3 * 24 * HOUR, 50, null); // no DB12: no normalized CPU
    await record(1005, 'carol', 'prod', 'vo1', 2 * HOUR, 300, 3000);
    await record(1006, 'carol', 'prod', 'vo1', 6 * 24 * HOUR, 600, 6000);
    await record(1007, 'erin', 'old', 'vo1', 8 * 24 * HOUR, 999, 9999); // outside: group not active
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('GET /api/usage', () => {
    it('admins see every group and user, with the figures inserted', async () => {
      const u = await usage(admin);
      expect(u.defaultShare).toBe(1000);
      expect(Date.parse(u.weekSince)).toBeLessThan(Date.parse(u.daySince));
      expect(u.users).toEqual([
        { vo: 'vo1', group: 'prod', user: 'carol', waiting: 0, running: 0, day: used(1, 300, 3000), week: used(2, 900, 9000) },
        { vo: 'vo1', group: 'users', user: 'alice', waiting: 2, running: 1, day: used(1, 100, 1000), week: used(2, 300, 3000) },
        { vo: 'vo1', group: 'users', user: 'bob', waiting: 1, running: 1, day: used(0, 0, 0), week: used(1, 50, 0) },
        { vo: 'vo2', group: 'physics', user: 'dave', waiting: 1, running: 0, day: used(0, 0, 0), week: used(0, 0, 0) },
      ]);
      expect(u.groups).toEqual([
        // vo1: two active groups of default share; 3000 of the VO's 12000 normalized CPU-s were users'.
        {
          vo: 'vo1',
          group: 'prod',
          share: 1000,
          shareConfigured: false,
          shareFraction: 0.5,
          usedFraction: 0.75,
          waiting: 0,
          running: 0,
          day: used(1, 300, 3000),
          week: used(2, 900, 9000),
        },
        {
          vo: 'vo1',
          group: 'users',
          share: 1000,
          shareConfigured: false,
          shareFraction: 0.5,
          usedFraction: 0.25,
          waiting: 3,
          running: 2,
          day: used(1, 100, 1000),
          week: used(3, 350, 3000),
        },
        {
          vo: 'vo2',
          group: 'physics',
          share: 1000,
          shareConfigured: false,
          shareFraction: 1,
          usedFraction: 0,
          waiting: 1,
          running: 0,
          day: used(0, 0, 0),
          week: used(0, 0, 0),
        },
      ]);
    });

    it('site admins see everything too', async () => {
      const sam = await t.tokenFor({ role: 'site-admin', user: 'sam', vo: 'vo1', group: 'site' });
      const [theirs, mine] = [await usage(sam), await usage(admin)];
      expect(theirs.groups).toEqual(mine.groups);
      expect(theirs.users).toEqual(mine.users);
    });

    it('a user sees their own line and their group, with fractions over the whole VO', async () => {
      const u = await usage(alice);
      expect(u.users.map((x) => x.user)).toEqual(['alice']);
      expect(u.groups).toEqual([
        expect.objectContaining({ vo: 'vo1', group: 'users', waiting: 3, running: 2, shareFraction: 0.5, usedFraction: 0.25 }),
      ]);
      // A user of another VO with nothing going on sees nothing of vo1.
      const zed = await usage(await t.user('zed', 'vo3', 'users'));
      expect(zed.groups).toEqual([]);
      expect(zed.users).toEqual([]);
      // Same group name, other VO: nothing of vo1/users.
      const yan = await usage(await t.user('yan', 'vo2', 'users'));
      expect(yan.groups).toEqual([]);
    });

    it('needs a person: no token is 401, a pilot 403', async () => {
      expect((await t.call('GET', '/api/usage', null)).statusCode).toBe(401);
      expect((await t.call('GET', '/api/usage', await t.pilot(1))).statusCode).toBe(403);
    });
  });

  describe('shares', () => {
    it('only admins read and set shares', async () => {
      const sam = await t.tokenFor({ role: 'site-admin', user: 'sam', vo: 'vo1', group: 'site' });
      for (const token of [alice, sam]) {
        expect((await t.call('GET', '/api/shares', token)).statusCode).toBe(403);
        const put = await t.call('PUT', '/api/shares/vo1/users', token, { share: 5000 });
        expect(put.statusCode).toBe(403);
        expect(put.json()).toMatchObject({ code: 'WMS_FORBIDDEN' });
      }
      expect((await t.call('PUT', '/api/shares/vo1/users', null, { share: 5000 })).statusCode).toBe(401);
    });

    it('lists the groups that had jobs with the default share', async () => {
      const res = await t.call('GET', '/api/shares', admin);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        defaultShare: 1000,
        shares: [
          { vo: 'vo1', group: 'users', share: 1000, configured: false },
          { vo: 'vo2', group: 'physics', share: 1000, configured: false },
        ],
      });
    });

    it('refuses a share that is not a number > 0, other fields, and bad names', async () => {
      for (const body of [{ share: 0 }, { share: -5 }, { share: 'lots' }, {}, { share: 10, extra: 1 }, null]) {
        const res = await t.call('PUT', '/api/shares/vo1/users', admin, body ?? undefined);
        expect(res.statusCode, JSON.stringify(body)).toBe(400);
        expect(res.json()).toMatchObject({ code: 'WMS_VALIDATION' });
      }
      expect((await t.call('PUT', '/api/shares/vo%201/users', admin, { share: 10 })).statusCode).toBe(400);
      expect((await t.call('PUT', '/api/shares/vo1/-users', admin, { share: 10 })).statusCode).toBe(400);
      // Nothing was written.
      expect(
        (await t.call('GET', '/api/shares', admin)).json<{ shares: { configured: boolean }[] }>().shares.every((s) => !s.configured),
      ).toBe(true);
    });

    it('a new share shows in /api/usage and in the task queues of the group', async () => {
      const before = (await getTaskQueues(ctx.handle, null)).filter((q) => q.ownerGroup === 'users' && q.waitingJobs > 0);
      // Two owners with waiting jobs share the default 1000.
      expect(before.map((q) => q.sharePriority)).toEqual([500, 500]);

      const res = await t.call('PUT', '/api/shares/vo1/users', admin, { share: 3000 });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ vo: 'vo1', group: 'users', share: 3000, configured: true });

      const after = (await getTaskQueues(ctx.handle, null)).filter((q) => q.ownerGroup === 'users' && q.waitingJobs > 0);
      expect(after.map((q) => q.sharePriority)).toEqual([1500, 1500]);

      const groups = (await usage(admin)).groups;
      expect(groups.find((g) => g.group === 'users')).toMatchObject({ share: 3000, shareConfigured: true, shareFraction: 0.75 });
      expect(groups.find((g) => g.group === 'prod')).toMatchObject({ share: 1000, shareConfigured: false, shareFraction: 0.25 });
      expect((await usage(alice)).groups[0]).toMatchObject({ share: 3000, shareFraction: 0.75 });

      // A share may be set before a group has any job; a fraction is allowed.
      expect((await t.call('PUT', '/api/shares/vo1/newcomers', admin, { share: 12.5 })).statusCode).toBe(200);
      const listed = (await t.call('GET', '/api/shares', admin)).json<{ shares: unknown[] }>().shares;
      expect(listed).toEqual([
        { vo: 'vo1', group: 'newcomers', share: 12.5, configured: true },
        { vo: 'vo1', group: 'users', share: 3000, configured: true },
        { vo: 'vo2', group: 'physics', share: 1000, configured: false },
      ]);
      // Not active: it weighs nothing in vo1's fractions.
      expect((await usage(admin)).groups.map((g) => g.group)).toEqual(['prod', 'users', 'physics']);
    });
  });
});
