import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'drizzle-orm';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Agent } from '../../agents/agent.js';
import type { ComputingElement, PilotBackendStatus } from '../../agents/computing-elements/types.js';
import { createJobCleaningAgent } from '../../agents/job-cleaning.js';
import { createPilotStatusAgent } from '../../agents/pilot-status.js';
import { AgentRunner } from '../../agents/runner.js';
import { createStalledJobsAgent } from '../../agents/stalled-jobs.js';
import { DEFAULT_SERVICE_CONFIG, type ServiceConfig } from '../../core/config.js';
import type { JobState } from '../../core/job-states.js';
import type { PilotState } from '../../core/pilot-states.js';
import {
  getJobHistory,
  getJobs,
  listLeases,
  recordSandbox,
  reportJobStatus,
  assignSandboxes,
  submitJobs,
  sweepStalledJobs,
  tryTakeLease,
  type DbHandle,
} from '../../db/index.js';
import { describeDb, describePg } from '../helpers/db.js';
import { captureLogger } from '../helpers/logs.js';
import { makeJobs } from './fixtures.js';

const CONFIG: Readonly<ServiceConfig> = {
  ...DEFAULT_SERVICE_CONFIG,
  jobLimits: { ...DEFAULT_SERVICE_CONFIG.jobLimits, maxRescheduling: 3 },
  agentSettings: {
    ...DEFAULT_SERVICE_CONFIG.agentSettings,
    stalledJobs: { schedule: '*/30 * * * * *', stalledAfterSeconds: 30, failedAfterSeconds: 60, matchedTimeoutSeconds: 60 },
    jobCleaning: { schedule: '0 * * * * *', retentionSeconds: 50, batchSize: 3 },
    pilotStatus: { schedule: '*/30 * * * * *', unknownToAbortedSeconds: 60, silentToDeletedSeconds: 500 },
    leaseSeconds: 30,
  },
};

/** A runner whose log lines land in `extra.lines` as `msg`, prefixed `[agent] ` for an agent's. */
function runnerFor(h: DbHandle, agents: Agent[], extra: { holder?: string; lines?: string[] } = {}): AgentRunner {
  const lines = extra.lines ?? [];
  const { logger } = captureLogger({ onRecord: (r) => lines.push(typeof r['agent'] === 'string' ? `[${r['agent']}] ${r.msg}` : r.msg) });
  return new AgentRunner({ db: h, config: CONFIG, agents, logger, ...(extra.holder ? { holder: extra.holder } : {}) });
}

/** Puts jobs into a state with timestamps `ago` seconds in the past (the way a stale world looks). */
async function setJobs(
  h: DbHandle,
  ids: number[],
  s: {
    status: JobState;
    pilotId?: number | null;
    heartbeatAgo?: number | null;
    startAgo?: number | null;
    updateAgo?: number;
    counter?: number;
  },
): Promise<void> {
  const ago = (n: number | null | undefined) => (n === null || n === undefined ? null : `${n} seconds`);
  await h.query(
    `update jobs set status = $2::text::job_status, pilot_id = $3::bigint,
            heartbeat_at = now() - $4::interval, start_exec_at = now() - $5::interval,
            last_update_at = now() - coalesce($6::interval, interval '0'),
            reschedule_counter = coalesce($7::int, reschedule_counter)
      where id = any($1::bigint[])`,
    [ids, s.status, s.pilotId ?? null, ago(s.heartbeatAgo), ago(s.startAgo), ago(s.updateAgo), s.counter ?? null],
  );
}

async function addPilot(
  h: DbHandle,
  p: { status: PilotState; reference?: string | null; ce?: string; ceType?: string; updateAgo?: number; reason?: string },
): Promise<number> {
  const [row] = await h.query<{ id: number }>(
    `insert into pilots (stamp, reference, site, ce, ce_type, status, status_reason, last_update_at)
     values (md5(random()::text), $1, 'SITE-A', $2, $3, $4, $5, now() - make_interval(secs => $6::float8))
     returning id`,
    [p.reference === undefined ? null : p.reference, p.ce ?? 'ce1', p.ceType ?? 'fake', p.status, p.reason ?? '', p.updateAgo ?? 0],
  );
  return row!.id;
}

async function pilot(h: DbHandle, id: number): Promise<{ status: string; status_reason: string; exit_code: number | null }> {
  const [row] = await h.query<{ status: string; status_reason: string; exit_code: number | null }>(
    `select status, status_reason, exit_code from pilots where id = $1`,
    [id],
  );
  return row!;
}

async function job(h: DbHandle, id: number) {
  const [row] = await getJobs(h, [id]);
  return row!;
}

async function lastHistory(h: DbHandle, id: number, n = 1) {
  return (await getJobHistory(h, id)).slice(-n).map((x) => [x.status, x.minorStatus, x.source]);
}

/** A computing element of the test: reference -> status, with every call recorded. */
class FakeCe implements ComputingElement {
  readonly type = 'fake';
  readonly states = new Map<string, PilotBackendStatus>();
  readonly cleaned: string[][] = [];
  readonly cancelled: string[][] = [];
  statusCalls = 0;
  failStatus: Error | null = null;
  /** Runs inside status(), before answering (to race the agent). */
  duringStatus: (() => Promise<void>) | null = null;

  async submit() {
    return { submitted: [], failed: [] };
  }
  async status(refs: readonly string[]) {
    this.statusCalls++;
    if (this.failStatus) throw this.failStatus;
    await this.duringStatus?.();
    return new Map(refs.filter((r) => this.states.has(r)).map((r) => [r, this.states.get(r)!]));
  }
  async cancel(refs: readonly string[]) {
    this.cancelled.push([...refs]);
  }
  async cleanup(refs: readonly string[]) {
    this.cleaned.push([...refs]);
  }
  async availableSlots() {
    return null;
  }
  async close() {}
}

describeDb('agent runner', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('runOnce runs the tick under the lease and records its outcome', async () => {
    let calls = 0;
    const lines: string[] = [];
    const r = runnerFor(ctx.handle, [{ name: 'count', schedule: '*/5 * * * * *', tick: async () => `tick ${++calls}` }], {
      lines,
      holder: 'me',
    });
    expect(await r.runOnce('count')).toEqual({ ran: true, outcome: 'tick 1' });
    expect(r.lastTicks().get('count')).toMatchObject({ outcome: 'tick 1', ok: true });
    expect(r.lastTicks().get('count')!.durationMs).toBeGreaterThanOrEqual(0);
    const [lease] = await listLeases(ctx.handle);
    expect(lease).toMatchObject({ agent: 'count', holder: null, lastOutcome: 'tick 1' });
    expect(lease!.lastTickAt).toEqual(r.lastTicks().get('count')!.at);
    expect(lines.some((l) => l.startsWith('[count] tick 1 ('))).toBe(true);
    await expect(r.runOnce('nope')).rejects.toMatchObject({ code: 'WMS_CONFIG' });
    await r.stop();
  });

  it('a tick that throws is recorded as its outcome; the runner goes on', async () => {
    let n = 0;
    const r = runnerFor(ctx.handle, [
      {
        name: 'flaky',
        schedule: '* * * * * *',
        tick: async () => {
          if (++n === 1) throw Object.assign(new Error('boom\nwith a second line'), { code: 'WMS_INTERNAL' });
          return 'fine';
        },
      },
    ]);
    expect(await r.runOnce('flaky')).toEqual({ ran: true, outcome: 'error: WMS_INTERNAL boom | with a second line' });
    expect(r.lastTicks().get('flaky')).toMatchObject({ ok: false });
    expect((await listLeases(ctx.handle))[0]).toMatchObject({ holder: null, lastOutcome: 'error: WMS_INTERNAL boom | with a second line' });
    expect(await r.runOnce('flaky')).toEqual({ ran: true, outcome: 'fine' });
    // A database error: the database's words and the query's first line, not drizzle's whole dump.
    const bad = runnerFor(ctx.handle, [
      {
        name: 'bad-sql',
        schedule: '* * * * * *',
        tick: async (c) => String(await c.db.db.execute(sql`select no_such_column\n from jobs`)),
      },
    ]);
    const out = await bad.runOnce('bad-sql');
    expect(out.outcome).toMatch(/^error: .*no_such_column.* \(in: select no_such_column\)$/);
  });

  it('a lease held elsewhere skips the tick; two runners racing run it once', async () => {
    let calls = 0;
    const agent: Agent = {
      name: 'slow',
      schedule: '* * * * * *',
      tick: async () => {
        calls++;
        await sleep(300);
        return 'done';
      },
    };
    expect(await tryTakeLease(ctx.handle, 'slow', 'elsewhere', 60)).toBe(true);
    const a = runnerFor(ctx.handle, [agent], { holder: 'A' });
    expect(await a.runOnce('slow')).toEqual({ ran: false, outcome: 'lease held by another process' });
    expect(calls).toBe(0);
    await ctx.truncate();
    const other = await ctx.open({ poolSize: 2 });
    const b = runnerFor(other, [agent], { holder: 'B' });
    const results = await Promise.all([a.runOnce('slow'), b.runOnce('slow'), a.runOnce('slow')]);
    expect(results.filter((x) => x.ran)).toHaveLength(1);
    expect(calls).toBe(1);
    expect(results[2]).toEqual({ ran: false, outcome: 'a tick of this agent is already running here' });
  });

  it('scheduled ticks never overlap; stop() waits for the tick in flight', async () => {
    let running = 0;
    let maxRunning = 0;
    let done = 0;
    const lines: string[] = [];
    const r = runnerFor(
      ctx.handle,
      [
        {
          name: 'long',
          schedule: '* * * * * *',
          tick: async () => {
            running++;
            maxRunning = Math.max(maxRunning, running);
            // Longer than the 1 s period: the schedule fires while it runs.
            await sleep(1200);
            running--;
            return `done ${++done}`;
          },
        },
      ],
      { lines },
    );
    r.start();
    expect(r.state).toBe('running');
    const deadline = Date.now() + 10_000;
    while (done < 1 && Date.now() < deadline) await sleep(50);
    while (running === 0 && Date.now() < deadline) await sleep(20);
    await r.stop();
    expect(r.state).toBe('stopped');
    expect(running).toBe(0);
    expect(maxRunning).toBe(1);
    expect(done).toBeGreaterThanOrEqual(2);
    const after = done;
    await sleep(1200);
    expect(done).toBe(after);
    expect(lines.filter((l) => l.startsWith('agent runner'))).toEqual([
      expect.stringMatching(/^agent runner idle -> running: 1 agent\(s\) scheduled/),
      'agent runner running -> stopping: 1 tick(s) in flight',
      'agent runner stopping -> stopped: schedules stopped, no tick in flight',
    ]);
    expect(await r.runOnce('long')).toEqual({ ran: false, outcome: 'runner is stopped' });
  });

  it('refuses a bad schedule and duplicate names', () => {
    const tick = async () => '';
    expect(() => runnerFor(ctx.handle, [{ name: 'x', schedule: 'every minute', tick }])).toThrow(/not a node-cron expression/);
    expect(() =>
      runnerFor(ctx.handle, [
        { name: 'x', schedule: '* * * * * *', tick },
        { name: 'x', schedule: '* * * * * *', tick },
      ]),
    ).toThrow(/two agents are named "x"/);
  });
});

describeDb('stalled-jobs agent', (ctx) => {
  beforeEach(() => ctx.truncate());
  const opts = () => ({
    now: new Date(),
    stalledAfterSeconds: 30,
    failedAfterSeconds: 60,
    matchedTimeoutSeconds: 60,
    maxRescheduling: 3,
  });

  it('(a) Running and Completing jobs silent for too long become Stalled, minor kept, history says why', async () => {
    const alive = await addPilot(ctx.handle, { status: 'Running', reference: 'r1' });
    const [hbOld, hbNew, noHb, onlyUpdate, completing] = await submitJobs(ctx.handle, makeJobs(5));
    await setJobs(ctx.handle, [hbOld!], { status: 'Running', pilotId: alive, heartbeatAgo: 100, startAgo: 200, updateAgo: 200 });
    await setJobs(ctx.handle, [hbNew!], { status: 'Running', pilotId: alive, heartbeatAgo: 5, startAgo: 200, updateAgo: 200 });
    await setJobs(ctx.handle, [noHb!], { status: 'Running', pilotId: alive, heartbeatAgo: null, startAgo: 100, updateAgo: 5 });
    await setJobs(ctx.handle, [onlyUpdate!], { status: 'Running', pilotId: alive, heartbeatAgo: null, startAgo: null, updateAgo: 100 });
    await setJobs(ctx.handle, [completing!], { status: 'Completing', pilotId: alive, heartbeatAgo: 100, startAgo: 200 });
    await ctx.handle.query(`update jobs set minor_status = 'Uploading Output Sandbox' where id = $1`, [completing]);

    const lines: string[] = [];
    const r = runnerFor(ctx.handle, [createStalledJobsAgent()], { lines });
    expect(await r.runOnce('stalled-jobs')).toEqual({ ran: true, outcome: '4 jobs stalled' });
    for (const id of [hbOld!, noHb!, onlyUpdate!, completing!]) {
      expect((await job(ctx.handle, id)).status).toBe('Stalled');
      const [h] = await lastHistory(ctx.handle, id);
      expect(h![0]).toBe('Stalled');
      expect(h![1]).toMatch(/^Job stalled: no heartbeat for (9\d|10\d) s$/);
      expect(h![2]).toBe('StalledJobAgent');
    }
    expect((await job(ctx.handle, hbNew!)).status).toBe('Running');
    expect(await job(ctx.handle, completing!)).toMatchObject({ status: 'Stalled', minorStatus: 'Uploading Output Sandbox' });
    // Just stalled, pilot alive: neither failed nor rescheduled yet.
    expect(await r.runOnce('stalled-jobs')).toEqual({ ran: true, outcome: 'nothing stalled' });
  });

  it('(b) Stalled jobs whose pilot is gone are rescheduled at once (or fail at the maximum)', async () => {
    const done = await addPilot(ctx.handle, { status: 'Done', reference: 'r1' });
    const aborted = await addPilot(ctx.handle, { status: 'Aborted', reference: 'r2' });
    const alive = await addPilot(ctx.handle, { status: 'Running', reference: 'r3' });
    const [a, b, c, d, e] = await submitJobs(ctx.handle, makeJobs(5));
    await setJobs(ctx.handle, [a!], { status: 'Stalled', pilotId: done });
    await setJobs(ctx.handle, [b!], { status: 'Stalled', pilotId: 99_999 });
    await setJobs(ctx.handle, [c!], { status: 'Stalled', pilotId: null });
    await setJobs(ctx.handle, [d!], { status: 'Stalled', pilotId: alive });
    await setJobs(ctx.handle, [e!], { status: 'Stalled', pilotId: aborted, counter: 3 });
    await ctx.handle.query(`insert into job_commands (job_id, command) values ($1, 'Kill')`, [a]);

    const r = await sweepStalledJobs(ctx.handle, opts());
    expect(r.pilotGone).toEqual([
      { id: a, status: 'Waiting' },
      { id: b, status: 'Waiting' },
      { id: c, status: 'Waiting' },
      { id: e, status: 'Failed' },
    ]);
    for (const id of [a!, b!, c!]) {
      expect(await job(ctx.handle, id)).toMatchObject({ status: 'Waiting', rescheduleCounter: 1, pilotId: null });
      expect(await lastHistory(ctx.handle, id, 3)).toEqual([
        ['Stalled', 'Job stalled: pilot not running', 'StalledJobAgent'],
        ['Received', 'Job Rescheduled', 'StalledJobAgent'],
        ['Waiting', 'Pilot Agent Submission', 'JobScheduling'],
      ]);
    }
    expect(await ctx.handle.query(`select command, status from job_commands where job_id = $1`, [a])).toEqual([
      { command: 'Kill', status: 'Cancelled' },
    ]);
    expect(await job(ctx.handle, d!)).toMatchObject({ status: 'Stalled' });
    expect(await job(ctx.handle, e!)).toMatchObject({
      status: 'Failed',
      minorStatus: 'Maximum of reschedulings reached',
      rescheduleCounter: 4,
    });
    expect(await lastHistory(ctx.handle, e!, 2)).toEqual([
      ['Stalled', 'Job stalled: pilot not running', 'StalledJobAgent'],
      ['Failed', 'Maximum of reschedulings reached', 'StalledJobAgent'],
    ]);
  });

  it('(c) Stalled too long with a live pilot: Failed "Stalling for more than N sec" and a Kill command', async () => {
    const alive = await addPilot(ctx.handle, { status: 'Running', reference: 'r1' });
    const [old, recent] = await submitJobs(ctx.handle, makeJobs(2));
    await setJobs(ctx.handle, [old!], { status: 'Stalled', pilotId: alive, updateAgo: 100 });
    await setJobs(ctx.handle, [recent!], { status: 'Stalled', pilotId: alive, updateAgo: 10 });
    const r = runnerFor(ctx.handle, [createStalledJobsAgent()]);
    expect(await r.runOnce('stalled-jobs')).toEqual({ ran: true, outcome: '1 job failed after stalling 60 s' });
    expect(await job(ctx.handle, old!)).toMatchObject({ status: 'Failed', minorStatus: 'Stalling for more than 60 sec' });
    expect((await job(ctx.handle, old!)).endExecAt).toBeInstanceOf(Date);
    expect(await lastHistory(ctx.handle, old!)).toEqual([['Failed', 'Stalling for more than 60 sec', 'StalledJobAgent']]);
    expect(await ctx.handle.query(`select command, status from job_commands where job_id = $1`, [old])).toEqual([
      { command: 'Kill', status: 'Received' },
    ]);
    expect((await job(ctx.handle, recent!)).status).toBe('Stalled');
  });

  it('(d) Matched jobs never started whose pilot is gone are rescheduled through Rescheduled', async () => {
    // Since issue 10 only a gone pilot's Matched job is rescheduled: a live pilot may run the
    // payload while its Running report is still on its way (the next test).
    const gone = await addPilot(ctx.handle, { status: 'Failed', reference: 'r1' });
    const alive = await addPilot(ctx.handle, { status: 'Running', reference: 'r2' });
    const [old, recent] = await submitJobs(ctx.handle, makeJobs(2));
    await setJobs(ctx.handle, [old!], { status: 'Matched', pilotId: gone, updateAgo: 100 });
    await setJobs(ctx.handle, [recent!], { status: 'Matched', pilotId: alive, updateAgo: 10 });
    const r = runnerFor(ctx.handle, [createStalledJobsAgent()]);
    expect(await r.runOnce('stalled-jobs')).toEqual({ ran: true, outcome: 'matched > 60 s: 1 rescheduled' });
    expect(await job(ctx.handle, old!)).toMatchObject({ status: 'Waiting', pilotId: null, rescheduleCounter: 1 });
    expect(await lastHistory(ctx.handle, old!, 3)).toEqual([
      ['Rescheduled', 'Matched for more than 60 s without starting', 'StalledJobAgent'],
      ['Received', 'Job Rescheduled', 'StalledJobAgent'],
      ['Waiting', 'Pilot Agent Submission', 'JobScheduling'],
    ]);
    expect((await job(ctx.handle, recent!)).status).toBe('Matched');
  });

  it('(a)/(d) a Matched job of a live pilot is never rescheduled: silent, it goes Stalled; its heartbeats keep it', async () => {
    const alive = await addPilot(ctx.handle, { status: 'Running', reference: 'r1' });
    const gone = await addPilot(ctx.handle, { status: 'Done', reference: 'r2' });
    const [silent, beating, orphan] = await submitJobs(ctx.handle, makeJobs(3));
    await setJobs(ctx.handle, [silent!], { status: 'Matched', pilotId: alive, updateAgo: 100 });
    // A payload runs, its Running report not yet through: heartbeats keep heartbeat_at fresh.
    await setJobs(ctx.handle, [beating!], { status: 'Matched', pilotId: alive, updateAgo: 100, heartbeatAgo: 5 });
    await setJobs(ctx.handle, [orphan!], { status: 'Matched', pilotId: gone, updateAgo: 100 });
    const r = await sweepStalledJobs(ctx.handle, opts());
    expect(r.stalled).toEqual([silent]);
    expect(r.matchedTimeout).toEqual([{ id: orphan, status: 'Waiting' }]);
    expect(await job(ctx.handle, silent!)).toMatchObject({ status: 'Stalled', pilotId: alive });
    expect(await job(ctx.handle, beating!)).toMatchObject({ status: 'Matched', pilotId: alive });
    expect(await lastHistory(ctx.handle, silent!)).toEqual([['Stalled', 'Job stalled: no heartbeat for 100 s', 'StalledJobAgent']]);
  });

  it("a Stalled job takes the holding pilot's journaled reports (a sign of life), never another pilot's", async () => {
    const holder = await addPilot(ctx.handle, { status: 'Running', reference: 'r1' });
    const other = await addPilot(ctx.handle, { status: 'Running', reference: 'r2' });
    const [a, b] = await submitJobs(ctx.handle, makeJobs(2));
    await setJobs(ctx.handle, [a!, b!], { status: 'Stalled', pilotId: holder, updateAgo: 10 });
    const done = await reportJobStatus(
      ctx.handle,
      a!,
      holder,
      { status: 'Done', minorStatus: 'Execution Complete', reportId: 5 },
      'JobWrapper',
    );
    expect(done).toMatchObject({ accepted: true, status: 'Done' });
    const refused = await reportJobStatus(
      ctx.handle,
      b!,
      other,
      { status: 'Completing', minorStatus: 'Application Finished Successfully' },
      'JobWrapper',
    );
    expect(refused).toMatchObject({ accepted: false, status: 'Stalled', held: false });
    expect((await job(ctx.handle, b!)).status).toBe('Stalled');
  });

  it('one tick handles thousands of jobs, batch after batch', async () => {
    const gone = await addPilot(ctx.handle, { status: 'Failed', reference: 'r1' });
    const ids = await submitJobs(ctx.handle, makeJobs(2500));
    await setJobs(ctx.handle, ids, { status: 'Running', pilotId: gone, heartbeatAgo: 100, startAgo: 100 });
    const r = await sweepStalledJobs(ctx.handle, { ...opts(), batchSize: 1000 });
    expect(r.stalled).toHaveLength(2500);
    expect(r.pilotGone).toHaveLength(2500);
    expect(r.pilotGone.every((o) => o.status === 'Waiting')).toBe(true);
    const [count] = await ctx.handle.query<{ n: number }>(`select count(*)::int as n from jobs where status = 'Waiting'`);
    expect(count!.n).toBe(2500);
  });
});

describePg('stalled-jobs sweep under concurrency', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('two sweeps at once (no lease) still act once per job', async () => {
    const gone = await addPilot(ctx.handle, { status: 'Done', reference: 'r1' });
    const ids = await submitJobs(ctx.handle, makeJobs(1500));
    await setJobs(ctx.handle, ids, { status: 'Running', pilotId: gone, heartbeatAgo: 100, startAgo: 100 });
    const other = await ctx.open({ poolSize: 4 });
    const o = {
      now: new Date(),
      stalledAfterSeconds: 30,
      failedAfterSeconds: 60,
      matchedTimeoutSeconds: 60,
      maxRescheduling: 3,
      batchSize: 200,
    };
    const [r1, r2] = await Promise.all([sweepStalledJobs(ctx.handle, o), sweepStalledJobs(other, o)]);
    expect(r1.stalled.length + r2.stalled.length).toBe(1500);
    expect(r1.pilotGone.length + r2.pilotGone.length).toBe(1500);
    const perJob = await ctx.handle.query<{ n: number }>(
      `select count(*)::int as n from job_history where status = 'Stalled' group by job_id, minor_status order by 1 desc limit 1`,
    );
    expect(perJob).toEqual([{ n: 1 }]);
    const [counter] = await ctx.handle.query<{ max: number }>(`select max(reschedule_counter)::int as max from jobs`);
    expect(counter!.max).toBe(1);
  });
});

describeDb('job-cleaning agent', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('sets old finished jobs Deleted, batch by batch, then removes them with everything linked', async () => {
    const ids = await submitJobs(ctx.handle, makeJobs(9));
    const [d1, d2, d3, d4, f1, k1, recentDone, running, completed] = ids as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    await setJobs(ctx.handle, [d1, d2, d3, d4], { status: 'Done', updateAgo: 100 });
    await setJobs(ctx.handle, [f1], { status: 'Failed', updateAgo: 100 });
    await setJobs(ctx.handle, [k1], { status: 'Killed', updateAgo: 100 });
    await setJobs(ctx.handle, [recentDone], { status: 'Done', updateAgo: 10 });
    await setJobs(ctx.handle, [running], { status: 'Running', updateAgo: 100 });
    await setJobs(ctx.handle, [completed], { status: 'Completed', updateAgo: 100 });
    const r = runnerFor(ctx.handle, [createJobCleaningAgent()]);
    expect(await r.runOnce('job-cleaning')).toEqual({ ran: true, outcome: '3 job(s) set Deleted' });
    expect((await getJobs(ctx.handle, [d1, d2, d3])).map((j) => j.status)).toEqual(['Deleted', 'Deleted', 'Deleted']);
    expect(await lastHistory(ctx.handle, d1)).toEqual([['Deleted', 'Checking accounting', 'JobCleaningAgent']]);
    expect(await r.runOnce('job-cleaning')).toEqual({ ran: true, outcome: '3 job(s) set Deleted' });
    expect(await r.runOnce('job-cleaning')).toEqual({ ran: true, outcome: 'nothing to clean' });
    const statuses = Object.fromEntries((await getJobs(ctx.handle, ids)).map((j) => [j.id, j.status]));
    expect(statuses).toEqual({
      [d1]: 'Deleted',
      [d2]: 'Deleted',
      [d3]: 'Deleted',
      [d4]: 'Deleted',
      [f1]: 'Deleted',
      [k1]: 'Deleted',
      [recentDone]: 'Done',
      [running]: 'Running',
      [completed]: 'Completed',
    });

    // Deleted for longer than the retention: removed, 3 per tick, with their rows elsewhere.
    await ctx.handle.query(`insert into job_parameters (job_id, name, value) values ($1, 'HostName', 'wn1')`, [d1]);
    await ctx.handle.query(`insert into job_commands (job_id, command) values ($1, 'Kill')`, [d1]);
    await ctx.handle.query(`insert into job_heartbeats (job_id, cpu_seconds, wall_seconds, rss_mb) values ($1, 1, 1, 1)`, [d1]);
    await setJobs(ctx.handle, [d1, d2, d3, d4], { status: 'Deleted', updateAgo: 100 });
    expect(await r.runOnce('job-cleaning')).toEqual({ ran: true, outcome: '3 deleted job(s) removed' });
    expect((await getJobs(ctx.handle, ids)).map((j) => j.id)).toEqual([d4, f1, k1, recentDone, running, completed]);
    for (const table of ['job_history', 'job_parameters', 'job_commands', 'job_heartbeats']) {
      expect(await ctx.handle.query(`select 1 from ${table} where job_id = $1`, [d1]), table).toEqual([]);
    }
  });

  it('removes sandboxes no job uses once past the retention (files through the hook), and old heartbeats of finished jobs', async () => {
    const [gone, live, done, running] = await submitJobs(ctx.handle, makeJobs(4));
    const sha = (c: string) => c.repeat(64);
    for (const c of ['a', 'b', 'c', 'd']) {
      await recordSandbox(ctx.handle, { sha256: sha(c), size: 10, owner: 'alice', ownerGroup: 'users', vo: 'vo1' });
    }
    await assignSandboxes(ctx.handle, gone!, 'Input', [sha('a')]);
    await assignSandboxes(ctx.handle, live!, 'Input', [sha('b')]);
    await ctx.handle.query(
      `update sandboxes set created_at = now() - interval '100 seconds', last_access_at = now() - interval '100 seconds'
        where sha256 = any($1)`,
      [[sha('a'), sha('b'), sha('c')]],
    );
    await setJobs(ctx.handle, [gone!], { status: 'Deleted', updateAgo: 100 });
    await setJobs(ctx.handle, [done!], { status: 'Done', updateAgo: 10 });
    await setJobs(ctx.handle, [running!], { status: 'Running', updateAgo: 10 });
    await ctx.handle.query(
      `insert into job_heartbeats (job_id, at, cpu_seconds, wall_seconds, rss_mb)
       values ($1, now() - interval '100 seconds', 1, 1, 1), ($1, now(), 2, 2, 2), ($2, now() - interval '100 seconds', 1, 1, 1)`,
      [done, running],
    );

    // Without a way to delete the files, sandboxes are left alone.
    const noFiles = runnerFor(ctx.handle, [createJobCleaningAgent()]);
    expect(await noFiles.runOnce('job-cleaning')).toEqual({ ran: true, outcome: '1 deleted job(s) removed, 1 heartbeat(s) purged' });
    expect(await ctx.handle.query(`select count(*)::int as n from sandboxes`)).toEqual([{ n: 4 }]);
    const hb = await ctx.handle.query<{ job_id: number; cpu_seconds: number }>(
      `select job_id, cpu_seconds from job_heartbeats order by job_id, id`,
    );
    expect(hb).toEqual([
      { job_id: done, cpu_seconds: 2 },
      { job_id: running, cpu_seconds: 1 },
    ]);

    const removedFiles: string[][] = [];
    const withFiles = runnerFor(ctx.handle, [createJobCleaningAgent({ removeSandboxFiles: async (s) => void removedFiles.push(s) })]);
    expect(await withFiles.runOnce('job-cleaning')).toEqual({ ran: true, outcome: '2 sandbox(es) removed' });
    expect(removedFiles).toEqual([[sha('a'), sha('c')]]);
    expect((await ctx.handle.query<{ sha256: string }>(`select sha256 from sandboxes order by sha256`)).map((x) => x.sha256)).toEqual([
      sha('b'),
      sha('d'),
    ]);
    expect(await ctx.handle.query(`select sha256 from sandbox_owners where sha256 = $1`, [sha('a')])).toEqual([]);

    // A failing file remover is logged and noted, the tick still succeeds.
    await ctx.handle.query(`delete from job_sandboxes`);
    await ctx.handle.query(
      `update sandboxes set created_at = now() - interval '100 seconds', last_access_at = now() - interval '100 seconds'`,
    );
    const lines: string[] = [];
    const failing = runnerFor(
      ctx.handle,
      [createJobCleaningAgent({ removeSandboxFiles: async () => Promise.reject(new Error('disk gone')) })],
      { lines },
    );
    expect(await failing.runOnce('job-cleaning')).toEqual({
      ran: true,
      outcome: '2 sandbox(es) removed (their files could not all be deleted, see the log)',
    });
    expect(lines.some((l) => l.includes('sandbox files not deleted: disk gone'))).toBe(true);
  });
});

describeDb('pilot-status agent', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('writes what the CE says, keeps pilots own reports, times out Unknown and silent pilots, cleans up once', async () => {
    const ce = new FakeCe();
    const broken = new FakeCe();
    broken.failStatus = new Error('condor_q: connection refused');
    const drivers = (type: string, name: string) => (type !== 'fake' ? null : name === 'ce1' ? ce : name === 'ce2' ? broken : null);

    const toRunning = await addPilot(ctx.handle, { status: 'Submitted', reference: 'r1' });
    const noRegress = await addPilot(ctx.handle, { status: 'Running', reference: 'r2', reason: 'registered' });
    const ended = await addPilot(ctx.handle, { status: 'Running', reference: 'r3' });
    const reported = await addPilot(ctx.handle, { status: 'Done', reference: 'r4', reason: 'no more work' });
    const forgotten = await addPilot(ctx.handle, { status: 'Waiting', reference: 'r5' });
    const longUnknown = await addPilot(ctx.handle, { status: 'Unknown', reference: 'r6', updateAgo: 100 });
    const silent = await addPilot(ctx.handle, { status: 'Submitted', reference: 'r7', updateAgo: 1000 });
    const busy = await addPilot(ctx.handle, { status: 'Running', reference: 'r8', updateAgo: 1000 });
    const onBroken = await addPilot(ctx.handle, { status: 'Submitted', reference: 'x1', ce: 'ce2' });
    const noDriver = await addPilot(ctx.handle, { status: 'Submitted', reference: 'y1', ce: 'ce3' });
    const neverSubmitted = await addPilot(ctx.handle, { status: 'Submitted', reference: null, updateAgo: 1000 });
    const aborted = await addPilot(ctx.handle, { status: 'Submitted', reference: 'r9' });
    const [busyJob] = await submitJobs(ctx.handle, makeJobs(1));
    await setJobs(ctx.handle, [busyJob!], { status: 'Running', pilotId: busy, heartbeatAgo: 5, startAgo: 2000 });

    ce.states.set('r1', { status: 'Running', reason: 'SLURM: RUNNING' });
    ce.states.set('r2', { status: 'Waiting', reason: 'SLURM: PENDING' });
    ce.states.set('r3', { status: 'Failed', reason: '', exitCode: 137 });
    ce.states.set('r4', { status: 'Failed', reason: 'exit code 1' });
    ce.states.set('r7', { status: 'Submitted', reason: 'queued' });
    ce.states.set('r8', { status: 'Running', reason: 'running' });
    ce.states.set('r9', { status: 'Aborted', reason: 'VM in FAILURE' });

    const lines: string[] = [];
    const r = runnerFor(ctx.handle, [createPilotStatusAgent({ drivers, cleanupDelaySeconds: 0 })], { lines });
    const first = await r.runOnce('pilot-status');
    expect(first.ran).toBe(true);
    expect(first.outcome).toBe(
      '10 pilot(s) polled on 3 CE(s), 4 changed (1 Running, 1 Failed, 1 Unknown, 1 Aborted), 1 aborted (unknown too long), 2 deleted (silent), 1 cleaned up, 1 CE error(s), see the log',
    );
    expect(await pilot(ctx.handle, toRunning)).toMatchObject({ status: 'Running', status_reason: 'SLURM: RUNNING' });
    expect(await pilot(ctx.handle, noRegress)).toMatchObject({ status: 'Running', status_reason: 'registered' });
    expect(await pilot(ctx.handle, ended)).toEqual({
      status: 'Failed',
      status_reason: 'pilot process ended without reporting (exit code 137)',
      exit_code: 137,
    });
    expect(await pilot(ctx.handle, reported)).toMatchObject({ status: 'Done', status_reason: 'no more work' });
    expect(await pilot(ctx.handle, forgotten)).toMatchObject({ status: 'Unknown', status_reason: 'ce1 no longer knows r5' });
    expect(await pilot(ctx.handle, longUnknown)).toMatchObject({
      status: 'Aborted',
      status_reason: 'unknown to its computing element for more than 60 s',
    });
    expect(await pilot(ctx.handle, silent)).toMatchObject({ status: 'Deleted', status_reason: 'not heard of for more than 500 s' });
    expect(await pilot(ctx.handle, neverSubmitted)).toMatchObject({ status: 'Deleted' });
    expect(await pilot(ctx.handle, busy)).toMatchObject({ status: 'Running' });
    expect(await pilot(ctx.handle, onBroken)).toMatchObject({ status: 'Submitted' });
    expect(await pilot(ctx.handle, noDriver)).toMatchObject({ status: 'Submitted' });
    expect(await pilot(ctx.handle, aborted)).toMatchObject({ status: 'Aborted', status_reason: 'VM in FAILURE' });
    expect(ce.cancelled).toEqual([['r7']]);
    // The first tick ever cleans up what finished recently: the pilot that reported Done.
    expect(ce.cleaned).toEqual([['r4']]);
    expect(lines.some((l) => l.includes('status of fake CE ce2 failed: condor_q: connection refused'))).toBe(true);
    expect(lines.some((l) => l.includes('no fake driver for CE ce3: 1 pilot(s) not polled'))).toBe(true);

    // The next tick cleans up what ended since the first one started, once; the third, nothing.
    ce.cleaned.length = 0;
    await r.runOnce('pilot-status');
    expect(ce.cleaned.flat().sort()).toEqual(['r3', 'r6', 'r7', 'r9']);
    ce.cleaned.length = 0;
    await r.runOnce('pilot-status');
    expect(ce.cleaned).toEqual([]);
  });

  it('cleans up a finished pilot only once it has had time to exit (cleanupDelaySeconds, default 60)', async () => {
    const ce = new FakeCe();
    await addPilot(ctx.handle, { status: 'Done', reference: 'old', updateAgo: 100 });
    await addPilot(ctx.handle, { status: 'Done', reference: 'just-now', updateAgo: 10 });
    const r = runnerFor(ctx.handle, [createPilotStatusAgent({ drivers: () => ce })]);
    await r.runOnce('pilot-status');
    expect(ce.cleaned).toEqual([['old']]);
  });

  it('a pilot reporting its end while the CE is asked keeps its own report', async () => {
    const ce = new FakeCe();
    const id = await addPilot(ctx.handle, { status: 'Running', reference: 'r1' });
    ce.states.set('r1', { status: 'Done', reason: 'exit code 0', exitCode: 0 });
    ce.duringStatus = async () => {
      await ctx.handle.query(`update pilots set status = 'Done', status_reason = 'no more jobs', exit_code = 0 where id = $1`, [id]);
    };
    const r = runnerFor(ctx.handle, [createPilotStatusAgent({ drivers: () => ce })]);
    expect((await r.runOnce('pilot-status')).outcome).toBe('1 pilot(s) polled on 1 CE(s)');
    expect(await pilot(ctx.handle, id)).toEqual({ status: 'Done', status_reason: 'no more jobs', exit_code: 0 });
  });
});

describe('agents without a database', () => {
  it('take their schedules from the defaults unless given', () => {
    expect(createStalledJobsAgent().schedule).toBe(DEFAULT_SERVICE_CONFIG.agentSettings.stalledJobs.schedule);
    expect(createJobCleaningAgent({ schedule: '0 0 * * * *' }).schedule).toBe('0 0 * * * *');
    expect(createPilotStatusAgent({ drivers: () => null }).name).toBe('pilot-status');
  });
});
