/**
 * GET /api/jobs/:id/heartbeats through `app.inject()`: the heartbeats a job's watchdog sent
 * (through the job wrapper's own route, with a job token), newest last; capped at the last 200;
 * seen by the owner and admins, 404 for another user as for an unknown job; listed in /docs.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestApp, jdl, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

interface Beat {
  at: string;
  cpuSeconds: number;
  wallSeconds: number;
  rssMb: number;
  diskFreeMb: number | null;
  loadAverage: number | null;
}

describeDb('job heartbeats API', (ctx) => {
  let t: TestApp;
  let alice: string;
  let bob: string;
  let admin: string;
  let job: number;
  let quiet: number;

  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
    alice = await t.user('alice');
    bob = await t.user('bob');
    admin = await t.admin();
    const res = await t.call('POST', '/api/jobs', alice, { jdls: [jdl({ JobName: 'beating' }), jdl({ JobName: 'quiet' })] });
    expect(res.statusCode, res.body).toBe(201);
    [job, quiet] = res.json<{ jobIds: [number, number] }>().jobIds;
    // Three heartbeats as the job wrapper sends them (a job token of no pilot holds the job).
    const jobToken = await t.tokenFor({ role: 'job', user: 'alice', vo: 'vo1', group: 'vo1_user', jobId: job, pilotId: null });
    const beats = [
      { cpuSeconds: 1, wallSeconds: 2, rssMb: 10, diskFreeMb: 5000, loadAverage: 0.5, stdoutTail: 'one\n' },
      { cpuSeconds: 3, wallSeconds: 4, rssMb: 20 },
      { cpuSeconds: 5.5, wallSeconds: 6, rssMb: 30.25, diskFreeMb: 4900, loadAverage: 1.25, stdoutTail: 'one\ntwo\n' },
    ];
    for (const hb of beats) {
      const r = await t.call('POST', `/api/jobs/${job}/heartbeat`, jobToken, hb);
      expect(r.statusCode, r.body).toBe(200);
    }
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the owner sees the heartbeats, oldest first and newest last, with every figure', async () => {
    const res = await t.call('GET', `/api/jobs/${job}/heartbeats`, alice);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ jobId: number; heartbeats: Beat[] }>();
    expect(body.jobId).toBe(job);
    expect(body.heartbeats.map((h) => h.cpuSeconds)).toEqual([1, 3, 5.5]);
    expect(body.heartbeats[1]).toMatchObject({ wallSeconds: 4, rssMb: 20, diskFreeMb: null, loadAverage: null });
    expect(body.heartbeats[2]).toMatchObject({ wallSeconds: 6, rssMb: 30.25, diskFreeMb: 4900, loadAverage: 1.25 });
    const times = body.heartbeats.map((h) => Date.parse(h.at));
    expect(times.every((x) => Number.isFinite(x))).toBe(true);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    // The stdout peek is a parameter, not part of the heartbeats.
    const params = await t.call('GET', `/api/jobs/${job}/parameters`, alice);
    expect(params.json<{ parameters: Record<string, string> }>().parameters.StandardOutput).toBe('one\ntwo\n');
  });

  it('a job without heartbeats answers an empty list', async () => {
    const res = await t.call('GET', `/api/jobs/${quiet}/heartbeats`, alice);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ jobId: quiet, heartbeats: [] });
  });

  it('another user gets 404 WMS_JOB_NOT_FOUND, as for an unknown job; an admin sees them', async () => {
    for (const [token, id] of [
      [bob, job],
      [alice, 999_999],
    ] as const) {
      const res = await t.call('GET', `/api/jobs/${id}/heartbeats`, token);
      expect(res.statusCode, String(id)).toBe(404);
      expect(res.json<{ code: string }>().code).toBe('WMS_JOB_NOT_FOUND');
    }
    const res = await t.call('GET', `/api/jobs/${job}/heartbeats`, admin);
    expect(res.statusCode).toBe(200);
    expect(res.json<{ heartbeats: Beat[] }>().heartbeats).toHaveLength(3);
  });

  it('needs a person: no token is 401, a job token 403', async () => {
    expect((await t.call('GET', `/api/jobs/${job}/heartbeats`, null)).statusCode).toBe(401);
    const jobToken = await t.tokenFor({ role: 'job', user: 'alice', vo: 'vo1', group: 'vo1_user', jobId: job, pilotId: null });
    expect((await t.call('GET', `/api/jobs/${job}/heartbeats`, jobToken)).statusCode).toBe(403);
  });

  it('answers the last 200 at most (or the last `limit`), newest last', async () => {
    // 250 more heartbeats in one statement; cpu_seconds counts them (101..350).
    await t.db.query(
      `insert into job_heartbeats (job_id, cpu_seconds, wall_seconds, rss_mb)
       select $1::bigint, 100 + g, 100 + g, 64 from generate_series(1, 250) as g`,
      [job],
    );
    const all = await t.call('GET', `/api/jobs/${job}/heartbeats`, alice);
    const beats = all.json<{ heartbeats: Beat[] }>().heartbeats;
    expect(beats).toHaveLength(200);
    expect(beats[0]?.cpuSeconds).toBe(151);
    expect(beats.at(-1)?.cpuSeconds).toBe(350);
    const few = await t.call('GET', `/api/jobs/${job}/heartbeats?limit=5`, alice);
    expect(few.json<{ heartbeats: Beat[] }>().heartbeats.map((h) => h.cpuSeconds)).toEqual([346, 347, 348, 349, 350]);
  });

  it('a bad limit or id is a 400 that names the parameter', async () => {
    for (const url of [
      `/api/jobs/${job}/heartbeats?limit=0`,
      `/api/jobs/${job}/heartbeats?limit=201`,
      `/api/jobs/${job}/heartbeats?limit=x`,
      '/api/jobs/abc/heartbeats',
    ]) {
      const res = await t.call('GET', url, alice);
      expect(res.statusCode, url).toBe(400);
      const body = res.json<{ code: string; message: string }>();
      expect(body.code, url).toBe('WMS_VALIDATION');
      expect(body.message, url).toMatch(/limit|id/);
      expect(res.body, url).not.toMatch(/at .*\.ts:\d+/);
    }
  });

  it('is documented in /docs/json', async () => {
    const doc = (await t.call('GET', '/docs/json', null)).json<{ paths: Record<string, Record<string, unknown>> }>();
    expect(Object.keys(doc.paths['/api/jobs/{id}/heartbeats'] ?? {})).toEqual(['get']);
  });
});
