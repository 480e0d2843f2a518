/**
 * Claims several to a statement (db/queries/match.ts claimJobs, the function of migration 0009)
 * and the matcher's batching of concurrent matches (db/ops/claim-batches.ts): each claim of a
 * batch is answered as if it were alone, and no job is handed out twice.
 */
import { beforeEach, expect, it } from 'vitest';
import { getJobHistory, getJobs, matchJob, setComputingElementBanned, submitJobs, upsertComputingElement } from '../../db/index.js';
import { claimJobs, type Claim } from '../../db/queries/match.js';
import { describeDb, describePg, type DbTestContext } from '../helpers/db.js';
import { makeJobs, makeResource } from './fixtures.js';

async function addPilots(ctx: DbTestContext, ids: number[], status = 'Running'): Promise<void> {
  for (const id of ids) {
    await ctx.handle.query(`insert into pilots (id, stamp, site, status) values ($1, $2, 'SITE-A', $3::text::pilot_status)`, [
      id,
      `stamp-${id}`,
      status,
    ]);
  }
}

/** Every task queue's id and the current generation: what the matcher's snapshot holds. */
async function queues(ctx: DbTestContext): Promise<{ ids: number[]; generation: number }> {
  const tq = await ctx.handle.query<{ id: number }>('select id from task_queues order by id');
  const [g] = await ctx.handle.query<{ generation: number }>('select generation from task_queue_state where id = 1');
  return { ids: tq.map((r) => r.id), generation: g?.generation ?? 0 };
}

async function currentJob(ctx: DbTestContext, pilotId: number): Promise<number | null> {
  const [p] = await ctx.handle.query<{ current_job_id: number | null }>('select current_job_id from pilots where id = $1', [pilotId]);
  return p?.current_job_id ?? null;
}

describeDb('claimJobs: several claims in one statement', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('hands each claim its own job, oldest first, with its history row and its pilot linked', async () => {
    const ids = await submitJobs(ctx.handle, makeJobs(3));
    await addPilots(ctx, [1, 2, 3, 4]);
    const q = await queues(ctx);
    const claim = (pilotId: number): Claim => ({
      site: 'SITE-A',
      ce: null,
      taskQueueIds: q.ids,
      generation: q.generation,
      pilotId,
      source: 'Matcher',
      livePilot: true,
    });
    const answers = await claimJobs(ctx.handle, [claim(1), claim(2), claim(3), claim(4)]);
    expect(answers.map((a) => a.job?.id ?? null)).toEqual([ids[0], ids[1], ids[2], null]);
    expect(answers.every((a) => a.generation === q.generation && a.pilotStatus === 'Running' && !a.again)).toBe(true);
    for (const [i, pilotId] of [1, 2, 3].entries()) {
      expect(await currentJob(ctx, pilotId)).toBe(ids[i]);
      const [job] = await getJobs(ctx.handle, [ids[i]!]);
      expect(job).toMatchObject({ status: 'Matched', pilotId, site: 'SITE-A' });
      expect((await getJobHistory(ctx.handle, ids[i]!)).filter((h) => h.status === 'Matched')).toHaveLength(1);
    }
    expect(await currentJob(ctx, 4)).toBeNull();
  });

  it('answers each claim alone: a banned CE, a final pilot, a stale snapshot and a retried claim id get what they would alone', async () => {
    const ids = await submitJobs(ctx.handle, makeJobs(4));
    await addPilots(ctx, [1, 3, 4]);
    await addPilots(ctx, [2], 'Done');
    await upsertComputingElement(ctx.handle, { site: 'SITE-A', name: 'bad-ce', type: 'slurm' });
    await setComputingElementBanned(ctx.handle, 'bad-ce', true, 'broken');
    const q = await queues(ctx);
    const base = { site: 'SITE-A', ce: null, taskQueueIds: q.ids, generation: q.generation, source: 'Matcher', livePilot: true };
    const answers = await claimJobs(ctx.handle, [
      { ...base, pilotId: 1, ce: 'bad-ce' },
      { ...base, pilotId: 2 },
      { ...base, pilotId: 3, generation: q.generation - 1 },
      { ...base, pilotId: 4, claimId: 'claim-a' },
      { ...base, pilotId: 4, claimId: 'claim-a' },
      { ...base, pilotId: 1 },
    ]);
    expect(answers.map((a) => a.job?.id ?? null)).toEqual([null, null, null, ids[0], ids[0], ids[1]]);
    expect(answers.map((a) => a.again)).toEqual([false, false, false, false, true, false]);
    expect(answers[1]!.pilotStatus).toBe('Done');
    expect(answers[2]!.generation).toBe(q.generation);
    // Nothing was taken for the refused claims: the two jobs left still wait.
    const rest = await getJobs(ctx.handle, [ids[2]!, ids[3]!]);
    expect(rest.map((j) => j.status)).toEqual(['Waiting', 'Waiting']);
  });

  it('takes an empty batch', async () => {
    expect(await claimJobs(ctx.handle, [])).toEqual([]);
  });
});

describePg('concurrent matches share claim statements', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('60 pilots at once over 40 jobs: 40 distinct jobs, each once, each pilot linked to its own', async () => {
    const ids = await submitJobs(ctx.handle, makeJobs(40));
    const pilots = Array.from({ length: 60 }, (_, i) => 100 + i);
    await addPilots(ctx, pilots);
    const got = await Promise.all(
      pilots.map((pilotId) => matchJob(ctx.handle, makeResource({ site: 'SITE-A' }), { pilotId, livePilot: true })),
    );
    const matched = got.filter((m) => m !== null).map((m) => m.id);
    expect(matched).toHaveLength(40);
    expect(new Set(matched)).toEqual(new Set(ids));
    for (const [i, pilotId] of pilots.entries()) expect(await currentJob(ctx, pilotId)).toBe(got[i]?.id ?? null);
    const [h] = await ctx.handle.query<{ n: number }>(`select count(*)::int as n from job_history where status = 'Matched'`);
    expect(h!.n).toBe(40);
  });

  it('two processes racing the same retried claims among others: each claim id gets one job, answered to both', async () => {
    await submitJobs(ctx.handle, makeJobs(40));
    const pilots = Array.from({ length: 20 }, (_, i) => 200 + i);
    await addPilots(ctx, pilots);
    const other = await ctx.open({ poolSize: 4 });
    const resource = makeResource({ site: 'SITE-A' });
    // Each pilot sends its claim to both "replicas" at once, as a retry after a lost answer would.
    const both = await Promise.all(
      pilots.map(async (pilotId) => {
        const options = { pilotId, livePilot: true, claimId: `claim-${pilotId}` };
        const [a, b] = await Promise.all([matchJob(ctx.handle, resource, options), matchJob(other, resource, options)]);
        return { pilotId, a: a?.id, b: b?.id };
      }),
    );
    for (const { pilotId, a, b } of both) {
      expect(a).toBeDefined();
      expect(b).toBe(a);
      expect(await currentJob(ctx, pilotId)).toBe(a);
    }
    expect(new Set(both.map((x) => x.a)).size).toBe(pilots.length);
    const [n] = await ctx.handle.query<{ n: number }>(`select count(*)::int as n from jobs where status = 'Matched'`);
    expect(n!.n).toBe(pilots.length);
  });
});
