import { beforeEach, expect, it } from 'vitest';
import { getTaskQueues, matchJob, recomputeSharePriorities, setGroupShare, submitJobs, type DbHandle } from '../../db/index.js';
import { describeDb } from '../helpers/db.js';
import { seededRandom } from '../helpers/random.js';
import { makeJob, makeJobs, makeResource } from './fixtures.js';

async function priorities(h: DbHandle): Promise<Record<string, number>> {
  const queues = await getTaskQueues(h, null);
  return Object.fromEntries(queues.map((q) => [`${q.ownerGroup}/${q.owner}/p${q.priority}`, q.sharePriority]));
}

describeDb('fair share', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('splits a group share among owners, then among their queues by priority weight', async () => {
    await submitJobs(ctx.handle, [
      makeJob({ requirements: { owner: 'alice', priority: 1 } }),
      makeJob({ requirements: { owner: 'alice', priority: 3 } }),
      makeJob({ requirements: { owner: 'bob', priority: 1 } }),
      makeJob({ requirements: { owner: 'bob', priority: 1 } }),
    ]);
    expect(await priorities(ctx.handle)).toEqual({
      'users/alice/p1': 125,
      'users/alice/p3': 375,
      'users/bob/p1': 500,
    });
    await setGroupShare(ctx.handle, 'vo1', 'users', 3000);
    expect(await priorities(ctx.handle)).toEqual({
      'users/alice/p1': 375,
      'users/alice/p3': 1125,
      'users/bob/p1': 1500,
    });
  });

  it('maps priority 0 to 1e-5 and 10 to 1e6 (DIRAC), with a floor of 0.001', async () => {
    await submitJobs(ctx.handle, [
      makeJob({ requirements: { owner: 'carol', ownerGroup: 'g2', priority: 0 } }),
      makeJob({ requirements: { owner: 'carol', ownerGroup: 'g2', priority: 10 } }),
      makeJob({ requirements: { owner: 'dave', ownerGroup: 'g3', priority: 0 } }),
      makeJob({ requirements: { owner: 'dave', ownerGroup: 'g3', priority: 1 } }),
    ]);
    const p = await priorities(ctx.handle);
    expect(p['g2/carol/p0']).toBe(0.001);
    expect(p['g2/carol/p10']).toBeCloseTo(1000, 6);
    expect(p['g3/dave/p0']).toBeCloseTo((1000 * 1e-5) / (1 + 1e-5), 9);
    expect(p['g3/dave/p1']).toBeCloseTo(1000 / (1 + 1e-5), 6);
  });

  it('counts only queues with waiting jobs; the periodic pass gives a drained queue\u2019s share back', async () => {
    const [first] = await submitJobs(ctx.handle, [makeJob({ requirements: { owner: 'alice', tags: ['X'] } })]);
    await submitJobs(ctx.handle, [makeJob({ requirements: { owner: 'alice' } }), makeJob({ requirements: { owner: 'bob' } })]);
    expect(await priorities(ctx.handle)).toMatchObject({ 'users/alice/p1': 250, 'users/bob/p1': 500 });
    const m = await matchJob(ctx.handle, makeResource({ requiredTags: ['X'] }));
    expect(m?.id).toBe(first);
    await recomputeSharePriorities(ctx.handle);
    const queues = await getTaskQueues(ctx.handle, null);
    const alice = queues.filter((q) => q.owner === 'alice');
    expect(alice.find((q) => q.waitingJobs === 1)!.sharePriority).toBe(500);
    // The drained queue keeps its old value; the matcher ignores it (no waiting jobs).
    expect(alice.find((q) => q.waitingJobs === 0)!.sharePriority).toBe(250);
  });

  it('draws task queues in proportion to their shares: groups 3:1 over 4,000 matches', async () => {
    await setGroupShare(ctx.handle, 'vo1', 'atlas', 3);
    await setGroupShare(ctx.handle, 'vo1', 'cms', 1);
    await submitJobs(ctx.handle, [
      ...makeJobs(2500, { requirements: { ownerGroup: 'atlas', owner: 'a1' } }),
      ...makeJobs(2500, { requirements: { ownerGroup: 'atlas', owner: 'a2', priority: 5 } }),
      ...makeJobs(2000, { requirements: { ownerGroup: 'cms', owner: 'c1' } }),
    ]);
    expect(await priorities(ctx.handle)).toEqual({ 'atlas/a1/p1': 1.5, 'atlas/a2/p5': 1.5, 'cms/c1/p1': 1 });
    // The whole path at the size: shares computed by the database, the draw, the claim.
    // With 4,000 draws the 5 % band is only ~1.4 sigma, so the seed is fixed; the draw itself
    // is checked to 1 % over 400,000 draws in tests/unit/fair-share-order.test.ts.
    const random = seededRandom(1);
    const h = ctx.handle;
    const counts: Record<string, number> = {};
    const t0 = performance.now();
    for (let i = 0; i < 4000; i++) {
      const m = await matchJob(h, makeResource(), { random });
      counts[m!.ownerGroup] = (counts[m!.ownerGroup] ?? 0) + 1;
    }
    const s = (performance.now() - t0) / 1000;
    const ratio = counts.atlas! / counts.cms!;
    console.log(
      `[db] fair share (${ctx.driver}): atlas ${counts.atlas}, cms ${counts.cms}, ratio ${ratio.toFixed(3)}; ${Math.round(4000 / s)} sequential matches/s`,
    );
    expect(Math.abs(ratio / 3 - 1)).toBeLessThan(0.05);
  });
});
