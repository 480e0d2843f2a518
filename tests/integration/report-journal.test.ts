/**
 * Issue 10, "no job lost, none run twice": reports that survive outages, and at-most-once
 * execution.
 *
 * - the services apply a repeated report (same reportId) once and answer it accepted;
 * - a retried claim (same claim id) answers the same job, never a second, also across two app
 *   instances on one PostgreSQL database and when the two copies race;
 * - a job rescheduled and matched by pilot B refuses pilot A's reports and heartbeats with
 *   JOB_NOT_HELD_CODE, and A's real job wrapper then kills its payload;
 * - a job wrapper whose services go away while its payload runs keeps its reports in its
 *   journal, heartbeats after the payload ended, and ends Done exactly once, with its output
 *   sandbox, once the services are back;
 * - the journal keeps order, retries, gives up on a 4xx, and goes on in memory on a full disk.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { JOB_NOT_HELD_CODE, type JobStatusAnswer, type JobStatusReport, type PilotConfig } from '../../core/pilot-protocol.js';
import { getJobHistory, getJobParameters, getJobs, rescheduleJobs, type DbHandle } from '../../db/index.js';
import { ApiError } from '../../io/api-error.js';
import { PilotApi, newClaimId } from '../../pilot/client.js';
import { JobAgent } from '../../pilot/job-agent.js';
import { startJob, type JobOutcome, type JobWrapperOptions } from '../../pilot/job-wrapper.js';
import { isAlive } from '../../pilot/process-tree.js';
import { pendingReports, ReportJournal } from '../../pilot/report-journal.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb, describePg } from '../helpers/db.js';
import { pilotAt, type TestPilot } from '../helpers/pilots.js';

const resource = { site: 'LCG.Test.org', ce: 'ce1.test.org', queue: 'long', cpuWork: 500_000, processors: 1, ramMb: 4096 };
const FAST = { baseMs: 20, capMs: 200 };

function jdlOf(attrs: Record<string, string | string[]>): string {
  const q = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  const lines = Object.entries(attrs).map(([k, v]) => `  ${k} = ${Array.isArray(v) ? `{ ${v.map(q).join(', ')} }` : q(v)};`);
  return `[\n${lines.join('\n')}\n]`;
}

async function submit(t: TestApp, n: number, attrs: Record<string, string | string[]> = { Executable: '/bin/true' }): Promise<number[]> {
  const res = await t.call('POST', '/api/jobs', await t.user('alice'), { jdls: Array.from({ length: n }, () => jdlOf(attrs)) });
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ jobIds: number[] }>().jobIds;
}

interface Match {
  jobId: number;
  jdl: string;
  token: string;
}

async function match(t: TestApp, p: TestPilot, claimId?: string): Promise<Match | null> {
  const res = await t.call('POST', '/api/match', p.token, claimId === undefined ? resource : { ...resource, claimId });
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ match: Match | null }>().match;
}

async function history(db: DbHandle, id: number): Promise<string[]> {
  return (await getJobHistory(db, id)).map((h) => `${h.status}/${h.minorStatus}`);
}

describeDb('reports applied once, claims answered once', (ctx) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
  });
  afterAll(async () => {
    await t?.close();
  });
  beforeEach(() => ctx.truncate());

  it('a report sent twice is applied once (one history row, parameters once) and answered accepted both times', async () => {
    const [id] = await submit(t, 1);
    const p = await pilotAt(t, { site: resource.site, ce: resource.ce });
    const m = (await match(t, p, newClaimId()))!;
    expect(m.jobId).toBe(id);
    const send = (r: JobStatusReport) => t.call('POST', `/api/jobs/${id}/status`, m.token, r);
    const running: JobStatusReport = { status: 'Running', minorStatus: 'Job Initialization', parameters: { Step: 'first' }, reportId: 1 };
    const first = await send(running);
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json<JobStatusAnswer>()).toMatchObject({ accepted: true, status: 'Running' });
    expect(first.json<JobStatusAnswer>().duplicate).toBeUndefined();
    const next = await send({ status: 'Running', minorStatus: 'Application', parameters: { Step: 'second' }, reportId: 2 });
    expect(next.json<JobStatusAnswer>()).toMatchObject({ accepted: true, status: 'Running' });

    // The first report again (its answer was lost): accepted, a duplicate, applied nowhere.
    const again = await send(running);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json<JobStatusAnswer>()).toEqual({ accepted: true, status: 'Running', duplicate: true });
    expect(await history(t.db, id!)).toEqual([
      'Received/Job accepted',
      'Waiting/Pilot Agent Submission',
      'Matched/Assigned',
      'Running/Job Initialization',
      'Running/Application',
    ]);
    expect((await getJobParameters(t.db, id!))['Step']).toBe('second');

    // A final report twice: Done once; the repeat is still answered accepted.
    const done: JobStatusReport = { status: 'Done', minorStatus: 'Execution Complete', parameters: { ExitCode: '0' }, reportId: 3 };
    expect((await send(done)).json<JobStatusAnswer>()).toMatchObject({ accepted: true, status: 'Done' });
    const doneAgain = await send(done);
    expect(doneAgain.statusCode, doneAgain.body).toBe(200);
    expect(doneAgain.json<JobStatusAnswer>()).toEqual({ accepted: true, status: 'Done', duplicate: true });
    expect((await history(t.db, id!)).filter((h) => h.startsWith('Done/'))).toHaveLength(1);
  });

  it('reports without a reportId (older pilots) are applied as they come', async () => {
    const [id] = await submit(t, 1);
    const p = await pilotAt(t, { site: resource.site, ce: resource.ce });
    const m = (await match(t, p))!;
    for (let i = 0; i < 2; i++) {
      const r = await t.call('POST', `/api/jobs/${id}/status`, m.token, { status: 'Running', minorStatus: 'Application' });
      expect(r.json<JobStatusAnswer>()).toEqual({ accepted: true, status: 'Running' });
    }
    expect((await history(t.db, id!)).filter((h) => h === 'Running/Application')).toHaveLength(2);
  });

  it('the client reads a final report refused with a dead token, in that very state, as acknowledged', async () => {
    const [id] = await submit(t, 1);
    const p = await pilotAt(t, { site: resource.site, ce: resource.ce });
    const m = (await match(t, p))!;
    const base = t.app.server.listening
      ? `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`
      : await t.app.listen({ port: 0, host: '127.0.0.1' });
    const channel = new PilotApi(base, p.token).jobChannel(id!, m.token);
    expect(await channel.setStatus({ status: 'Running', minorStatus: 'Application' })).toEqual({ accepted: true, status: 'Running' });
    expect(await channel.setStatus({ status: 'Done', minorStatus: 'Execution Complete' })).toEqual({ accepted: true, status: 'Done' });
    // Sent again without a report id: the token is dead (403) and the job is Done: acknowledged.
    expect(await channel.setStatus({ status: 'Done', minorStatus: 'Execution Complete' })).toEqual({
      accepted: true,
      status: 'Done',
      duplicate: true,
    });
    // A Failed report finding the job Done is a refusal, not an acknowledgement.
    expect(await channel.setStatus({ status: 'Failed', minorStatus: 'Application Finished With Errors' })).toEqual({
      accepted: false,
      status: 'Done',
    });
  });

  it('a claim sent again with its claim id answers the same job with a fresh token, never a second one', async () => {
    const [first, second] = await submit(t, 2);
    const p = await pilotAt(t, { site: resource.site, ce: resource.ce });
    const claimId = newClaimId();
    const a = (await match(t, p, claimId))!;
    const b = (await match(t, p, claimId))!;
    expect(a.jobId).toBe(first);
    expect(b.jobId).toBe(first);
    expect(b.token).not.toBe(a.token);
    expect((await getJobs(t.db, [second!]))[0]!.status).toBe('Waiting');
    expect((await history(t.db, first!)).filter((h) => h.startsWith('Matched/'))).toHaveLength(1);
    // Both tokens work for the job.
    const r = await t.call('POST', `/api/jobs/${first}/status`, b.token, { status: 'Running', minorStatus: 'Application', reportId: 1 });
    expect(r.json<JobStatusAnswer>()).toMatchObject({ accepted: true, status: 'Running' });
    // Once Running it is still that claim's job.
    expect((await match(t, p, claimId))!.jobId).toBe(first);
    // A new claim id is a new attempt: the next job.
    expect((await match(t, p, newClaimId()))!.jobId).toBe(second);
  });

  it("a claim id of another pilot answers nothing of that pilot's job", async () => {
    const [first, second] = await submit(t, 2);
    const a = await pilotAt(t, { site: resource.site, ce: resource.ce });
    const b = await pilotAt(t, { site: resource.site, ce: resource.ce });
    const claimId = newClaimId();
    expect((await match(t, a, claimId))!.jobId).toBe(first);
    expect((await match(t, b, claimId))!.jobId).toBe(second);
    expect((await match(t, b, claimId))!.jobId).toBe(second);
    expect(await match(t, a, newClaimId())).toBeNull();
  });

  it('a claim id that is not one is refused (400)', async () => {
    const p = await pilotAt(t, { site: resource.site, ce: resource.ce });
    const res = await t.call('POST', '/api/match', p.token, { ...resource, claimId: 'x y' });
    expect(res.statusCode).toBe(400);
  });

  it("a job rescheduled and matched by pilot B refuses pilot A's reports and heartbeats with the distinct code", async () => {
    const [id] = await submit(t, 1);
    const a = await pilotAt(t, { site: resource.site, ce: resource.ce });
    const b = await pilotAt(t, { site: resource.site, ce: resource.ce });
    const ma = (await match(t, a, newClaimId()))!;
    await t.call('POST', `/api/jobs/${id}/status`, ma.token, { status: 'Running', minorStatus: 'Application', reportId: 1 });
    expect((await rescheduleJobs(t.db, [id!], { source: 'test', maxRescheduling: 3 })).succeeded).toEqual([id]);
    // Rescheduled, not matched yet: A's token no longer holds it.
    const early = await t.call('POST', `/api/jobs/${id}/heartbeat`, ma.token, { cpuSeconds: 1, wallSeconds: 1, rssMb: 1 });
    expect(early.statusCode, early.body).toBe(409);
    expect(early.json<{ code: string }>().code).toBe(JOB_NOT_HELD_CODE);
    const mb = (await match(t, b, newClaimId()))!;
    expect(mb.jobId).toBe(id);
    const report = await t.call('POST', `/api/jobs/${id}/status`, ma.token, {
      status: 'Done',
      minorStatus: 'Execution Complete',
      reportId: 2,
    });
    expect(report.statusCode, report.body).toBe(409);
    expect(report.json<{ code: string; message: string }>()).toEqual({
      code: JOB_NOT_HELD_CODE,
      message: `job ${id} is no longer this pilot's job (rescheduled, or matched again): stop its payload`,
    });
    const beat = await t.call('POST', `/api/jobs/${id}/heartbeat`, ma.token, { cpuSeconds: 1, wallSeconds: 1, rssMb: 1 });
    expect(beat.statusCode, beat.body).toBe(409);
    expect(beat.json<{ code: string }>().code).toBe(JOB_NOT_HELD_CODE);
    // Nothing of A's was applied; B's reports are.
    expect((await getJobs(t.db, [id!]))[0]).toMatchObject({ status: 'Matched', pilotId: b.id });
    const ok = await t.call('POST', `/api/jobs/${id}/status`, mb.token, { status: 'Running', minorStatus: 'Application', reportId: 1 });
    expect(ok.json<JobStatusAnswer>()).toMatchObject({ accepted: true, status: 'Running' });
  });

  it('a heartbeat of a Matched job (its Running report still on the way) is a sign of life', async () => {
    const [id] = await submit(t, 1);
    const p = await pilotAt(t, { site: resource.site, ce: resource.ce });
    const m = (await match(t, p, newClaimId()))!;
    expect((await getJobs(t.db, [id!]))[0]!.heartbeatAt).toBeNull();
    const beat = await t.call('POST', `/api/jobs/${id}/heartbeat`, m.token, { cpuSeconds: 1, wallSeconds: 1, rssMb: 1 });
    expect(beat.json<{ status: string }>().status).toBe('Matched');
    expect((await getJobs(t.db, [id!]))[0]!.heartbeatAt).toBeInstanceOf(Date);
  });
});

describePg('claims across replicas', (ctx) => {
  let one: TestApp;
  let two: TestApp;
  let other: DbHandle;
  beforeAll(async () => {
    one = await createTestApp({ db: ctx.handle });
    other = await ctx.open();
    two = await createTestApp({ db: other });
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
  });
  beforeEach(() => ctx.truncate());

  it('a claim retried through another app instance answers the same job', async () => {
    const [first, second] = await submit(one, 2);
    const p = await pilotAt(one, { site: resource.site, ce: resource.ce });
    const token = p.token;
    const claimId = newClaimId();
    expect((await match(one, p, claimId))!.jobId).toBe(first);
    // The same pilot token works on the other replica (same database, same signing key).
    expect((await match(two, { id: p.id, token }, claimId))!.jobId).toBe(first);
    expect((await getJobs(other, [second!]))[0]!.status).toBe('Waiting');
  });

  it('copies of one claim racing on both replicas take one job between them', async () => {
    const ids = await submit(one, 20);
    const p = await pilotAt(one, { site: resource.site, ce: resource.ce });
    for (let round = 0; round < 5; round++) {
      const claimId = newClaimId();
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => match(i % 2 === 0 ? one : two, p, claimId)));
      const got = new Set(answers.map((a) => a?.jobId));
      expect(got.size, `round ${round}: ${[...got].join(', ')}`).toBe(1);
    }
    const matched = (await getJobs(one.db, ids)).filter((j) => j.status === 'Matched');
    expect(matched).toHaveLength(5);
  });
});

/** An HTTP proxy in front of the app that can be cut (`down`) or refuse reports and uploads (`reports-down`). */
class FlakyProxy {
  mode: 'up' | 'down' | 'reports-down' = 'up';
  /** The next answer to this path is lost: the request reaches the app, the answer never comes back. */
  loseAnswerOf: string | null = null;
  readonly seen: string[] = [];
  private readonly server: http.Server;
  private readonly target: URL;

  constructor(target: string) {
    this.target = new URL(target);
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const what = `${req.method} ${req.url}`;
    if (this.mode === 'down') {
      this.seen.push(`cut ${what}`);
      req.socket.destroy();
      return;
    }
    const isReport = req.method === 'PUT' || /^\/api\/jobs\/\d+\/status$/.test(req.url ?? '');
    if (this.mode === 'reports-down' && isReport) {
      this.seen.push(`503 ${what}`);
      req.resume();
      res
        .writeHead(503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ code: 'WMS_DB_UNAVAILABLE', message: 'database unavailable, retry later' }));
      return;
    }
    this.seen.push(what);
    const up = http.request(
      { host: this.target.hostname, port: this.target.port, path: req.url, method: req.method, headers: req.headers },
      (ur) => {
        if (this.loseAnswerOf !== null && req.url === this.loseAnswerOf) {
          this.loseAnswerOf = null;
          this.seen.push(`lost answer of ${what}`);
          ur.resume();
          ur.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('a real job wrapper against a real app', () => {
  let t: TestApp;
  let base: string;
  let work: string;
  beforeAll(async () => {
    t = await createTestApp();
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await t?.close();
  });
  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'wms-journal-test-'));
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  function options(logs: string[], o: Partial<JobWrapperOptions> = {}): JobWrapperOptions {
    return {
      workDir: work,
      db12: 10,
      processors: 1,
      heartbeatMs: 150,
      pollMs: 100,
      sandboxLimits: { maxEntries: 100, maxBytes: 10_000_000 },
      env: {},
      isolation: { mode: 'none', hostPath: process.env['PATH'] ?? '/usr/bin:/bin' },
      parameters: { HostName: 'test' },
      log: (line) => logs.push(line),
      killGraceMs: 1000,
      minDiskMb: 0,
      retryBackoff: FAST,
      deadline: Date.now() + 60_000,
      ...o,
    };
  }

  it('a rescheduled job matched by pilot B: pilot A is refused and its wrapper kills the payload', async () => {
    const marker = `${process.pid}${Date.now() % 100_000}`;
    const [id] = await submit(t, 1, { Executable: '/bin/sh', Arguments: `-c 'echo $$ > pid; exec sleep 3${marker}'` });
    const a = await pilotAt(t, { site: resource.site, ce: resource.ce });
    const b = await pilotAt(t, { site: resource.site, ce: resource.ce });
    const apiA = new PilotApi(base, a.token);
    const ma = (await apiA.matchUntil(resource, newClaimId(), Date.now() + 10_000)).match!;
    expect(ma.jobId).toBe(id);
    const logs: string[] = [];
    const job = startJob(
      { jobId: ma.jobId, jdl: ma.jdl, token: ma.token },
      apiA.jobChannel(ma.jobId, ma.token),
      options(logs, { heartbeatMs: 200 }),
    );
    await until('the payload runs', async () => (await getJobs(t.db, [id!]))[0]!.minorStatus === 'Application');
    await until(
      'the pid file',
      () => existsSync(join(work, String(id), 'pid')) && readFileSync(join(work, String(id), 'pid'), 'utf8').trim() !== '',
    );
    const pid = Number(readFileSync(join(work, String(id), 'pid'), 'utf8').trim());
    expect(isAlive(pid)).toBe(true);

    expect((await rescheduleJobs(t.db, [id!], { source: 'test', maxRescheduling: 3 })).succeeded).toEqual([id]);
    expect((await match(t, b, newClaimId()))!.jobId).toBe(id);

    const outcome: JobOutcome = await job.done;
    expect(outcome.status).toBe('Lost');
    expect(outcome.reason).toMatch(/no longer this pilot's job/);
    expect(isAlive(pid)).toBe(false);
    // Nothing of A's reached the job after B matched it.
    expect((await getJobs(t.db, [id!]))[0]).toMatchObject({ status: 'Matched', pilotId: b.id });
    expect(existsSync(join(work, `.reports-${id}.jsonl`))).toBe(false);
  });

  it('services away while the payload runs: reports wait in the journal, heartbeats go on, the job ends Done once with its outputs', async () => {
    const [id] = await submit(t, 1, {
      Executable: '/bin/sh',
      Arguments: `-c 'sleep 1; echo result > out.txt'`,
      OutputSandbox: ['out.txt'],
    });
    const proxy = new FlakyProxy(base);
    const via = await proxy.start();
    try {
      const p = await pilotAt(t, { site: resource.site, ce: resource.ce });
      const api = new PilotApi(via, p.token);
      api.backoff = FAST;
      const m = (await api.matchUntil(resource, newClaimId(), Date.now() + 10_000)).match!;
      expect(m.jobId).toBe(id);
      const logs: string[] = [];
      const journalFile = join(work, `.reports-${id}.jsonl`);
      // The services go away at once: not even the Running reports get through.
      proxy.mode = 'down';
      const job = startJob({ jobId: m.jobId, jdl: m.jdl, token: m.token }, api.jobChannel(m.jobId, m.token), options(logs));
      let outcome: JobOutcome | null = null;
      void job.done.then((o) => (outcome = o));

      await until('the payload ended', () => logs.some((l) => l.startsWith('payload ended')));
      // Every report so far is in the journal, in order, none answered.
      await until('the reports are in the journal', async () =>
        (await pendingReports(journalFile)).some((r) => r.minorStatus === 'Uploading Output Sandbox'),
      );
      const pending = await pendingReports(journalFile);
      expect(pending.map((r) => `${r.reportId} ${r.status}/${r.minorStatus}`)).toEqual([
        '1 Running/Job Initialization',
        '2 Running/Application',
        '3 Completing/Application Finished Successfully',
        '4 Completing/Uploading Output Sandbox',
      ]);
      expect(outcome).toBeNull();
      expect((await getJobs(t.db, [id!]))[0]!.status).toBe('Matched');

      // The network comes back but the reports' database does not (503): heartbeats get through
      // after the payload ended, and keep the job the pilot's.
      const beatsBefore = proxy.seen.filter((s) => s.startsWith(`POST /api/jobs/${id}/heartbeat`)).length;
      proxy.mode = 'reports-down';
      await until(
        'heartbeats after the payload',
        () => proxy.seen.filter((s) => s.startsWith(`POST /api/jobs/${id}/heartbeat`)).length >= beatsBefore + 3,
      );
      // Stored (the proxy counts a request before the app has answered it).
      const stored = async () =>
        (await t.db.query<{ n: number }>(`select count(*)::int as n from job_heartbeats where job_id = $1`, [id]))[0]!.n;
      await until('the heartbeats stored', async () => (await stored()) >= 3);
      expect((await getJobs(t.db, [id!]))[0]!.heartbeatAt).toBeInstanceOf(Date);
      expect(outcome).toBeNull();

      proxy.mode = 'up';
      const done = await job.done;
      expect(done).toMatchObject({ status: 'Done', exitCode: 0 });
      const h = await history(t.db, id!);
      expect(h.filter((x) => x.startsWith('Done/'))).toEqual(['Done/Execution Complete']);
      expect(h.filter((x) => x === 'Running/Job Initialization')).toHaveLength(1);
      expect(h.slice(2)).toEqual([
        'Matched/Assigned',
        'Running/Job Initialization',
        'Running/Application',
        'Completing/Application Finished Successfully',
        'Completing/Uploading Output Sandbox',
        'Completing/Output Sandbox Uploaded',
        'Done/Execution Complete',
      ]);
      const out = await t.call('GET', `/api/jobs/${id}/output`, await t.user('alice'));
      expect(out.json<{ sandboxes: unknown[] }>().sandboxes).toHaveLength(1);
      expect((await getJobParameters(t.db, id!))['OutputSandbox']).toMatch(/^SB:[0-9a-f]{64}$/);
      // Compacted: every entry answered, the journal is gone.
      expect(existsSync(journalFile)).toBe(false);
      expect(logs.some((l) => /kept in the journal/.test(l))).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('a job matched to the same pilot again while its earlier run goes on: the earlier run is killed first', async () => {
    const runs = join(work, 'runs');
    const [id] = await submit(t, 1, { Executable: '/bin/sh', Arguments: `-c 'echo $$ >> ${runs}; exec sleep 60'` });
    const p = await pilotAt(t, { site: resource.site, ce: resource.ce });
    const api = new PilotApi(base, p.token);
    api.backoff = FAST;
    const config: PilotConfig = {
      ...(await api.config()),
      slots: 2,
      pollSeconds: 0.1,
      maxPollSeconds: 0.1,
      stopAfterFailedMatches: 100_000,
      // No heartbeat comes to tell the earlier run first: only the second match can.
      heartbeatSeconds: 60,
    };
    const logs: string[] = [];
    const agent = new JobAgent({
      api,
      config,
      db12: 10,
      workDir: join(work, 'pilot'),
      startedAt: Date.now(),
      now: Date.now,
      log: (line) => logs.push(line),
      env: {},
      isolation: { mode: 'none', hostPath: process.env['PATH'] ?? '/usr/bin:/bin' },
      parameters: { HostName: 'test' },
    });
    mkdirSync(join(work, 'pilot'));
    const run = agent.run();
    const pids = () => (existsSync(runs) ? readFileSync(runs, 'utf8').trim().split('\n').filter(Boolean).map(Number) : []);
    await until('the first run', () => pids().length === 1);
    await until('Running', async () => (await getJobs(t.db, [id!]))[0]!.minorStatus === 'Application');
    const [first] = pids();
    expect((await rescheduleJobs(t.db, [id!], { source: 'test', maxRescheduling: 3 })).succeeded).toEqual([id]);
    await until('the second run', () => pids().length === 2);
    expect(isAlive(first!)).toBe(false);
    expect(isAlive(pids()[1]!)).toBe(true);
    expect(logs.some((l) => l.includes(`job ${id}: matched again while its earlier run goes on`))).toBe(true);
    await until('the second run reports', async () => (await getJobs(t.db, [id!]))[0]!.minorStatus === 'Application');
    expect((await getJobs(t.db, [id!]))[0]).toMatchObject({ status: 'Running', pilotId: p.id });
    agent.drain('test over');
    agent.killAll();
    const result = await run;
    expect(result.jobs.map((j) => j.status)).toEqual(['Killed', 'Killed']);
    expect(result.jobs[0]!.reason).toMatch(/matched again to this pilot/);
    expect(isAlive(pids()[1]!)).toBe(false);
    api.close();
  });

  it('a match whose answer is lost is retried with the same claim id and brings the same job back', async () => {
    const [first, second] = await submit(t, 2);
    const proxy = new FlakyProxy(base);
    const via = await proxy.start();
    try {
      const p = await pilotAt(t, { site: resource.site, ce: resource.ce });
      const api = new PilotApi(via, p.token);
      api.backoff = FAST;
      const claimId = newClaimId();
      // The first try reaches the services and claims, but its answer is lost on the way back.
      proxy.loseAnswerOf = '/api/match';
      const answer = await api.matchUntil(resource, claimId, Date.now() + 10_000);
      expect(proxy.seen).toContain('lost answer of POST /api/match');
      expect(answer.match!.jobId).toBe(first);
      expect(proxy.seen.filter((s) => s === 'POST /api/match').length).toBe(2);
      expect((await getJobs(t.db, [first!, second!])).map((j) => j.status)).toEqual(['Matched', 'Waiting']);
    } finally {
      await proxy.close();
    }
  });
});

describe('the report journal', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wms-journal-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const report = (minorStatus: string): JobStatusReport => ({ status: 'Running', minorStatus });

  it('sends in order, one at a time, retries failures on the way, and removes its file once all are answered', async () => {
    const sent: string[] = [];
    let failures = 3;
    let inFlight = 0;
    const j = new ReportJournal({
      dir,
      jobId: 7,
      deadline: Date.now() + 10_000,
      backoff: FAST,
      log: () => undefined,
      send: async (r) => {
        inFlight++;
        expect(inFlight).toBe(1);
        await sleep(5);
        inFlight--;
        if (failures-- > 0) throw new ApiError('cannot reach', 0);
        sent.push(`${r.reportId} ${r.minorStatus}`);
        return { accepted: true, status: 'Running' };
      },
    });
    const results = await Promise.all(['a', 'b', 'c'].map((m) => j.append(report(m))));
    expect(results.map((r) => r.kind)).toEqual(['acked', 'acked', 'acked']);
    expect(sent).toEqual(['1 a', '2 b', '3 c']);
    expect(existsSync(j.file)).toBe(true);
    await j.close();
    expect(existsSync(j.file)).toBe(false);
  });

  it('a 4xx is final for its entry; the next ones are still sent; the deadline ends retries', async () => {
    const sent: number[] = [];
    const j = new ReportJournal({
      dir,
      jobId: 8,
      deadline: Date.now() + 300,
      backoff: FAST,
      log: () => undefined,
      send: async (r) => {
        sent.push(r.reportId!);
        if (r.reportId === 1) throw new ApiError('refused', 400, 'WMS_VALIDATION');
        if (r.reportId === 3) throw new ApiError('away', 503);
        return { accepted: true, status: 'Running' };
      },
    });
    const [one, two, three] = await Promise.all([j.append(report('a')), j.append(report('b')), j.append(report('c'))]);
    expect(one).toMatchObject({ kind: 'failed' });
    expect(two).toMatchObject({ kind: 'acked' });
    expect(three).toMatchObject({ kind: 'failed' });
    expect(sent.filter((n) => n === 1)).toHaveLength(1);
    expect(sent.filter((n) => n === 3).length).toBeGreaterThan(1);
  });

  it('keeps the unanswered reports on disk, readable after a crash', async () => {
    const j = new ReportJournal({
      dir,
      jobId: 9,
      deadline: Date.now() + 60_000,
      backoff: FAST,
      log: () => undefined,
      send: () => new Promise(() => undefined),
    });
    void j.append(report('a'));
    void j.append(report('b'));
    await until('written', async () => (await pendingReports(j.file)).length === 2);
    expect((await pendingReports(j.file)).map((r) => [r.reportId, r.minorStatus])).toEqual([
      [1, 'a'],
      [2, 'b'],
    ]);
    j.abort();
  });

  it('on a full disk (ENOSPC) it logs once and goes on in memory: nothing lost, nothing blocked', async () => {
    const mnt = join(dir, 'tiny');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    try {
      // Fill the file system to the last byte.
      try {
        writeFileSync(join(mnt, 'fill'), Buffer.alloc(2 * 1024 * 1024));
      } catch (e) {
        expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
      }
      const logs: string[] = [];
      const sent: string[] = [];
      const j = new ReportJournal({
        dir: mnt,
        jobId: 10,
        deadline: Date.now() + 10_000,
        backoff: FAST,
        log: (l) => logs.push(l),
        send: async (r) => {
          sent.push(`${r.reportId} ${r.minorStatus}`);
          return { accepted: true, status: 'Running' };
        },
      });
      const results = await Promise.all(['a', 'b', 'c'].map((m) => j.append({ ...report(m), parameters: { Big: 'x'.repeat(10_000) } })));
      expect(results.map((r) => r.kind)).toEqual(['acked', 'acked', 'acked']);
      expect(sent).toEqual(['1 a', '2 b', '3 c']);
      expect(j.inMemoryOnly).toBe('ENOSPC');
      expect(logs.filter((l) => l.includes('cannot be written'))).toHaveLength(1);
      expect(logs[0]).toContain('ENOSPC');
      await j.close();
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});
