/**
 * Heartbeats written in batches (db `recordHeartbeats`, and the services' group commit behind
 * `POST /api/jobs/:id/heartbeat`): one statement answers each heartbeat as `recordHeartbeat`
 * would one by one: the job's status, its own pending commands (each delivered once), `held`
 * false for a job token of another pilot (409 on the route), a dead job untouched (403), a
 * Stalled job revived with a history row, a missing job Deleted.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPilots, recordHeartbeats } from '../../db/index.js';
import { createTestApp, jdl, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

const HB = { cpuSeconds: 1, wallSeconds: 2, rssMb: 3 };

describeDb('heartbeats in batches', (ctx) => {
  let t: TestApp;
  let alice: string;
  let pilots: number[];

  /** Jobs submitted by alice, then set to `status` held by `pilotId` (SQL, as a match and reports would). */
  async function jobs(n: number, status: string, pilotId: number | null): Promise<number[]> {
    const res = await t.call('POST', '/api/jobs', alice, { jdls: Array.from({ length: n }, () => jdl({})) });
    expect(res.statusCode, res.body).toBe(201);
    const ids = res.json<{ jobIds: number[] }>().jobIds;
    await ctx.handle.query(`update jobs set status = $2::job_status, pilot_id = $3::bigint where id = any($1::bigint[])`, [
      ids,
      status,
      pilotId,
    ]);
    return ids;
  }

  const beats = async (id: number) =>
    Number((await ctx.handle.query<{ n: number }>('select count(*)::int as n from job_heartbeats where job_id = $1', [id]))[0]!.n);

  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
    alice = await t.user('alice');
    pilots = await createPilots(
      ctx.handle,
      [1, 2].map((i) => ({ stamp: `hb-batch-${i}`, site: 'LCG.A.org', ce: 'ce', ceType: 'local', queue: 'q', queueId: null, vo: 'vo1' })),
    );
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers each heartbeat of one statement with its own job', async () => {
    const [p1, p2] = pilots as [number, number];
    const [running] = await jobs(1, 'Running', p1);
    const [stalled] = await jobs(1, 'Stalled', p1);
    const [other] = await jobs(1, 'Running', p2);
    const [done] = await jobs(1, 'Done', p1);
    const [killing] = await jobs(1, 'Running', p1);
    await ctx.handle.query(`insert into job_commands (job_id, command, arguments) values ($1, 'Kill', 'by alice')`, [killing]);
    const items = [running, stalled, other, done, killing, 999_999_999].map((jobId) => ({ jobId: jobId!, pilotId: p1, hb: HB }));
    const answers = await recordHeartbeats(ctx.handle, items, 'Watchdog');
    expect(answers).toEqual([
      { status: 'Running', commands: [], held: true },
      { status: 'Running', commands: [], held: true },
      { status: 'Running', commands: [], held: false },
      { status: 'Done', commands: [], held: true },
      { status: 'Running', commands: [{ jobId: killing, command: 'Kill', arguments: 'by alice' }], held: true },
      { status: 'Deleted', commands: [], held: false },
    ]);
    expect([await beats(running!), await beats(stalled!), await beats(other!), await beats(done!), await beats(killing!)]).toEqual([
      1, 1, 0, 0, 1,
    ]);
    const revived = await ctx.handle.query<{ status: string; source: string }>(
      `select status::text, source from job_history where job_id = $1 order by id desc limit 1`,
      [stalled],
    );
    expect(revived[0]).toEqual({ status: 'Running', source: 'Watchdog' });
    const [row] = await ctx.handle.query<{ status: string; beat: boolean }>(
      'select status::text, heartbeat_at is not null as beat from jobs where id = $1',
      [stalled],
    );
    expect(row).toEqual({ status: 'Running', beat: true });
    // Delivered once: the next heartbeat gets no command.
    const again = await recordHeartbeats(ctx.handle, [{ jobId: killing!, pilotId: p1, hb: HB }], 'Watchdog');
    expect(again[0]!.commands).toEqual([]);
  });

  it('a stdout peek in a batch is stored as the StandardOutput parameter', async () => {
    const [a, b] = await jobs(2, 'Running', pilots[0]!);
    await recordHeartbeats(
      ctx.handle,
      [
        { jobId: a!, pilotId: pilots[0]!, hb: { ...HB, stdoutTail: 'hello\n' } },
        { jobId: b!, pilotId: pilots[0]!, hb: HB },
      ],
      'Watchdog',
    );
    const params = await ctx.handle.query<{ job_id: number; value: string }>(
      `select job_id, value from job_parameters where job_id = any($1::bigint[]) and name = 'StandardOutput'`,
      [[a, b]],
    );
    expect(params).toEqual([{ job_id: a, value: 'hello\n' }]);
  });

  it('many heartbeats at once through the route are all written and answered, refusals kept', async () => {
    const [p1, p2] = pilots as [number, number];
    const mine = await jobs(40, 'Running', p1);
    const theirs = await jobs(5, 'Running', p2);
    const [over] = await jobs(1, 'Killed', p1);
    const token = (jobId: number) => t.tokenFor({ role: 'job', user: 'alice', vo: 'vo1', group: 'vo1_user', jobId, pilotId: p1 });
    const calls = [...mine, ...theirs, over!].map(async (id) => {
      const r = await t.call('POST', `/api/jobs/${id}/heartbeat`, await token(id), HB);
      return [id, r.statusCode, r.json<{ code?: string; status?: string }>()] as const;
    });
    const answers = await Promise.all(calls);
    for (const [id, code, body] of answers) {
      if (mine.includes(id)) expect(code, JSON.stringify(body)).toBe(200);
      else if (theirs.includes(id)) expect(body.code).toBe('WMS_JOB_NOT_HELD');
      else expect(code).toBe(403);
    }
    expect(answers.filter(([id]) => theirs.includes(id)).every(([, code]) => code === 409)).toBe(true);
    for (const id of mine) expect(await beats(id)).toBe(1);
    for (const id of theirs) expect(await beats(id)).toBe(0);
  });
});
