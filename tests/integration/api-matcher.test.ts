/**
 * The matcher through `app.inject()`: a pilot gets one job and a job token that authenticates
 * as role job for that job only; no work is `{ match: null }`; explain calls for a resource
 * and for a job. Pilot tokens are bound to pilot records (tests/helpers/pilots.ts): the place
 * matched is the record's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setSiteBanned, upsertCeQueue, upsertComputingElement, upsertSite } from '../../db/index.js';
import { createTestApp, jdl, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';
import { pilotAt } from '../helpers/pilots.js';

let t: TestApp;
let alice: string;

const resource = { site: 'LCG.Test.org', ce: 'ce1.test.org', queue: 'long', cpuWork: 500_000, processors: 1, ramMb: 4096 };

async function submit(body: unknown): Promise<number[]> {
  const res = await t.call('POST', '/api/jobs', alice, body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ jobIds: number[] }>().jobIds;
}

/** A live pilot's token at the resource's place (or `at`), in `vo`. */
async function pilot(vo = 'vo1', at: { site: string; ce: string } = resource): Promise<string> {
  return (await pilotAt(t, { site: at.site, ce: at.ce, queue: 'long', vo })).token;
}

interface Match {
  match: null | { jobId: number; jdl: string; owner: string; ownerGroup: string; vo: string; token: string; tokenExpiresAt: string };
}

describeDb('matcher API', (ctx) => {
  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
    alice = await t.user('alice');
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('match', () => {
    it("the jobs a pilot holds are listed by GET /api/jobs?pilot=, within the caller's scope", async () => {
      const [id] = await submit({ jdl: jdl({ JobName: 'held-by-pilot', CPUTime: 3600 }) });
      const p = await pilotAt(t, { site: resource.site, ce: resource.ce, queue: 'long' });
      const { match } = (await t.call('POST', '/api/match', p.token, resource)).json<Match>();
      const held = match!.jobId;
      expect(held).toBe(id);
      const ids = async (token: string, pilotId: number) =>
        (await t.call('GET', `/api/jobs?pilot=${pilotId}`, token)).json<{ jobs: { id: number }[] }>().jobs.map((j) => j.id);
      expect(await ids(alice, p.id)).toEqual([held]);
      expect(await ids(await t.admin(), p.id)).toEqual([held]);
      expect(await ids(await t.user('mallory'), p.id)).toEqual([]);
      expect(await ids(alice, p.id + 1000)).toEqual([]);
      const summary = await t.call('GET', `/api/jobs/summary?pilot=${p.id}`, alice);
      expect(summary.json()).toEqual({ counts: { Matched: 1 }, total: 1 });
      expect((await t.call('GET', '/api/jobs?pilot=0', alice)).statusCode).toBe(400);
      expect((await t.call('GET', '/api/jobs?pilot=abc', alice)).statusCode).toBe(400);
    });

    it('a pilot gets a job and a job token bound to it', async () => {
      const [id] = await submit({ jdl: jdl({ JobName: 'to-match', CPUTime: 3600 }) });
      const p = await pilotAt(t, { site: resource.site, ce: resource.ce, queue: 'long' });
      const res = await t.call('POST', '/api/match', p.token, resource);
      expect(res.statusCode, res.body).toBe(200);
      const { match } = res.json<Match>();
      expect(match).not.toBeNull();
      expect(match).toMatchObject({ jobId: id, owner: 'alice', ownerGroup: 'vo1_user', vo: 'vo1' });
      expect(match!.jdl).toContain('Executable = "run.sh"');

      const self = await t.call('GET', '/api/tokens/self', match!.token);
      expect(self.statusCode).toBe(200);
      expect(self.json()).toMatchObject({ role: 'job', jobId: id, user: 'alice', pilotId: p.id });

      const job = await t.call('GET', `/api/jobs/${id}`, match!.token);
      expect(job.statusCode).toBe(200);
      expect(job.json<{ status: string; site: string }>()).toMatchObject({ status: 'Matched', site: 'LCG.Test.org' });

      // The job token cannot act as a user or a pilot.
      expect((await t.call('POST', '/api/match', match!.token, resource)).statusCode).toBe(403);
      expect((await t.call('GET', '/api/jobs', match!.token)).statusCode).toBe(403);
    });

    it('no work is a 200 with { match: null }', async () => {
      const res = await t.call('POST', '/api/match', await pilot(), resource);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ match: null });
    });

    it('a resource too small gets nothing; a job is never matched twice', async () => {
      const [id] = await submit({ jdl: jdl({ CPUTime: 200_000 }) });
      const small = await t.call('POST', '/api/match', await pilot(), { ...resource, cpuWork: 1000 });
      expect(small.json()).toEqual({ match: null });
      const big = await t.call('POST', '/api/match', await pilot(), resource);
      expect(big.json<Match>().match?.jobId).toBe(id);
      const again = await t.call('POST', '/api/match', await pilot(), resource);
      expect(again.json()).toEqual({ match: null });
    });

    it('a pilot of another VO does not get the job, and cannot claim another VO', async () => {
      await submit({ jdl: jdl() });
      const other = await pilot('vo2');
      expect((await t.call('POST', '/api/match', other, resource)).json()).toEqual({ match: null });
      const claim = await t.call('POST', '/api/match', other, { ...resource, vo: 'vo1' });
      expect(claim.statusCode).toBe(403);
      // ... and the job is still there for its VO.
      const mine = await t.call('POST', '/api/match', await pilot(), resource);
      expect(mine.json<Match>().match).not.toBeNull();
    });

    it('users cannot match; a malformed resource lists its problems', async () => {
      expect((await t.call('POST', '/api/match', alice, resource)).statusCode).toBe(403);
      const res = await t.call('POST', '/api/match', await pilot(), { cpuWork: -1, processors: 0 });
      expect(res.statusCode).toBe(400);
      const body = res.json<{ code: string; problems: { path: string }[] }>();
      expect(body.code).toBe('WMS_VALIDATION');
      const paths = body.problems.map((p) => p.path);
      expect(paths).toEqual(expect.arrayContaining(['body/site', 'body/cpuWork', 'body/processors']));
    });
  });

  describe('explain', () => {
    let waiting: number;
    beforeAll(async () => {
      // A site named in a JDL must be registered; its computing elements come later.
      await upsertSite(t.db, { name: 'LCG.Other.org' });
      [waiting] = (await submit({ jdl: jdl({ JobName: 'explain-me', CPUTime: 3600, Site: 'LCG.Other.org' }) })) as [number];
    });

    it('for a resource: each task queue considered, with its rejection reasons', async () => {
      const res = await t.call('POST', '/api/match/explain', await t.admin(), resource);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json<{ taskQueues: { id: number; eligible: boolean; reasons: string[] }[] }>();
      expect(body.taskQueues.length).toBeGreaterThan(0);
      const rejected = body.taskQueues.filter((q) => !q.eligible);
      expect(rejected.length).toBeGreaterThan(0);
      for (const q of rejected) expect(q.reasons.length).toBeGreaterThan(0);
      expect(rejected.flatMap((q) => q.reasons).join(' ')).toMatch(/site/i);
    });

    it('a site admin and a pilot may explain a resource; a user may not', async () => {
      const siteAdmin = await t.tokenFor({ role: 'site-admin', user: 'sam', vo: 'vo1', group: 'vo1_siteadmin' });
      expect((await t.call('POST', '/api/match/explain', siteAdmin, resource)).statusCode).toBe(200);
      expect((await t.call('POST', '/api/match/explain', await pilot(), resource)).statusCode).toBe(200);
      expect((await t.call('POST', '/api/match/explain', alice, resource)).statusCode).toBe(403);
    });

    it('for a job: its owner and admins get an answer; other users 404', async () => {
      const res = await t.call('GET', `/api/jobs/${waiting}/explain`, alice);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json<{ job: { id: number; status: string }; waiting: boolean; blockers: string[]; queues: unknown[] }>();
      expect(body.job).toMatchObject({ id: waiting, status: 'Waiting' });
      expect(body.waiting).toBe(true);
      // No queue is registered in this database (only the job's site): no queue can run it, and the answer says so.
      expect(body.queues).toEqual([]);
      expect(body.blockers.join(' ')).toMatch(/no computing-element queue is registered/);
      expect((await t.call('GET', `/api/jobs/${waiting}/explain`, await t.admin())).statusCode).toBe(200);
      const bob = await t.user('bob');
      const other = await t.call('GET', `/api/jobs/${waiting}/explain`, bob);
      expect(other.statusCode).toBe(404);
    });

    it('for a job: registered queues say whether they can run it and why not', async () => {
      await upsertComputingElement(t.db, { site: 'LCG.Other.org', name: 'ce.other.org', type: 'slurm' });
      await upsertCeQueue(t.db, { ce: 'ce.other.org', name: 'short', cpuTime: 1000 });
      await upsertComputingElement(t.db, { site: 'LCG.Test.org', name: 'ce1.test.org', type: 'htcondor' });
      await upsertCeQueue(t.db, { ce: 'ce1.test.org', name: 'long', cpuTime: 500_000 });
      type Answer = { blockers: string[]; queues: { site: string; queue: string; canRun: boolean; reasons: string[] }[] };
      let body = (await t.call('GET', `/api/jobs/${waiting}/explain`, alice)).json<Answer>();
      expect(body.queues).toHaveLength(2);
      expect(body.queues.every((q) => !q.canRun && q.reasons.length > 0)).toBe(true);
      expect(body.blockers.join(' ')).toMatch(/none of the 2 registered queues/);

      await upsertCeQueue(t.db, { ce: 'ce.other.org', name: 'long', cpuTime: 500_000 });
      body = (await t.call('GET', `/api/jobs/${waiting}/explain`, alice)).json<Answer>();
      expect(body.queues.filter((q) => q.canRun).map((q) => `${q.site}/${q.queue}`)).toEqual(['LCG.Other.org/long']);
      expect(body.blockers).toEqual([]);
    });

    it('a banned site gets nothing, and explain says why', async () => {
      await setSiteBanned(t.db, 'LCG.Other.org', true, 'downtime');
      const banned = { ...resource, site: 'LCG.Other.org', ce: 'ce.other.org' };
      expect((await t.call('POST', '/api/match', await pilot('vo1', banned), banned)).json()).toEqual({ match: null });
      const res = await t.call('POST', '/api/match/explain', await t.admin(), banned);
      const body = res.json<{ blockers: string[]; site: { banned: boolean } }>();
      expect(body.site.banned).toBe(true);
      expect(body.blockers.join(' ')).toMatch(/banned: downtime/);
      await setSiteBanned(t.db, 'LCG.Other.org', false);
      expect((await t.call('POST', '/api/match', await pilot('vo1', banned), banned)).json<Match>().match?.jobId).toBe(waiting);
    });
  });
});
