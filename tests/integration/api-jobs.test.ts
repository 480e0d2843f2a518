/**
 * The jobs API through `app.inject()`: submission (single, list, parametric; malformed JDL
 * refused with located problems and nothing written), reads, listing, bulk actions,
 * rescheduling limits, ownership and authentication.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertSite } from '../../db/index.js';
import { countJobs, createTestApp, jdl, testClock, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

let t: TestApp;
let alice: string;
let bob: string;
let admin: string;

interface Problem {
  message: string;
  line?: number;
  column?: number;
  attribute?: string;
  path?: string;
}

async function submit(token: string, body: unknown): Promise<number[]> {
  const res = await t.call('POST', '/api/jobs', token, body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ jobIds: number[] }>().jobIds;
}

describeDb('jobs API', (ctx) => {
  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
    alice = await t.user('alice');
    bob = await t.user('bob');
    admin = await t.admin();
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('malformed JDL: 400 with code, line and column, and no row written', () => {
    const cases: [string, string, string, number, number][] = [
      ['unclosed string', '[\n  Executable = "run.sh;\n]', 'WMS_JDL_SYNTAX', 2, 16],
      ['missing ;', '[\n  Executable = "run.sh"\n  CPUTime = 3600;\n]', 'WMS_JDL_SYNTAX', 2, 24],
      ['bad list', '[\n  Executable = "run.sh";\n  InputSandbox = { "a", , "b" };\n]', 'WMS_JDL_SYNTAX', 3, 25],
      [
        'unknown placeholder',
        '[\n  Executable = "run.sh";\n  Parameters = { 1, 2 };\n  Arguments = "%(nope)s";\n]',
        'WMS_JDL_PARAMETRIC',
        4,
        15,
      ],
      [
        'parameter lists of different lengths',
        '[\n  Executable = "run.sh";\n  Parameters.a = { 1, 2 };\n  Parameters.b = { 1, 2, 3 };\n  Arguments = "%(a)s %(b)s";\n]',
        'WMS_JDL_PARAMETRIC',
        4,
        3,
      ],
      ['CPUTime out of range', '[\n  Executable = "run.sh";\n  CPUTime = 5;\n]', 'WMS_JDL_INVALID', 3, 13],
      ['no Executable', '[\n  Arguments = "x";\n]', 'WMS_JDL_INVALID', 1, 1],
    ];

    it.each(cases)('%s', async (_name, text, code, line, column) => {
      const before = await countJobs(t.db);
      const res = await t.call('POST', '/api/jobs', alice, { jdl: text });
      expect(res.statusCode).toBe(400);
      const body = res.json<{ code: string; message: string; problems: Problem[] }>();
      expect(body.code).toBe(code);
      expect(body.message).toMatch(/line \d+, column \d+/);
      expect(body.problems.length).toBeGreaterThan(0);
      expect(body.problems[0]).toMatchObject({ line, column });
      expect(await countJobs(t.db)).toBe(before);
    });

    it('a list with one bad JDL stores none of them, and names the JDL', async () => {
      const before = await countJobs(t.db);
      const res = await t.call('POST', '/api/jobs', alice, {
        jdls: [jdl(), jdl({ CPUTime: 5 }), jdl()],
      });
      expect(res.statusCode).toBe(400);
      const body = res.json<{ code: string; problems: Problem[] }>();
      expect(body.code).toBe('WMS_JDL_INVALID');
      expect(body.problems[0]?.message).toMatch(/^JDL #2: /);
      expect(body.problems[0]).toMatchObject({ line: 3, column: 13, attribute: 'CPUTime' });
      expect(await countJobs(t.db)).toBe(before);
    });

    it('a bad parametric JDL inside a list refuses the list, labelled with its place (issue 11: good ones are expanded)', async () => {
      const before = await countJobs(t.db);
      const res = await t.call('POST', '/api/jobs', alice, {
        jdls: [jdl(), '[ Executable = "a"; Parameters = 0; ]'],
      });
      expect(res.statusCode).toBe(400);
      const body = res.json<{ code: string; problems: Problem[] }>();
      expect(body.code).toBe('WMS_JDL_PARAMETRIC');
      expect(body.problems[0]).toMatchObject({ line: 1, column: 34 });
      expect(body.problems[0]!.message).toMatch(/^JDL #2: Parameters = 0/);
      expect(await countJobs(t.db)).toBe(before);
    });

    it('schema problems are all listed at once (WMS_VALIDATION)', async () => {
      const res = await t.call('POST', '/api/jobs', alice, { jdl: { not: 'a string' }, extra: true });
      expect(res.statusCode).toBe(400);
      const body = res.json<{ code: string; problems: Problem[] }>();
      expect(body.code).toBe('WMS_VALIDATION');
      const paths = body.problems.map((p) => p.path);
      expect(paths).toContain('body/extra');
      expect(paths).toContain('body/jdl');
    });

    it('neither or both of jdl and jdls is a validation error', async () => {
      for (const body of [{}, { jdl: jdl(), jdls: [jdl()] }]) {
        const res = await t.call('POST', '/api/jobs', alice, body);
        expect(res.statusCode).toBe(400);
        expect(res.json<{ code: string }>().code).toBe('WMS_VALIDATION');
      }
    });

    it('the JDL cannot claim another owner', async () => {
      const res = await t.call('POST', '/api/jobs', alice, { jdl: jdl({ Owner: 'bob' }) });
      expect(res.statusCode).toBe(400);
      expect(res.json<{ code: string }>().code).toBe('WMS_JDL_INVALID');
    });
  });

  describe('submission', () => {
    it('one JDL makes one Waiting job owned by the token subject', async () => {
      const [id] = await submit(alice, { jdl: jdl({ JobName: 'single', CPUTime: 3600 }) });
      const res = await t.call('GET', `/api/jobs/${id}`, alice);
      expect(res.statusCode).toBe(200);
      const job = res.json<Record<string, unknown>>();
      expect(job).toMatchObject({
        id,
        owner: 'alice',
        ownerGroup: 'vo1_user',
        vo: 'vo1',
        jobName: 'single',
        status: 'Waiting',
        cpuTime: 3600,
      });
      expect(String(job['jdl'])).not.toMatch(/%j/);
    });

    it('a list of JDLs makes one job each, in order', async () => {
      const ids = await submit(alice, { jdls: [jdl({ JobName: 'l1' }), jdl({ JobName: 'l2' }), jdl({ JobName: 'l3' })] });
      expect(ids).toHaveLength(3);
      const res = await t.call('GET', `/api/jobs/status?ids=${ids.join(',')}`, alice);
      const names = res.json<{ jobs: { jobName: string }[] }>().jobs.map((j) => j.jobName);
      expect(names).toEqual(['l1', 'l2', 'l3']);
    });

    it('a parametric JDL expands to one job per value', async () => {
      const ids = await submit(alice, {
        jdl: '[\n  Executable = "run.sh";\n  JobName = "p_%n";\n  Parameters = { "a", "b", "c", "d" };\n  Arguments = "%s";\n]',
      });
      expect(ids).toHaveLength(4);
      const res = await t.call('GET', `/api/jobs/status?ids=${ids.join(',')}`, alice);
      expect(res.json<{ jobs: { jobName: string }[] }>().jobs.map((j) => j.jobName)).toEqual(['p_0', 'p_1', 'p_2', 'p_3']);
    });

    it('a user token is required: none is 401 WMS_AUTH_MISSING, garbage 401 WMS_AUTH_INVALID', async () => {
      const none = await t.call('POST', '/api/jobs', null, { jdl: jdl() });
      expect(none.statusCode).toBe(401);
      expect(none.json<{ code: string }>().code).toBe('WMS_AUTH_MISSING');
      const bad = await t.call('POST', '/api/jobs', 'not.a.token', { jdl: jdl() });
      expect(bad.statusCode).toBe(401);
      expect(bad.json<{ code: string }>().code).toBe('WMS_AUTH_INVALID');
      const pilot = await t.call('POST', '/api/jobs', await t.pilot(7), { jdl: jdl() });
      expect(pilot.statusCode).toBe(403);
      expect(pilot.json<{ code: string }>().code).toBe('WMS_FORBIDDEN');
    });

    it('an expired token is refused (injected clock)', async () => {
      const clock = testClock();
      const timed = await createTestApp({ clock });
      try {
        const token = await timed.tokenFor({ role: 'user', user: 'alice', vo: 'vo1', group: 'vo1_user' }, 60);
        expect((await timed.call('GET', '/api/jobs', token)).statusCode).toBe(200);
        clock.advance(61_000);
        const res = await timed.call('GET', '/api/jobs', token);
        expect(res.statusCode).toBe(401);
        expect(res.json<{ code: string; message: string }>()).toMatchObject({ code: 'WMS_AUTH_INVALID' });
        expect(res.json<{ message: string }>().message).toMatch(/expired/);
      } finally {
        await timed.close();
      }
    });

    it('a token signed by another key is refused', async () => {
      const other = await createTestApp();
      try {
        const foreign = await other.user('alice');
        const res = await t.call('GET', '/api/jobs', foreign);
        expect(res.statusCode).toBe(401);
        expect(res.json<{ code: string }>().code).toBe('WMS_AUTH_INVALID');
      } finally {
        await other.close();
      }
    });
  });

  describe('reads', () => {
    let id: number;
    beforeAll(async () => {
      [id] = (await submit(alice, { jdl: jdl({ JobName: 'readme' }) })) as [number];
    });

    it('history lists Received then Waiting with source and time', async () => {
      const res = await t.call('GET', `/api/jobs/${id}/history`, alice);
      expect(res.statusCode).toBe(200);
      const { history } = res.json<{ history: { status: string; minorStatus: string; source: string; at: string }[] }>();
      expect(history.map((h) => h.status)).toEqual(['Received', 'Waiting']);
      for (const h of history) {
        expect(h.source).toBeTruthy();
        expect(Number.isNaN(Date.parse(h.at))).toBe(false);
      }
    });

    it('parameters are an object (empty for a new job)', async () => {
      const res = await t.call('GET', `/api/jobs/${id}/parameters`, alice);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ jobId: id, parameters: {} });
    });

    it('an unknown job is 404 WMS_JOB_NOT_FOUND; a bad id 400', async () => {
      const res = await t.call('GET', '/api/jobs/99999999', alice);
      expect(res.statusCode).toBe(404);
      expect(res.json<{ code: string }>().code).toBe('WMS_JOB_NOT_FOUND');
      const bad = await t.call('GET', '/api/jobs/abc', alice);
      expect(bad.statusCode).toBe(400);
      expect(bad.json<{ code: string }>().code).toBe('WMS_VALIDATION');
    });

    it('status of several jobs lists the unknown ones apart', async () => {
      const res = await t.call('GET', `/api/jobs/status?ids=${id},99999999`, alice);
      expect(res.statusCode).toBe(200);
      const body = res.json<{ jobs: { id: number; status: string }[]; notFound: number[] }>();
      expect(body.jobs.map((j) => j.id)).toEqual([id]);
      expect(body.notFound).toEqual([99999999]);
    });
  });

  describe('listing', () => {
    let carol: string;
    let ids: number[];
    beforeAll(async () => {
      carol = await t.user('carol', 'vo2');
      // Sites named in a JDL must be registered (checked at submission).
      for (const name of ['SITE.A.org', 'SITE.B.org']) await upsertSite(t.db, { name });
      ids = await submit(carol, {
        jdls: [
          jdl({ JobName: 'alpha', JobGroup: 'g1' }),
          jdl({ JobName: 'beta', JobGroup: 'g1', Site: 'SITE.A.org' }),
          jdl({ JobName: 'gamma', JobGroup: 'g2', Site: 'SITE.B.org' }),
          jdl({ JobName: 'delta', JobGroup: 'g2' }),
          jdl({ JobName: 'epsilon', JobGroup: 'g2' }),
        ],
      });
    });

    type Page = { jobs: { id: number; jobName: string; owner: string; status: string }[]; total: number; limit: number; offset: number };
    const list = async (token: string, qs: string) => {
      const res = await t.call('GET', `/api/jobs?${qs}`, token);
      expect(res.statusCode, res.body).toBe(200);
      return res.json<Page>();
    };

    it('a user sees only their own jobs, newest first', async () => {
      const page = await list(carol, '');
      expect(page.total).toBe(5);
      expect(page.jobs.every((j) => j.owner === 'carol')).toBe(true);
      expect(page.jobs.map((j) => j.id)).toEqual([...ids].reverse());
    });

    it('filters: job group, site, status, search', async () => {
      expect((await list(carol, 'group=g1')).jobs.map((j) => j.jobName).sort()).toEqual(['alpha', 'beta']);
      expect((await list(carol, 'site=SITE.B.org')).jobs.map((j) => j.jobName)).toEqual(['gamma']);
      expect((await list(carol, 'status=Waiting')).total).toBe(5);
      expect((await list(carol, 'status=Running&status=Done')).total).toBe(0);
      expect((await list(carol, 'search=delta')).jobs.map((j) => j.jobName)).toEqual(['delta']);
    });

    it('date range', async () => {
      const future = new Date(Date.now() + 3600_000).toISOString();
      const past = new Date(Date.now() - 3600_000).toISOString();
      expect((await list(carol, `since=${encodeURIComponent(future)}`)).total).toBe(0);
      expect((await list(carol, `since=${encodeURIComponent(past)}&until=${encodeURIComponent(future)}`)).total).toBe(5);
    });

    it('paging', async () => {
      const p1 = await list(carol, 'limit=2');
      const p2 = await list(carol, 'limit=2&offset=2');
      const p3 = await list(carol, 'limit=2&offset=4');
      expect([p1.jobs.length, p2.jobs.length, p3.jobs.length]).toEqual([2, 2, 1]);
      expect(p1.total).toBe(5);
      expect(new Set([...p1.jobs, ...p2.jobs, ...p3.jobs].map((j) => j.id)).size).toBe(5);
      expect(p2).toMatchObject({ limit: 2, offset: 2 });
    });

    it('owner filter: admins only', async () => {
      const forbidden = await t.call('GET', '/api/jobs?owner=alice', carol);
      expect(forbidden.statusCode).toBe(403);
      expect((await list(admin, 'owner=carol')).total).toBe(5);
      expect((await list(carol, 'owner=carol')).total).toBe(5);
    });

    it('a bad status is a validation error naming the parameter', async () => {
      const res = await t.call('GET', '/api/jobs?status=Sleeping', carol);
      expect(res.statusCode).toBe(400);
      const body = res.json<{ code: string; problems: Problem[] }>();
      expect(body.code).toBe('WMS_VALIDATION');
      expect(body.problems.some((p) => p.path?.startsWith('querystring/status'))).toBe(true);
    });

    it('summary counts by status', async () => {
      const res = await t.call('GET', '/api/jobs/summary', carol);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ counts: { Waiting: 5 }, total: 5 });
    });
  });

  describe('bulk actions answer per job', () => {
    it('kill: own jobs succeed, unknown and foreign jobs fail as not found', async () => {
      const ids = await submit(alice, { jdls: [jdl(), jdl()] });
      const [bobs] = await submit(bob, { jdl: jdl() });
      const res = await t.call('POST', '/api/jobs/kill', alice, { ids: [...ids, bobs, 99999999] });
      expect(res.statusCode).toBe(200);
      const r = res.json<{ succeeded: number[]; failed: { id: number; code: string; message: string }[] }>();
      expect(r.succeeded.sort()).toEqual([...ids].sort());
      expect(r.failed.map((f) => [f.id, f.code]).sort()).toEqual(
        [
          [bobs, 'WMS_JOB_NOT_FOUND'],
          [99999999, 'WMS_JOB_NOT_FOUND'],
        ].sort(),
      );
      const status = await t.call('GET', `/api/jobs/${ids[0]}`, alice);
      expect(status.json<{ status: string }>().status).toBe('Killed');
      const bobsJob = await t.call('GET', `/api/jobs/${bobs}`, bob);
      expect(bobsJob.json<{ status: string }>().status).toBe('Waiting');
    });

    it('kill twice: the second skips the job (already final), it is not a failure', async () => {
      const [id] = await submit(alice, { jdl: jdl() });
      await t.call('POST', '/api/jobs/kill', alice, { ids: [id] });
      const again = await t.call('POST', '/api/jobs/kill', alice, { ids: [id] });
      expect(again.statusCode).toBe(200);
      const r = again.json<{ succeeded: number[]; failed: unknown[]; skipped: number; skippedByStatus: Record<string, number> }>();
      expect(r.succeeded).toEqual([]);
      expect(r.failed).toEqual([]);
      expect(r.skipped).toBe(1);
      expect(r.skippedByStatus['Killed']).toBe(1);
    });

    it('delete', async () => {
      const [id] = await submit(alice, { jdl: jdl() });
      const res = await t.call('POST', '/api/jobs/delete', alice, { ids: [id] });
      expect(res.json<{ succeeded: number[] }>().succeeded).toEqual([id]);
      const job = await t.call('GET', `/api/jobs/${id}`, alice);
      expect(job.json<{ status: string }>().status).toBe('Deleted');
    });

    it('reschedule 3 times is fine, the 4th makes the job Failed', async () => {
      const [id] = await submit(alice, { jdl: jdl() });
      for (let i = 1; i <= 3; i++) {
        const res = await t.call('POST', '/api/jobs/reschedule', alice, { ids: [id] });
        expect(res.json<{ succeeded: number[] }>().succeeded).toEqual([id]);
        const job = (await t.call('GET', `/api/jobs/${id}`, alice)).json<{ status: string; rescheduleCounter: number }>();
        expect(job.rescheduleCounter).toBe(i);
        expect(job.status).not.toBe('Failed');
      }
      await t.call('POST', '/api/jobs/reschedule', alice, { ids: [id] });
      const job = (await t.call('GET', `/api/jobs/${id}`, alice)).json<{ status: string; minorStatus: string }>();
      expect(job.status).toBe('Failed');
      expect(job.minorStatus).toBe('Maximum of reschedulings reached');
    });

    it('an empty id list is a validation error', async () => {
      const res = await t.call('POST', '/api/jobs/kill', alice, { ids: [] });
      expect(res.statusCode).toBe(400);
      expect(res.json<{ code: string }>().code).toBe('WMS_VALIDATION');
    });
  });

  describe('ownership', () => {
    let alicesJob: number;
    beforeAll(async () => {
      [alicesJob] = (await submit(alice, { jdl: jdl({ JobName: 'private' }) })) as [number];
    });

    it('another user cannot see a job: 404, as if it did not exist', async () => {
      for (const path of ['', '/history', '/parameters']) {
        const res = await t.call('GET', `/api/jobs/${alicesJob}${path}`, bob);
        expect(res.statusCode, path).toBe(404);
        expect(res.json<{ code: string }>().code).toBe('WMS_JOB_NOT_FOUND');
      }
      const list = await t.call('GET', '/api/jobs?search=private', bob);
      expect(list.json<{ total: number }>().total).toBe(0);
    });

    it('another user cannot touch it', async () => {
      for (const action of ['kill', 'reschedule', 'delete']) {
        const res = await t.call('POST', `/api/jobs/${action}`, bob, { ids: [alicesJob] });
        expect(res.json<{ failed: { id: number; code: string }[] }>().failed).toMatchObject([{ id: alicesJob, code: 'WMS_JOB_NOT_FOUND' }]);
      }
      const job = await t.call('GET', `/api/jobs/${alicesJob}`, alice);
      expect(job.json<{ status: string }>().status).toBe('Waiting');
    });

    it('an admin sees and acts on every job', async () => {
      const res = await t.call('GET', `/api/jobs/${alicesJob}`, admin);
      expect(res.statusCode).toBe(200);
      const all = await t.call('GET', '/api/jobs?limit=1000', admin);
      const owners = new Set(all.json<{ jobs: { owner: string }[] }>().jobs.map((j) => j.owner));
      expect(owners.has('alice') && owners.has('bob')).toBe(true);
      const kill = await t.call('POST', '/api/jobs/kill', admin, { ids: [alicesJob] });
      expect(kill.json<{ succeeded: number[] }>().succeeded).toEqual([alicesJob]);
    });

    it('a job token reads its own job only', async () => {
      const [mine, other] = await submit(alice, { jdls: [jdl(), jdl()] });
      const jobToken = await t.tokenFor({ role: 'job', user: 'alice', vo: 'vo1', group: 'vo1_user', jobId: mine!, pilotId: null });
      expect((await t.call('GET', `/api/jobs/${mine}`, jobToken)).statusCode).toBe(200);
      const res = await t.call('GET', `/api/jobs/${other}`, jobToken);
      expect(res.statusCode).toBe(403);
      expect(res.json<{ code: string }>().code).toBe('WMS_FORBIDDEN');
      expect((await t.call('POST', '/api/jobs/kill', jobToken, { ids: [mine] })).statusCode).toBe(403);
    });
  });
});
