/**
 * Issue 9, point 5: identity is the pair (VO, user). `alice` of VO atlas and `alice` of VO lhcb
 * are two users: each gets 404 for the other's jobs (every read: detail with the JDL, status,
 * history, parameters, heartbeats, explain, outputs; every action: kill, reschedule, delete, and
 * the other's job is unchanged afterwards), cannot list or count them, cannot download the
 * other's sandboxes nor reference them in a JDL (submission refused, nothing stored), her job
 * token reads only her job's sandboxes, her accounting and usage are her VO's, and her event
 * subscription never carries the other's job. Her own jobs keep working throughout.
 *
 * API level (`createTestApp`) on PGlite and on PostgreSQL (`describeDb`); the events websocket
 * with a real undici client on a random port; pilots' and agents' parts through the db functions
 * they use.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as tarCreate } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assignSandboxes, createPilots, matchJob, recordHeartbeat, reportJobStatus, type DbHandle } from '../../db/index.js';
import { countJobs, createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';
import { EventClient } from '../helpers/events.js';

/** A real tar.gz holding one file. */
async function tarGz(name: string, text: string): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'wms-vo-sb-'));
  try {
    await writeFile(join(dir, name), text);
    await tarCreate({ gzip: true, cwd: dir, file: join(dir, 'a.tar.gz'), portable: true }, [name]);
    return await readFile(join(dir, 'a.tar.gz'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function jdlWith(name: string, sandboxes: string[] = []): string {
  const sb = sandboxes.length > 0 ? `\n  InputSandbox = {${sandboxes.map((s) => `"SB:${s}"`).join(', ')}};` : '';
  return `[\n  Executable = "run.sh";\n  JobName = "${name}";${sb}\n]`;
}

async function history(db: DbHandle, id: number): Promise<{ status: string; minor_status: string }[]> {
  return db.query('select status::text as status, minor_status from job_history where job_id = $1 order by id', [id]);
}

async function jobRow(db: DbHandle, id: number): Promise<Record<string, unknown>> {
  const [r] = await db.query<Record<string, unknown>>(
    'select status::text as status, minor_status, reschedule_counter, pilot_id from jobs where id = $1',
    [id],
  );
  return r!;
}

describeDb('identity is (VO, user): alice of atlas and alice of lhcb', (ctx) => {
  let t: TestApp;
  let url: string;
  let atlas: string; // alice of atlas
  let lhcb: string; // alice of lhcb
  let atlasPilot: number;
  let lhcbPilot: number;
  /** atlas's jobs: A1 running (matched, heartbeats, parameters, an output), A2 waiting. */
  let A1: number;
  let A2: number;
  /** lhcb's jobs: L1 waiting with an input sandbox, L2 waiting. */
  let L1: number;
  let L2: number;
  let atlasInput: string;
  let atlasOutput: string;
  let lhcbInput: string;
  const clients: EventClient[] = [];

  const submit = async (token: string, jdl: string): Promise<number> => {
    const r = await t.call('POST', '/api/jobs', token, { jdl });
    expect(r.statusCode, r.body).toBe(201);
    return r.json<{ jobIds: number[] }>().jobIds[0]!;
  };
  const upload = async (token: string, body: Buffer): Promise<string> => {
    const hash = sha(body);
    const r = await t.call('PUT', `/api/sandboxes/${hash}`, token, body, { 'content-type': 'application/gzip' });
    expect(r.statusCode, r.body).toBe(201);
    return hash;
  };
  const resource = (vo: string, site: string) => ({
    site,
    tags: [],
    requiredTags: [],
    processors: 1,
    ramMb: 4096,
    gpus: 0,
    cpuWork: 10_000_000,
    vo,
  });

  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
    url = `${(await t.app.listen({ host: '127.0.0.1', port: 0 })).replace(/^http/, 'ws')}/api/events`;
    atlas = await t.user('alice', 'atlas');
    lhcb = await t.user('alice', 'lhcb');
    [atlasPilot, lhcbPilot] = (await createPilots(t.db, [
      { stamp: 'vo-atlas-pilot', site: 'LCG.Atlas.org', ce: 'ce.atlas.org', ceType: 'local', queue: 'q', queueId: null, vo: 'atlas' },
      { stamp: 'vo-lhcb-pilot', site: 'LCG.Lhcb.org', ce: 'ce.lhcb.org', ceType: 'local', queue: 'q', queueId: null, vo: 'lhcb' },
    ])) as [number, number];

    atlasInput = await upload(atlas, await tarGz('input.txt', 'atlas private input'));
    lhcbInput = await upload(lhcb, await tarGz('input.txt', 'lhcb private input'));

    // A1: atlas's job, matched by an atlas pilot, running, with a heartbeat, parameters, an output.
    A1 = await submit(atlas, jdlWith('atlas-running', [atlasInput]));
    const m = await matchJob(t.db, resource('atlas', 'LCG.Atlas.org'), { pilotId: atlasPilot });
    expect(m?.id).toBe(A1);
    expect(
      await reportJobStatus(
        t.db,
        A1,
        atlasPilot,
        { status: 'Running', minorStatus: 'Application', parameters: { Secret: 'atlas-only' } },
        'JobWrapper',
      ),
    ).toMatchObject({ accepted: true });
    expect(await recordHeartbeat(t.db, A1, atlasPilot, { cpuSeconds: 1, wallSeconds: 2, rssMb: 3 }, 'Watchdog')).toMatchObject({
      held: true,
    });
    atlasOutput = await upload(atlas, await tarGz('output.txt', 'atlas private output'));
    await assignSandboxes(t.db, A1, 'Output', [atlasOutput]);

    A2 = await submit(atlas, jdlWith('atlas-waiting'));
    L1 = await submit(lhcb, jdlWith('lhcb-with-input', [lhcbInput]));
    L2 = await submit(lhcb, jdlWith('lhcb-waiting'));
  });
  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await t?.close();
  });

  describe("reads: the other alice's job is 404, her own is there", () => {
    const reads = (id: number) => [
      `/api/jobs/${id}`,
      `/api/jobs/${id}/history`,
      `/api/jobs/${id}/parameters`,
      `/api/jobs/${id}/heartbeats`,
      `/api/jobs/${id}/explain`,
      `/api/jobs/${id}/output`,
    ];

    it("alice of lhcb gets 404 WMS_JOB_NOT_FOUND on every read of atlas's jobs (JDL, history, heartbeats, explain, outputs)", async () => {
      for (const id of [A1, A2]) {
        for (const path of reads(id)) {
          const r = await t.call('GET', path, lhcb);
          expect(r.statusCode, `${path}: ${r.body}`).toBe(404);
          expect(r.json(), path).toMatchObject({ code: 'WMS_JOB_NOT_FOUND' });
          // Nothing of the job leaks into the refusal.
          expect(r.body).not.toContain('atlas-');
          expect(r.body).not.toContain(atlasOutput);
        }
      }
    });

    it("and alice of atlas likewise on lhcb's jobs", async () => {
      for (const id of [L1, L2]) {
        for (const path of reads(id)) {
          const r = await t.call('GET', path, atlas);
          expect(r.statusCode, `${path}: ${r.body}`).toBe(404);
        }
      }
    });

    it('each reads her own jobs in full (the same name, the right VO)', async () => {
      for (const path of reads(A1)) {
        const r = await t.call('GET', path, atlas);
        expect(r.statusCode, `${path}: ${r.body}`).toBe(200);
      }
      const detail = (await t.call('GET', `/api/jobs/${A1}`, atlas)).json<{ jdl: string; vo: string; owner: string }>();
      expect(detail).toMatchObject({ vo: 'atlas', owner: 'alice' });
      expect(detail.jdl).toContain('atlas-running');
      expect((await t.call('GET', `/api/jobs/${A1}/parameters`, atlas)).json()).toMatchObject({ parameters: { Secret: 'atlas-only' } });
      expect((await t.call('GET', `/api/jobs/${A1}/heartbeats`, atlas)).json<{ heartbeats: unknown[] }>().heartbeats).toHaveLength(1);
      expect((await t.call('GET', `/api/jobs/${A1}/output`, atlas)).json()).toMatchObject({
        sandboxes: [{ sha256: atlasOutput }],
      });
      for (const path of reads(L1)) {
        const r = await t.call('GET', path, lhcb);
        expect(r.statusCode, `${path}: ${r.body}`).toBe(200);
      }
    });

    it('the status of many: the other VO\'s ids are "notFound"', async () => {
      const r = await t.call('GET', `/api/jobs/status?ids=${A1},${A2},${L1},${L2}`, lhcb);
      expect(r.statusCode, r.body).toBe(200);
      const body = r.json<{ jobs: { id: number; vo: string }[]; notFound: number[] }>();
      expect(body.jobs.map((j) => j.id)).toEqual([L1, L2]);
      expect(body.notFound).toEqual([A1, A2]);
    });

    it("listing and counting show her VO's jobs only, with or without owner=alice", async () => {
      for (const [token, vo, ids] of [
        [lhcb, 'lhcb', [L2, L1]],
        [atlas, 'atlas', [A2, A1]],
      ] as const) {
        for (const q of ['', '?owner=alice']) {
          const list = await t.call('GET', `/api/jobs${q}`, token);
          expect(list.statusCode, list.body).toBe(200);
          const body = list.json<{ jobs: { id: number; vo: string }[]; total: number }>();
          expect(body.total).toBe(2);
          expect(body.jobs.map((j) => j.id)).toEqual(ids);
          expect(body.jobs.every((j) => j.vo === vo)).toBe(true);
          const summary = await t.call('GET', `/api/jobs/summary${q}`, token);
          expect(summary.statusCode, summary.body).toBe(200);
          expect(summary.json()).toMatchObject({ total: 2 });
        }
      }
      // An admin sees both alices.
      const all = await t.call('GET', '/api/jobs?owner=alice', await t.admin());
      expect(all.json<{ total: number }>().total).toBe(4);
    });
  });

  describe('actions: kill, reschedule and delete of the other alice\'s jobs are "not found", and change nothing', () => {
    it("each action answers WMS_JOB_NOT_FOUND per job and leaves atlas's jobs as they were", async () => {
      const before = { a1: await jobRow(t.db, A1), a2: await jobRow(t.db, A2), h1: await history(t.db, A1), h2: await history(t.db, A2) };
      const commandsBefore = await t.db.query('select id from job_commands where job_id = any($1::bigint[])', [[A1, A2]]);
      for (const action of ['kill', 'reschedule', 'delete']) {
        const r = await t.call('POST', `/api/jobs/${action}`, lhcb, { ids: [A1, A2] });
        expect(r.statusCode, r.body).toBe(200);
        expect(r.json(), action).toMatchObject({
          matched: 0,
          skipped: 0,
          succeeded: [],
          failed: [
            { id: A1, code: 'WMS_JOB_NOT_FOUND', message: `job ${A1} not found` },
            { id: A2, code: 'WMS_JOB_NOT_FOUND', message: `job ${A2} not found` },
          ],
        });
      }
      expect(await jobRow(t.db, A1)).toEqual(before.a1);
      expect(await jobRow(t.db, A2)).toEqual(before.a2);
      expect(await history(t.db, A1)).toEqual(before.h1);
      expect(await history(t.db, A2)).toEqual(before.h2);
      expect(await t.db.query('select id from job_commands where job_id = any($1::bigint[])', [[A1, A2]])).toEqual(commandsBefore);
      expect(before.a1).toMatchObject({ status: 'Running' });
      expect(before.a2).toMatchObject({ status: 'Waiting' });
    });

    it("her own jobs she may act on, in the same request as the other's", async () => {
      const extra = await submit(lhcb, jdlWith('lhcb-to-kill'));
      const r = await t.call('POST', '/api/jobs/kill', lhcb, { ids: [extra, A2] });
      expect(r.json()).toMatchObject({ succeeded: [extra], failed: [{ id: A2, code: 'WMS_JOB_NOT_FOUND' }] });
      expect(await jobRow(t.db, extra)).toMatchObject({ status: 'Killed' });
      expect(await jobRow(t.db, A2)).toMatchObject({ status: 'Waiting' });
      const del = await t.call('POST', '/api/jobs/delete', lhcb, { ids: [extra] });
      expect(del.json()).toMatchObject({ succeeded: [extra] });
    });
  });

  describe('sandboxes', () => {
    it("alice of lhcb cannot download atlas's input or output sandbox (404), each downloads her own", async () => {
      for (const hash of [atlasInput, atlasOutput]) {
        const r = await t.call('GET', `/api/sandboxes/${hash}`, lhcb);
        expect(r.statusCode, r.body).toBe(404);
        expect(r.json()).toMatchObject({ code: 'WMS_SANDBOX_NOT_FOUND' });
        expect((await t.call('GET', `/api/sandboxes/${hash}`, atlas)).statusCode).toBe(200);
      }
      expect((await t.call('GET', `/api/sandboxes/${lhcbInput}`, atlas)).statusCode).toBe(404);
      expect((await t.call('GET', `/api/sandboxes/${lhcbInput}`, lhcb)).statusCode).toBe(200);
    });

    it("a JDL of alice of lhcb naming atlas's sandbox is refused (404) and stores nothing, in every submission form", async () => {
      const jobsBefore = await countJobs(t.db);
      const linksBefore = await t.db.query('select job_id, sha256, kind from job_sandboxes order by job_id, sha256');
      const bodies: [Record<string, unknown>, string][] = [
        [{ jdl: jdlWith('steal', [atlasInput]) }, atlasInput],
        [{ jdl: jdlWith('steal-output', [atlasOutput]) }, atlasOutput],
        [{ jdl: jdlWith('mixed', [lhcbInput, atlasInput]) }, atlasInput],
        [{ jdls: [jdlWith('fine', [lhcbInput]), jdlWith('steal-2', [atlasInput])] }, atlasInput],
        [
          {
            jdl: `[\n  Executable = "run.sh";\n  Parameters = { "a", "b", "c" };\n  Arguments = "%s";\n  InputSandbox = {"SB:${atlasInput}"};\n]`,
          },
          atlasInput,
        ],
      ];
      for (const [body, named] of bodies) {
        const r = await t.call('POST', '/api/jobs', lhcb, body);
        expect(r.statusCode, `${JSON.stringify(body)}: ${r.body}`).toBe(404);
        expect(r.json()).toMatchObject({ code: 'WMS_SANDBOX_NOT_FOUND', message: expect.stringContaining(`SB:${named}`) });
      }
      expect(await countJobs(t.db)).toBe(jobsBefore);
      expect(await t.db.query('select job_id, sha256, kind from job_sandboxes order by job_id, sha256')).toEqual(linksBefore);
      // Her own sandbox she may reference.
      const own = await t.call('POST', '/api/jobs', lhcb, { jdl: jdlWith('own', [lhcbInput]) });
      expect(own.statusCode, own.body).toBe(201);
      await t.call('POST', '/api/jobs/delete', lhcb, { ids: own.json<{ jobIds: number[] }>().jobIds });
    });

    it("a job token of lhcb's job reads its own input, never atlas's sandboxes nor atlas's job", async () => {
      const m = await matchJob(t.db, resource('lhcb', 'LCG.Lhcb.org'), { pilotId: lhcbPilot });
      expect(m?.id).toBe(L1);
      const jobToken = await t.tokenFor({ role: 'job', user: 'alice', vo: 'lhcb', group: 'lhcb_user', jobId: L1, pilotId: lhcbPilot });
      const own = await t.call('GET', `/api/sandboxes/${lhcbInput}`, jobToken);
      expect(own.statusCode, own.body).toBe(200);
      for (const hash of [atlasInput, atlasOutput]) {
        const r = await t.call('GET', `/api/sandboxes/${hash}`, jobToken);
        expect(r.statusCode, r.body).toBe(404);
      }
      const other = await t.call('GET', `/api/jobs/${A1}`, jobToken);
      expect(other.statusCode, other.body).toBe(403);
      expect((await t.call('GET', `/api/jobs/${L1}`, jobToken)).statusCode).toBe(200);
      // A job token of an earlier match (minted for another pilot) reads neither the job nor its input.
      const stale = await t.tokenFor({ role: 'job', user: 'alice', vo: 'lhcb', group: 'lhcb_user', jobId: L1, pilotId: atlasPilot });
      for (const url of [`/api/jobs/${L1}`, `/api/sandboxes/${lhcbInput}`]) {
        const r = await t.call('GET', url, stale);
        expect(r.statusCode, r.body).toBe(403);
        expect(r.json<{ message: string }>().message).toMatch(/earlier match of job/);
      }
    });
  });

  describe('accounting and usage', () => {
    it("each alice's accounting and usage hold her VO's records only", async () => {
      const ended = new Date(Date.now() - 3600_000).toISOString();
      await t.db.query(
        `insert into accounting (job_id, owner, owner_group, vo, site, status, submitted_at, ended_at, cpu_seconds, wall_seconds, benchmark, normalized_cpu_seconds)
         values (900001, 'alice', 'atlas_user', 'atlas', 'LCG.Atlas.org', 'Done', $1, $1, 100, 120, 2, 200),
                (900002, 'alice', 'atlas_user', 'atlas', 'LCG.Atlas.org', 'Done', $1, $1, 100, 120, 2, 200),
                (900003, 'alice', 'lhcb_user', 'lhcb', 'LCG.Lhcb.org', 'Failed', $1, $1, 7, 9, 1, 7)`,
        [ended],
      );
      for (const by of ['user', 'vo', 'site', 'group']) {
        const r = await t.call('GET', `/api/accounting?by=${by}&since=1d`, lhcb);
        expect(r.statusCode, r.body).toBe(200);
        const rows = r.json<{ rows: { key: string; jobs: number; cpuSeconds: number }[] }>().rows;
        expect(rows, by).toHaveLength(1);
        expect(rows[0], by).toMatchObject({ jobs: 1, cpuSeconds: 7 });
      }
      const atlasRows = (await t.call('GET', '/api/accounting?by=vo&since=1d', atlas)).json<{ rows: unknown[] }>().rows;
      expect(atlasRows).toEqual([expect.objectContaining({ key: 'atlas', jobs: 2, cpuSeconds: 200 })]);

      const usage = await t.call('GET', '/api/usage', lhcb);
      expect(usage.statusCode, usage.body).toBe(200);
      const u = usage.json<{ groups: { vo: string }[]; users: { vo: string; user: string; week: { jobs: number } }[] }>();
      expect(u.users).toEqual([expect.objectContaining({ vo: 'lhcb', user: 'alice', week: expect.objectContaining({ jobs: 1 }) })]);
      expect(u.groups.every((g) => g.vo === 'lhcb')).toBe(true);
    });
  });

  describe('events', () => {
    const open = async (token: string) => {
      const c = await EventClient.open(url, token);
      clients.push(c);
      return c;
    };

    it('a subscription never carries the other alice\'s jobs, by id or as "mine"; her own it does', async () => {
      const lhcbIds = await open(lhcb);
      const lhcbMine = await open(lhcb);
      const atlasMine = await open(atlas);
      expect(await lhcbIds.subscribe({ jobs: [A1, A2, L2] })).toMatchObject({ type: 'subscribed', jobs: [L2], notFound: [A1, A2] });
      expect(await lhcbMine.subscribe({ jobs: 'mine' })).toMatchObject({ type: 'subscribed', jobs: 'mine' });
      expect(await atlasMine.subscribe({ jobs: 'mine' })).toMatchObject({ type: 'subscribed', jobs: 'mine' });
      // The current state went out for her own job only.
      expect(lhcbIds.jobIds()).toEqual([L2]);

      // Changes to both alices' jobs: atlas's A1 finishes, A2 is killed; lhcb's L2 is killed.
      expect(
        await reportJobStatus(t.db, A1, atlasPilot, { status: 'Done', minorStatus: 'Execution Complete' }, 'JobWrapper'),
      ).toMatchObject({
        accepted: true,
      });
      expect((await t.call('POST', '/api/jobs/kill', atlas, { ids: [A2] })).json()).toMatchObject({ succeeded: [A2] });
      expect((await t.call('POST', '/api/jobs/kill', lhcb, { ids: [L2] })).json()).toMatchObject({ succeeded: [L2] });

      await lhcbIds.waitFor((m) => m.type === 'job' && m['id'] === L2 && m['status'] === 'Killed');
      await lhcbMine.waitFor((m) => m.type === 'job' && m['id'] === L2 && m['status'] === 'Killed');
      await atlasMine.waitFor((m) => m.type === 'job' && m['id'] === A2 && m['status'] === 'Killed');
      await atlasMine.waitFor((m) => m.type === 'job' && m['id'] === A1 && m['status'] === 'Done');
      await new Promise((ok) => setTimeout(ok, 1000)); // a few more polls: nothing else may come
      expect(lhcbIds.jobIds()).toEqual([L2]);
      expect(lhcbMine.jobIds()).toEqual([L2]);
      expect(atlasMine.jobIds()).toEqual([A1, A2]);
    });
  });
});
