/**
 * Issue 9, point 2: a payload that steals its pilot's token (or a job token) must not be able to
 * pose as another site, keep working after its pilot or job ended, or take other users' jobs.
 * Each attack is repeated through the API (`app.inject`), on PGlite and on PostgreSQL:
 *
 * - a stolen token of a Done pilot at a banned site cannot match (403), whatever site it names;
 * - a live pilot's token naming another site or CE matches only as its own record's place: a
 *   job pinned to LCG.CERN.ch, or another user's job pinned to another CE, is not handed out;
 * - a Done pilot cannot set itself back to Running, register, log, renew or open its websocket;
 * - a job token of a final job (Done, Killed) cannot upload output, report, heartbeat or download
 *   the input sandbox;
 * - an expired token is refused; a renewed (pilot or job) token works and the old short one expires.
 *
 * And through a whole system (real pilots, local site): a pilot whose tokens live 6 s runs a job
 * of 12 s to Done, renewing its own and the job's token on the way.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'undici';
import { resolveServiceConfig } from '../../core/config.js';
import { getJobs, setSiteBanned, updatePilots, upsertComputingElement } from '../../db/index.js';
import { createTestApp, jdl, testClock, type TestApp, type TestClock } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';
import { pilotAt } from '../helpers/pilots.js';
import { describeSystem, waitUntil } from '../helpers/system.js';

const HERE = { site: 'LCG.Here.org', ce: 'ce.here.org', queue: 'long' };
const RESOURCE = { site: HERE.site, ce: HERE.ce, queue: HERE.queue, cpuWork: 1_000_000, processors: 1, ramMb: 4096 };

interface Match {
  match: null | { jobId: number; token: string; tokenExpiresAt: string };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describeDb('stolen pilot and job tokens', (ctx) => {
  let t: TestApp;
  let alice: string;
  let bob: string;

  async function submit(token: string, attrs: Record<string, string | number> = {}): Promise<number> {
    const res = await t.call('POST', '/api/jobs', token, { jdl: jdl({ CPUTime: 3600, ...attrs }) });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<{ jobIds: number[] }>().jobIds[0]!;
  }

  async function statusOf(id: number): Promise<string> {
    const [row] = await getJobs(t.db, [id]);
    return row!.status;
  }

  /** Moves a matched job through the wrapper's reports with its job token. */
  async function report(id: number, token: string, status: string, minorStatus = 'test') {
    return t.call('POST', `/api/jobs/${id}/status`, token, { status, minorStatus });
  }

  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
    alice = await t.user('alice');
    bob = await t.user('bob');
    await upsertComputingElement(t.db, { site: 'LCG.Banned.org', name: 'ce.banned.org', type: 'slurm' });
    await setSiteBanned(t.db, 'LCG.Banned.org', true, 'compromised');
    // The sites jobs are pinned to below, registered as submission requires.
    await upsertComputingElement(t.db, { site: 'LCG.CERN.ch', name: 'ce.cern.ch', type: 'slurm' });
    await upsertComputingElement(t.db, { site: 'LCG.Other.org', name: 'ce.other.org', type: 'slurm' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a stolen token of a Done pilot at a banned site cannot match, whatever site it names', async () => {
    const id = await submit(bob);
    const dead = await pilotAt(t, { site: 'LCG.Banned.org', ce: 'ce.banned.org', status: 'Done' });
    for (const body of [
      RESOURCE,
      { ...RESOURCE, site: 'LCG.Invented.org', ce: 'ce.invented.org' },
      { ...RESOURCE, site: 'LCG.Banned.org' },
    ]) {
      const res = await t.call('POST', '/api/match', dead.token, body);
      expect(res.statusCode, res.body).toBe(403);
      expect(res.json()).toMatchObject({ code: 'WMS_FORBIDDEN', message: `pilot ${dead.id} is Done: its token no longer works` });
    }
    const explain = await t.call('POST', '/api/match/explain', dead.token, RESOURCE);
    expect(explain.statusCode).toBe(403);
    // Nothing was taken: the job still waits, and a live pilot gets it.
    expect(await statusOf(id)).toBe('Waiting');
    const live = await pilotAt(t, HERE);
    expect((await t.call('POST', '/api/match', live.token, RESOURCE)).json<Match>().match?.jobId).toBe(id);
  });

  it('a pilot token without a pilot record cannot match', async () => {
    const orphan = await t.pilot(987_654);
    const res = await t.call('POST', '/api/match', orphan, RESOURCE);
    expect(res.statusCode).toBe(403);
    expect(res.json<{ message: string }>().message).toBe('pilot 987654 has no record: its token no longer works');
  });

  it('a pilot whose place this process remembers is refused once final (checked in the claim)', async () => {
    const p = await pilotAt(t, HERE);
    expect((await t.call('POST', '/api/match', p.token, RESOURCE)).statusCode).toBe(200); // its place is cached now
    await updatePilots(t.db, [p.id], { status: 'Aborted', reason: 'lost by the batch system' });
    const id = await submit(bob);
    const res = await t.call('POST', '/api/match', p.token, RESOURCE);
    expect(res.statusCode, res.body).toBe(403);
    expect(res.json<{ message: string }>().message).toBe(`pilot ${p.id} is Aborted: its token no longer works`);
    expect(await statusOf(id)).toBe('Waiting');
    await t.call('POST', '/api/match', (await pilotAt(t, HERE)).token, RESOURCE); // tidy: take it
  });

  it('a live pilot at a banned site gets nothing, even naming an allowed site', async () => {
    const id = await submit(bob);
    const banned = await pilotAt(t, { site: 'LCG.Banned.org', ce: 'ce.banned.org' });
    const res = await t.call('POST', '/api/match', banned.token, { ...RESOURCE, site: HERE.site, ce: HERE.ce });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ match: null });
    expect(await statusOf(id)).toBe('Waiting');
    await t.call('POST', '/api/match', (await pilotAt(t, HERE)).token, RESOURCE); // tidy: take it
  });

  it("a live pilot's token naming another site or CE matches only as its own place", async () => {
    // bob's job pinned to CERN, and alice's job pinned to a CE of another site.
    const cern = await submit(bob, { Site: 'LCG.CERN.ch' });
    const pinnedCe = await submit(alice, { Site: 'LCG.Other.org', GridCE: 'ce.other.org' });
    const thief = await pilotAt(t, HERE);
    const asCern = await t.call('POST', '/api/match', thief.token, { ...RESOURCE, site: 'LCG.CERN.ch', ce: 'ce.cern.ch', queue: 'grid' });
    expect(asCern.statusCode).toBe(200);
    expect(asCern.json()).toEqual({ match: null });
    const asOther = await t.call('POST', '/api/match', thief.token, { ...RESOURCE, site: 'LCG.Other.org', ce: 'ce.other.org' });
    expect(asOther.json()).toEqual({ match: null });
    expect(await statusOf(cern)).toBe('Waiting');
    expect(await statusOf(pinnedCe)).toBe('Waiting');
    // The resource explain of a pilot shows the place it is held to.
    const explained = await t.call('POST', '/api/match/explain', thief.token, { ...RESOURCE, site: 'LCG.CERN.ch' });
    expect(explained.statusCode).toBe(200);
    expect(explained.json<{ resource: { site: string; ce: string } }>().resource).toMatchObject({ site: HERE.site, ce: HERE.ce });

    // Pilots really at those places get them, whatever their body says.
    const atCern = await pilotAt(t, { site: 'LCG.CERN.ch', ce: 'ce.cern.ch' });
    expect((await t.call('POST', '/api/match', atCern.token, RESOURCE)).json<Match>().match?.jobId).toBe(cern);
    const atOther = await pilotAt(t, { site: 'LCG.Other.org', ce: 'ce.other.org' });
    expect((await t.call('POST', '/api/match', atOther.token, RESOURCE)).json<Match>().match?.jobId).toBe(pinnedCe);
    // Admins debugging the matcher may still name a place.
    const other = await submit(bob, { Site: 'LCG.CERN.ch' });
    const byAdmin = await t.call('POST', '/api/match', await t.admin(), { ...RESOURCE, site: 'LCG.CERN.ch' });
    expect(byAdmin.json<Match>().match?.jobId).toBe(other);
  });

  it('a Done pilot cannot set itself back to Running, nor register, log, renew, read its config or listen', async () => {
    const p = await pilotAt(t, HERE);
    const done = await t.call('POST', '/api/pilots/self/status', p.token, { status: 'Done', reason: 'finished', exitCode: 0 });
    expect(done.statusCode, done.body).toBe(200);
    expect(done.json()).toEqual({ status: 'Done' });
    const message = `pilot ${p.id} is Done: its token no longer works`;
    const attempts = [
      t.call('POST', '/api/pilots/self/status', p.token, { status: 'Running', reason: 'back from the dead' }),
      t.call('POST', '/api/pilots/self/register', p.token, {
        environment: {
          hostname: 'h',
          os: 'linux',
          kernel: '',
          cpuModel: '',
          cores: 1,
          memoryMb: 1,
          workDir: '/tmp',
          fsType: 'ext4',
          diskFreeMb: 1000,
          gpus: [],
          nodeVersion: 'v20',
          batchSystem: 'local',
          batchJobId: null,
        },
        clockOffsetSeconds: 0,
        benchmark: 10,
      }),
      t.call('POST', '/api/pilots/self/logs', p.token, { lines: [{ at: Date.now(), line: 'forged' }] }),
      t.call('POST', '/api/pilots/self/token', p.token),
      t.call('GET', '/api/pilots/self/config', p.token),
      t.call('POST', '/api/match', p.token, RESOURCE),
    ];
    for (const res of await Promise.all(attempts)) {
      expect(res.statusCode, res.body).toBe(403);
      expect(res.json<{ message: string }>().message).toBe(message);
    }
    const pilot = await t.call('GET', `/api/pilots/${p.id}`, await t.admin());
    expect(pilot.json()).toMatchObject({ status: 'Done', statusReason: 'finished' });
    const logs = await t.call('GET', `/api/pilots/${p.id}/logs`, await t.admin());
    expect(logs.json<{ lines: unknown[] }>().lines).toEqual([]);
  });

  it('a Done pilot cannot open its websocket; a live one can', async () => {
    const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const url = `${address.replace(/^http/, 'ws')}/api/pilots/self/ws`;
    const open = (token: string) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } } as unknown as string[]);
        ws.addEventListener('open', () => {
          ws.close();
          resolve('open');
        });
        ws.addEventListener('error', () => resolve('refused'));
      });
    const live = await pilotAt(t, HERE);
    expect(await open(live.token)).toBe('open');
    const dead = await pilotAt(t, HERE);
    await t.call('POST', '/api/pilots/self/status', dead.token, { status: 'Failed', reason: 'x' });
    expect(await open(dead.token)).toBe('refused');
  });

  describe('job tokens die with their job', () => {
    let input: { hash: string; body: Buffer };
    beforeAll(async () => {
      const body = gzipSync(Buffer.from('private input of bob'));
      input = { hash: sha(body), body };
      const up = await t.call('PUT', `/api/sandboxes/${input.hash}`, bob, body, { 'content-type': 'application/gzip' });
      expect(up.statusCode, up.body).toBe(201);
    });

    async function matched(): Promise<{ id: number; token: string }> {
      const id = await submit(bob, { InputSandbox: `SB:${input.hash}` });
      const m = (await t.call('POST', '/api/match', (await pilotAt(t, HERE)).token, RESOURCE)).json<Match>().match;
      expect(m?.jobId).toBe(id);
      return { id, token: m!.token };
    }

    /** Every job-token route, with `token` for job `id`; answers the status codes. */
    async function everyRoute(id: number, token: string): Promise<Record<string, number>> {
      const out = gzipSync(Buffer.from('forged output'));
      return {
        report: (await report(id, token, 'Running')).statusCode,
        heartbeat: (await t.call('POST', `/api/jobs/${id}/heartbeat`, token, { cpuSeconds: 1, wallSeconds: 1, rssMb: 1 })).statusCode,
        download: (await t.call('GET', `/api/sandboxes/${input.hash}`, token)).statusCode,
        upload: (await t.call('PUT', `/api/sandboxes/${sha(out)}`, token, out, { 'content-type': 'application/gzip' })).statusCode,
      };
    }

    it('works while the job runs', async () => {
      const { id, token } = await matched();
      expect(await everyRoute(id, token)).toEqual({ report: 200, heartbeat: 200, download: 200, upload: 201 });
    });

    it('a Done job: no output, no report, no heartbeat, no input download (403)', async () => {
      const { id, token } = await matched();
      expect((await report(id, token, 'Running')).statusCode).toBe(200);
      const done = await report(id, token, 'Done', 'Execution Complete');
      expect(done.statusCode, done.body).toBe(200);
      expect(done.json()).toMatchObject({ accepted: true, status: 'Done' });
      expect(await everyRoute(id, token)).toEqual({ report: 403, heartbeat: 403, download: 403, upload: 403 });
      const res = await report(id, token, 'Rescheduled');
      expect(res.json()).toMatchObject({ code: 'WMS_FORBIDDEN', message: `job ${id} is Done: its job token no longer works` });
      expect(await statusOf(id)).toBe('Done');
      const outputs = await t.call('GET', `/api/jobs/${id}/output`, bob);
      expect(outputs.json<{ sandboxes: unknown[] }>().sandboxes).toEqual([]);
    });

    it('a Killed job: its token is refused at once', async () => {
      const { id, token } = await matched();
      expect((await report(id, token, 'Running')).statusCode).toBe(200);
      const kill = await t.call('POST', '/api/jobs/kill', bob, { ids: [id] });
      expect(kill.statusCode, kill.body).toBe(200);
      expect(await statusOf(id)).toBe('Killed');
      expect(await everyRoute(id, token)).toEqual({ report: 403, heartbeat: 403, download: 403, upload: 403 });
    });
  });

  describe('lifetimes', () => {
    let c: TestClock;
    let tc: TestApp;
    beforeAll(async () => {
      c = testClock(new Date());
      tc = await createTestApp({ db: ctx.handle, clock: c });
    });
    afterAll(async () => {
      await tc?.close();
    });

    it('defaults: job and registered-pilot tokens live 1 h; the wrapper token days', () => {
      const d = resolveServiceConfig({ env: {} }).tokens;
      expect(d.jobTtlSeconds).toBe(3600);
      expect(d.pilotSessionTtlSeconds).toBe(3600);
      expect(d.pilotTtlSeconds).toBeGreaterThanOrEqual(86_400);
    });

    it('an expired token is refused', async () => {
      const p = await pilotAt(tc, { ...HERE, ttlSeconds: 60 });
      expect((await tc.call('GET', '/api/pilots/self/config', p.token)).statusCode).toBe(200);
      c.advance(61_000);
      const res = await tc.call('GET', '/api/pilots/self/config', p.token);
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ code: 'WMS_AUTH_INVALID', message: 'invalid token: token expired' });
    });

    it('a pilot renews its short token at half-life; the old short one expires, the new one works', async () => {
      const p = await pilotAt(tc, { ...HERE, status: 'Submitted', ttlSeconds: 7 * 86_400 });
      const reg = await tc.call('POST', '/api/pilots/self/register', p.token, {
        environment: {
          hostname: 'h',
          os: 'linux',
          kernel: '',
          cpuModel: '',
          cores: 1,
          memoryMb: 1,
          workDir: '/tmp',
          fsType: 'ext4',
          diskFreeMb: 1000,
          gpus: [],
          nodeVersion: 'v20',
          batchSystem: 'local',
          batchJobId: null,
        },
        clockOffsetSeconds: 0,
        benchmark: 10,
      });
      expect(reg.statusCode, reg.body).toBe(200);
      const first = reg.json<{ status: string; token: string; tokenExpiresAt: string }>();
      expect(first.status).toBe('Running');
      expect(Date.parse(first.tokenExpiresAt) - c().getTime()).toBeLessThanOrEqual(3600_000);
      c.advance(31 * 60_000);
      const renewed = await tc.call('POST', '/api/pilots/self/token', first.token);
      expect(renewed.statusCode, renewed.body).toBe(200);
      const second = renewed.json<{ token: string; tokenExpiresAt: string }>();
      expect(second.token).not.toBe(first.token);
      c.advance(30 * 60_000);
      expect((await tc.call('GET', '/api/pilots/self/config', first.token)).statusCode).toBe(401);
      expect((await tc.call('GET', '/api/pilots/self/config', second.token)).statusCode).toBe(200);
      expect((await tc.call('GET', '/api/tokens/self', second.token)).json()).toMatchObject({ role: 'pilot', pilotId: p.id });
    });

    it('a job token is renewed by a heartbeat past half-life; the old one expires, the new one works', async () => {
      const id = await submit(bob);
      const m = (await tc.call('POST', '/api/match', (await pilotAt(tc, HERE)).token, RESOURCE)).json<Match>().match!;
      expect(m.jobId).toBe(id);
      expect(Date.parse(m.tokenExpiresAt) - c().getTime()).toBeLessThanOrEqual(3600_000);
      const hb = { cpuSeconds: 1, wallSeconds: 1, rssMb: 1 };
      expect((await tc.call('POST', `/api/jobs/${id}/status`, m.token, { status: 'Running', minorStatus: 'Application' })).statusCode).toBe(
        200,
      );
      c.advance(10 * 60_000);
      const early = await tc.call('POST', `/api/jobs/${id}/heartbeat`, m.token, hb);
      expect(early.statusCode).toBe(200);
      expect(early.json<{ token?: string }>().token).toBeUndefined();
      c.advance(21 * 60_000);
      const late = await tc.call('POST', `/api/jobs/${id}/heartbeat`, m.token, hb);
      const renewed = late.json<{ status: string; token: string; tokenExpiresAt: string }>();
      expect(renewed.status).toBe('Running');
      expect(typeof renewed.token).toBe('string');
      expect(Date.parse(renewed.tokenExpiresAt)).toBeGreaterThan(Date.parse(m.tokenExpiresAt));
      c.advance(30 * 60_000);
      expect((await tc.call('POST', `/api/jobs/${id}/heartbeat`, m.token, hb)).statusCode).toBe(401);
      const next = await tc.call('POST', `/api/jobs/${id}/heartbeat`, renewed.token, hb);
      expect(next.statusCode, next.body).toBe(200);
      expect((await tc.call('GET', `/api/jobs/${id}`, renewed.token)).json()).toMatchObject({ id, status: 'Running' });
    });
  });
});

describeSystem(
  'short-lived tokens renewed by a real pilot',
  (sys) => {
    it('a job of 12 s runs to Done with tokens that live 6 s', async () => {
      const [id] = await sys.submit(
        '[ Executable = "/bin/sleep"; Arguments = "12"; StdOutput = "std.out"; OutputSandbox = { "std.out" }; CPUTime = 100; ]',
      );
      const job = await sys.waitForStatus(id!, ['Done', 'Failed'], 90_000);
      expect(job.status, JSON.stringify(job)).toBe('Done');
      const out = await sys.api<{ sandboxes: unknown[] }>('GET', `/api/jobs/${id}/output`, undefined, await sys.token());
      expect(out.sandboxes).toHaveLength(1);
      // The pilot's own calls (logs, its final status) went through renewed tokens too.
      const pilotId = job.pilotId as number;
      const pilot = await waitUntil(
        'the pilot to end',
        async () => {
          const p = await sys.api('GET', `/api/pilots/${pilotId}`);
          return p.status === 'Done' || p.status === 'Failed' ? p : null;
        },
        60_000,
        200,
      );
      expect(pilot.status).toBe('Done');
      const { lines } = await sys.api<{ lines: { line: string }[] }>('GET', `/api/pilots/${pilotId}/logs?limit=10000`);
      const text = lines.map((l) => l.line).join('\n');
      expect(text).toContain('pilot ends');
      // An HTTP error reads "POST /api/...: 401 ..." (a bare 401 also turns up inside hashes and times).
      expect(text).not.toMatch(/token renewal (failed|refused)|: 401 /);
    }, 150_000);
  },
  {
    config: {
      tokens: { ...resolveServiceConfig({ env: {} }).tokens, jobTtlSeconds: 6, pilotSessionTtlSeconds: 6 },
    },
  },
);
