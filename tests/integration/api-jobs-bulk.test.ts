/**
 * Bulk actions by ids or by filter (issue 13, point 9) through `app.inject()`, on PGlite and on
 * PostgreSQL: exactly one of `ids` and `filter`; a user's filter reaches only their own jobs and
 * may name no other owner; a filter over `jobLimits.maxBulkJobs` is refused with nothing
 * changed; a dry run changes nothing; jobs already where the action leads are counted as
 * skipped, not failed; a selection larger than one batch is acted on whole.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { BulkResult } from '../../api/index.js';
import type { JobState } from '../../core/job-states.js';
import { BULK_BATCH } from '../../db/ops/job-actions.js';
import { createTestApp, jdl, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

let t: TestApp;
let alice: string;
let bob: string;
let admin: string;

async function submit(token: string, body: unknown, app: TestApp = t): Promise<number[]> {
  const res = await app.call('POST', '/api/jobs', token, body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ jobIds: number[] }>().jobIds;
}

/** `n` jobs of `token`'s user in job group `group` (submitted to `app`). */
function jobsIn(token: string, group: string, n: number, app: TestApp = t): Promise<number[]> {
  return submit(token, { jdls: Array.from({ length: n }, () => jdl({ JobGroup: group })) }, app);
}

/** Puts jobs straight into a state (as the agents and pilots would get them there). */
async function force(ids: readonly number[], status: JobState): Promise<void> {
  await t.db.query(`update jobs set status = $2::text::job_status where id = any($1::bigint[])`, [[...ids], status]);
}

/** Everything a bulk action may change about jobs: their rows, histories and commands. */
async function snapshot(): Promise<unknown[]> {
  return Promise.all([
    t.db.query(`select id, status, minor_status, reschedule_counter, last_update_at from jobs order by id`),
    t.db.query(`select job_id, status, minor_status, source from job_history order by id`),
    t.db.query(`select job_id, command, status from job_commands order by id`),
  ]);
}

async function statusOf(id: number): Promise<string> {
  const [row] = await t.db.query<{ status: string }>(`select status from jobs where id = $1`, [id]);
  return row!.status;
}

async function act(token: string, action: string, body: unknown): Promise<BulkResult> {
  const res = await t.call('POST', `/api/jobs/${action}`, token, body);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<BulkResult>();
}

describeDb('bulk actions by ids or by filter', (ctx) => {
  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
    alice = await t.user('alice');
    bob = await t.user('bob');
    admin = await t.admin();
  });
  afterAll(async () => {
    await t?.close();
  });
  beforeEach(() => ctx.truncate());

  describe('refusals', () => {
    it('both ids and filter, or neither: 400 naming the problem, nothing changed', async () => {
      const ids = await jobsIn(alice, 'g', 2);
      const before = await snapshot();
      const cases: [unknown, RegExp][] = [
        [{ ids, filter: { group: 'g' } }, /give either "ids" or "filter", not both/],
        [{}, /give the jobs to act on: "ids" or "filter"/],
        [{ dryRun: true }, /give the jobs to act on/],
      ];
      for (const action of ['kill', 'reschedule', 'delete']) {
        for (const [body, message] of cases) {
          const res = await t.call('POST', `/api/jobs/${action}`, alice, body);
          expect(res.statusCode, `${action} ${JSON.stringify(body)}`).toBe(400);
          const err = res.json<{ code: string; message: string; problems: { path?: string }[] }>();
          expect(err.code).toBe('WMS_VALIDATION');
          expect(err.message).toMatch(message);
          expect(err.problems[0]?.path).toBe('body');
        }
      }
      expect(await snapshot()).toEqual(before);
    });

    it('a malformed filter (unknown key, unknown status, bad date) is refused by the schema', async () => {
      for (const filter of [{ colour: 'red' }, { status: ['Sleeping'] }, { since: 'yesterday' }]) {
        const res = await t.call('POST', '/api/jobs/kill', alice, { filter });
        expect(res.statusCode, JSON.stringify(filter)).toBe(400);
        expect(res.json<{ code: string }>().code).toBe('WMS_VALIDATION');
      }
    });

    it("a user may not name another owner in a filter: 403, and bob's jobs are untouched", async () => {
      const bobs = await jobsIn(bob, 'shared', 2);
      const before = await snapshot();
      for (const action of ['kill', 'reschedule', 'delete']) {
        for (const dryRun of [false, true]) {
          const res = await t.call('POST', `/api/jobs/${action}`, alice, { filter: { owner: 'bob' }, dryRun });
          expect(res.statusCode).toBe(403);
          expect(res.json<{ code: string; message: string }>()).toMatchObject({
            code: 'WMS_FORBIDDEN',
            message: 'only admins may act on the jobs of other users',
          });
        }
      }
      expect(await snapshot()).toEqual(before);
      expect(await Promise.all(bobs.map(statusOf))).toEqual(['Waiting', 'Waiting']);
    });

    it('a filter over jobLimits.maxBulkJobs is refused with the count and the limit, nothing changed', async () => {
      const small = await createTestApp({ db: ctx.handle, config: { jobLimits: { ...t.config.jobLimits, maxBulkJobs: 3 } } });
      try {
        const token = await small.user('alice');
        const ids = await jobsIn(token, 'big', 4, small);
        const before = await snapshot();
        for (const action of ['kill', 'reschedule', 'delete']) {
          for (const dryRun of [false, true]) {
            const res = await small.call('POST', `/api/jobs/${action}`, token, { filter: { group: 'big' }, dryRun });
            expect(res.statusCode).toBe(400);
            const err = res.json<{ code: string; message: string }>();
            expect(err.code).toBe('WMS_VALIDATION');
            expect(err.message).toBe(
              'the filter selects 4 jobs, more than the 3 one bulk action may take (jobLimits.maxBulkJobs): narrow the filter',
            );
          }
        }
        expect(await snapshot()).toEqual(before);
        // Narrowed to 3, it goes through.
        await force(ids.slice(0, 1), 'Done');
        const r = await small.call('POST', '/api/jobs/kill', token, { filter: { group: 'big', status: ['Waiting'] } });
        expect(r.statusCode, r.body).toBe(200);
        expect(r.json<BulkResult>()).toMatchObject({ succeededCount: 3, matched: 3 });
      } finally {
        await small.close();
      }
    });
  });

  describe('scope', () => {
    it("a user's filter acts on their own jobs only, even with the same group; an admin's on everyone's", async () => {
      const alices = await jobsIn(alice, 'shared', 3);
      const bobs = await jobsIn(bob, 'shared', 2);
      const r = await act(alice, 'kill', { filter: { group: 'shared' } });
      expect(r).toMatchObject({ succeeded: alices, failed: [], succeededCount: 3, skipped: 0, matched: 3, dryRun: false });
      expect(await Promise.all(alices.map(statusOf))).toEqual(['Killed', 'Killed', 'Killed']);
      expect(await Promise.all(bobs.map(statusOf))).toEqual(['Waiting', 'Waiting']);
      // Her own name as owner is allowed, and changes nothing more.
      expect(await act(alice, 'kill', { filter: { owner: 'alice', group: 'shared' } })).toMatchObject({ succeededCount: 0, skipped: 3 });
      // The same name in another VO is another user.
      const otherAlice = await t.user('alice', 'vo2');
      expect(await act(otherAlice, 'reschedule', { filter: {} })).toMatchObject({ matched: 0, succeeded: [], failed: [] });
      expect(await Promise.all(bobs.map(statusOf))).toEqual(['Waiting', 'Waiting']);

      const byAdmin = await act(admin, 'kill', { filter: { owner: 'bob' } });
      expect(byAdmin).toMatchObject({ succeeded: bobs, matched: 2 });
      expect(await Promise.all(bobs.map(statusOf))).toEqual(['Killed', 'Killed']);
      const [h] = await t.db.query<{ source: string }>(`select source from job_history where job_id = $1 order by id desc limit 1`, [
        bobs[0],
      ]);
      expect(h!.source).toBe('JobManager:root');
    });

    it("ids of another user's jobs are not found, and not counted as matched", async () => {
      const [mine] = await jobsIn(alice, 'g', 1);
      const [his] = await jobsIn(bob, 'g', 1);
      const r = await act(alice, 'delete', { ids: [mine, his] });
      expect(r).toMatchObject({
        succeeded: [mine],
        failed: [{ id: his, code: 'WMS_JOB_NOT_FOUND', message: `job ${his} not found` }],
        matched: 1,
        skipped: 0,
      });
      expect(await statusOf(his!)).toBe('Waiting');
    });
  });

  describe('skipped jobs', () => {
    it('kill: final jobs are counted by status as skipped, not failed (by ids and by filter)', async () => {
      const ids = await jobsIn(alice, 'mixed', 6);
      await force(ids.slice(0, 2), 'Done');
      await force(ids.slice(2, 3), 'Failed');
      await force(ids.slice(3, 4), 'Running');
      const byIds = await act(alice, 'kill', { ids: [ids[0], ids[2], ids[4]] });
      expect(byIds).toMatchObject({ succeeded: [ids[4]], failed: [], succeededCount: 1, skipped: 2, matched: 3 });
      expect(byIds.skippedByStatus).toMatchObject({ Done: 1, Failed: 1, Killed: 0, Waiting: 0 });
      expect(Object.keys(byIds.skippedByStatus).sort()).toHaveLength(16);

      const byFilter = await act(alice, 'kill', { filter: { group: 'mixed' } });
      expect(byFilter).toMatchObject({ succeeded: [ids[3], ids[5]], failed: [], skipped: 4, matched: 6 });
      expect(byFilter.skippedByStatus).toMatchObject({ Done: 2, Failed: 1, Killed: 1 });
      // The running job got a Kill for its pilot.
      const cmds = await t.db.query<{ job_id: number }>(`select job_id from job_commands where command = 'Kill'`);
      expect(cmds.map((c) => Number(c.job_id))).toEqual([ids[3]]);
    });

    it('delete and reschedule skip Deleted jobs; delete of a Completed job is a state failure', async () => {
      const ids = await jobsIn(alice, 'del', 4);
      await force(ids.slice(0, 1), 'Deleted');
      await force(ids.slice(1, 2), 'Completed');
      await force(ids.slice(2, 3), 'Done');
      const del = await act(alice, 'delete', { filter: { group: 'del' } });
      expect(del).toMatchObject({
        succeeded: [ids[2], ids[3]],
        failed: [{ id: ids[1], code: 'WMS_JOB_STATE', message: `job ${ids[1]} is Completed: it cannot be deleted` }],
        skipped: 1,
        matched: 4,
      });
      expect(del.skippedByStatus.Deleted).toBe(1);
      const res = await act(alice, 'reschedule', { ids });
      expect(res).toMatchObject({ succeeded: [ids[1]], failed: [], skipped: 3 });
      expect(res.skippedByStatus.Deleted).toBe(3);
    });
  });

  describe('dry run', () => {
    it('answers what would happen and changes nothing (rows, history, commands)', async () => {
      const ids = await jobsIn(alice, 'dry', 4);
      await force(ids.slice(0, 1), 'Done');
      await force(ids.slice(1, 2), 'Running');
      const before = await snapshot();
      for (const action of ['kill', 'reschedule', 'delete']) {
        const byFilter = await act(alice, action, { filter: { group: 'dry' }, dryRun: true });
        const byIds = await act(alice, action, { ids: [...ids, 999_999], dryRun: true });
        expect(byFilter.dryRun).toBe(true);
        expect(byIds.failed).toEqual([{ id: 999_999, code: 'WMS_JOB_NOT_FOUND', message: 'job 999999 not found' }]);
        for (const r of [byFilter, byIds]) {
          expect(r.matched).toBe(4);
          if (action === 'kill') expect(r).toMatchObject({ succeeded: ids.slice(1), succeededCount: 3, skipped: 1 });
          else expect(r).toMatchObject({ succeeded: ids, succeededCount: 4, skipped: 0 });
        }
      }
      expect(await snapshot()).toEqual(before);
      // The same request without dryRun does what the dry run said.
      expect(await act(alice, 'kill', { filter: { group: 'dry' } })).toMatchObject({ succeeded: ids.slice(1), skipped: 1, dryRun: false });
    });
  });

  describe('filters', () => {
    it('status, since and until select as the listing does; reschedule puts Failed jobs back to Waiting', async () => {
      const ids = await jobsIn(alice, 'redo', 3);
      await force(ids.slice(0, 2), 'Failed');
      const future = new Date(Date.now() + 3_600_000).toISOString();
      expect(await act(alice, 'reschedule', { filter: { status: ['Failed'], since: future } })).toMatchObject({ matched: 0 });
      const r = await act(alice, 'reschedule', { filter: { status: ['Failed'], until: future, group: 'redo' } });
      expect(r).toMatchObject({ succeeded: ids.slice(0, 2), matched: 2 });
      expect(await Promise.all(ids.map(statusOf))).toEqual(['Waiting', 'Waiting', 'Waiting']);
      const [h] = await t.db.query<{ source: string }>(
        `select source from job_history where job_id = $1 and minor_status = 'Job Rescheduled'`,
        [ids[0]],
      );
      expect(h!.source).toBe('JobManager:alice');
    });

    it(`a selection of more than one batch (${BULK_BATCH} jobs) is acted on whole`, async () => {
      const n = BULK_BATCH + 7;
      const ids = await submit(alice, { jdl: `[ Executable = "run.sh"; JobGroup = "many"; Parameters = ${n}; ]` });
      expect(ids).toHaveLength(n);
      await force([ids[5]!, ids[BULK_BATCH + 2]!], 'Done');
      const dry = await act(alice, 'kill', { filter: { group: 'many' }, dryRun: true });
      expect(dry).toMatchObject({ succeededCount: n - 2, skipped: 2, matched: n });
      const r = await act(alice, 'kill', { filter: { group: 'many' } });
      expect(r).toMatchObject({ succeededCount: n - 2, skipped: 2, matched: n, failed: [] });
      expect(r.succeeded).toHaveLength(n - 2);
      const [left] = await t.db.query<{ n: number | string }>(
        `select count(*) as n from jobs where job_group = 'many' and status = 'Waiting'`,
      );
      expect(Number(left!.n)).toBe(0);
    });
  });
});
