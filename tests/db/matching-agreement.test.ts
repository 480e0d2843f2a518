/**
 * The matcher's SQL predicate (db/queries/match.ts) and the pure one (core/matching.ts
 * rejectionsFor) must agree: random task queues x random resources, every pair compared. The
 * queues carry the tags DIRAC derives from processors and memory (and some no resource can
 * offer), the resources numbers on both sides of every ladder step, so the tag ladders the two
 * sides derive are compared too.
 */
import { beforeAll, expect, it } from 'vitest';
import type { JobRequirements } from '../../core/job-model.js';
import { rejectionsFor, type ResourceDescription } from '../../core/matching.js';
import { findFittingTaskQueues, getTaskQueues, submitJobs, type TaskQueueRow } from '../../db/index.js';
import { describeDb } from '../helpers/db.js';
import { makeJob } from './fixtures.js';

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SITES = ['S1', 'S2', 'S3'];
const CES = ['ce1', 'ce2'];
const PLATFORMS = ['EL8', 'EL9'];
const TAGS = ['GPU', 'CVMFS', 'WholeNode'];
/** Tags implied by numbers, and look-alikes no resource offers (1GB, leading zeros, > 1024). */
const LADDER_TAGS = [
  'MultiProcessor',
  '2Processors',
  '4Processors',
  '8Processors',
  '16Processors',
  '1024Processors',
  '1025Processors',
  '2GB',
  '8GB',
  '16GB',
  '1024GB',
  '1GB',
  '04Processors',
  '0GB',
  '1Processors',
];
const TYPES = ['User', 'MC'];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}
function subset<T>(r: () => number, xs: readonly T[], p: number): T[] {
  return xs.filter(() => r() < p);
}

function randomRequirements(r: () => number, i: number): Partial<JobRequirements> {
  return {
    owner: `u${i}`,
    vo: pick(r, ['vo1', 'vo2']),
    ownerGroup: pick(r, ['users', 'prod']),
    cpuTime: pick(r, [360, 3600, 86_400]),
    sites: subset(r, SITES, 0.3),
    bannedSites: subset(r, SITES, 0.2),
    gridCEs: subset(r, CES, 0.2),
    platforms: subset(r, PLATFORMS, 0.3),
    jobTypes: r() < 0.1 ? [] : [pick(r, TYPES)],
    tags: [...subset(r, TAGS, 0.25), ...subset(r, LADDER_TAGS, 0.12)],
    processors: pick(r, [1, 1, 4, 8]),
    ramMb: pick(r, [0, 2000, 8000]),
    gpus: pick(r, [0, 0, 1]),
  };
}

function randomResource(r: () => number): ResourceDescription {
  const res: ResourceDescription = {
    site: pick(r, SITES),
    tags: subset(r, TAGS, 0.5),
    requiredTags: r() < 0.2 ? [pick(r, TAGS)] : [],
    processors: pick(r, [1, 4, 8, 16, 7.9, 2000]),
    ramMb: pick(r, [1999, 2000, 8000, 16000, 16999.5, 2_000_000]),
    gpus: pick(r, [0, 1]),
    cpuWork: pick(r, [360, 3600, 50_000, 86_400, 1e6]),
  };
  if (r() < 0.7) res.ce = pick(r, CES);
  if (r() < 0.7) res.platform = pick(r, PLATFORMS);
  if (r() < 0.5) res.vo = pick(r, ['vo1', 'vo2']);
  if (r() < 0.3) res.ownerGroups = subset(r, ['users', 'prod'], 0.5);
  if (r() < 0.4) res.jobTypes = subset(r, TYPES, 0.6);
  return res;
}

describeDb('match predicate: SQL and core/matching.ts agree', (ctx) => {
  let queues: TaskQueueRow[] = [];

  beforeAll(async () => {
    const r = rng(20261122);
    await submitJobs(
      ctx.handle,
      Array.from({ length: 80 }, (_, i) => makeJob({ requirements: randomRequirements(r, i) })),
    );
    queues = await getTaskQueues(ctx.handle, null);
    expect(queues).toHaveLength(80);
  });

  it('on 300 random resources x 80 task queues', async () => {
    const r = rng(7);
    let fits = 0;
    let fitsByLadder = 0;
    for (let k = 0; k < 300; k++) {
      const resource = randomResource(r);
      const sql = await findFittingTaskQueues(ctx.handle, resource);
      const pure = queues.filter((q) => rejectionsFor(q, resource).length === 0).map((q) => q.id);
      expect(sql, JSON.stringify(resource)).toEqual(pure);
      fits += pure.length;
      fitsByLadder += queues.filter(
        (q) => pure.includes(q.id) && q.tags.some((t) => LADDER_TAGS.includes(t) && !resource.tags.includes(t)),
      ).length;
    }
    // The cases are not all trivial: some queues fit, most do not, and some fit by a derived tag.
    expect(fits).toBeGreaterThan(20);
    expect(fits).toBeLessThan(300 * 80 * 0.5);
    expect(fitsByLadder).toBeGreaterThan(5);
  });

  it('withWaitingJobs drops queues without waiting jobs', async () => {
    const everything: ResourceDescription = {
      site: 'S9',
      tags: TAGS,
      requiredTags: [],
      processors: 64,
      ramMb: 1e6,
      gpus: 8,
      cpuWork: 1e9,
    };
    const all = await findFittingTaskQueues(ctx.handle, everything);
    const waiting = await findFittingTaskQueues(ctx.handle, everything, { withWaitingJobs: true });
    expect(waiting).toEqual(all);
    await ctx.handle.query(`update jobs set status = 'Done' where task_queue_id = $1`, [all[0]]);
    expect(await findFittingTaskQueues(ctx.handle, everything, { withWaitingJobs: true })).toEqual(all.slice(1));
  });
});
