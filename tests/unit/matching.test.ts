import { describe, expect, it } from 'vitest';
import {
  impliedTag,
  matches,
  normalizeResource,
  rejectionsFor,
  type ResourceDescription,
  type TaskQueueRequirements,
} from '../../core/matching.js';

const tq = (o: Partial<TaskQueueRequirements> = {}): TaskQueueRequirements => ({
  ownerGroup: 'users',
  vo: 'vo1',
  cpuTime: 3600,
  sites: [],
  bannedSites: [],
  gridCEs: [],
  platforms: [],
  jobTypes: ['User'],
  tags: [],
  processors: 1,
  ramMb: 0,
  gpus: 0,
  ...o,
});

const res = (o: Partial<ResourceDescription> = {}): ResourceDescription => ({
  site: 'C',
  tags: [],
  requiredTags: [],
  processors: 4,
  ramMb: 2048,
  gpus: 0,
  cpuWork: 3600,
  ...o,
});

describe('rejectionsFor', () => {
  it('accepts a queue with no restrictions that fits the numbers', () => {
    expect(rejectionsFor(tq(), res())).toEqual([]);
    expect(matches(tq(), res())).toBe(true);
  });

  it('names each reason in readable words', () => {
    expect(rejectionsFor(tq({ sites: ['A', 'B'] }), res())).toEqual(['needs site in {A,B}, resource is at C']);
    expect(rejectionsFor(tq({ bannedSites: ['C'] }), res())).toEqual(['bans site C']);
    expect(rejectionsFor(tq({ processors: 8 }), res())).toEqual(['needs 8 processors, resource offers 4']);
    expect(rejectionsFor(tq({ cpuTime: 86400 }), res())).toEqual(['CPU time 86400 > resource CPU work 3600']);
    expect(rejectionsFor(tq({ tags: ['GPU'] }), res())).toEqual(['tag GPU not offered']);
    expect(rejectionsFor(tq({ ramMb: 4096 }), res())).toEqual(['needs 4096 MB RAM, resource offers 2048']);
    expect(rejectionsFor(tq({ gpus: 2 }), res())).toEqual(['needs 2 GPUs, resource offers 0']);
    expect(rejectionsFor(tq({ gridCEs: ['ce1'] }), res())).toEqual(['needs CE in {ce1}, resource names no CE']);
    expect(rejectionsFor(tq({ gridCEs: ['ce1'] }), res({ ce: 'ce2' }))).toEqual(['needs CE in {ce1}, resource CE is ce2']);
    expect(rejectionsFor(tq({ platforms: ['EL9'] }), res())).toEqual(['needs platform in {EL9}, resource states no platform']);
    expect(rejectionsFor(tq({ platforms: ['EL9'] }), res({ platform: 'EL8' }))).toEqual([
      'needs platform in {EL9}, resource platform is EL8',
    ]);
    expect(rejectionsFor(tq(), res({ vo: 'vo2' }))).toEqual(['belongs to VO vo1, resource serves VO vo2']);
    expect(rejectionsFor(tq(), res({ ownerGroups: ['prod'] }))).toEqual(["group users is not among the resource's groups {prod}"]);
    expect(rejectionsFor(tq(), res({ jobTypes: ['MC'] }))).toEqual(['job type {User} not accepted, resource takes {MC}']);
    expect(rejectionsFor(tq(), res({ requiredTags: ['WholeNode'] }))).toEqual(['resource requires tag WholeNode, queue lacks it']);
  });

  it('lists every reason at once, in a fixed order', () => {
    expect(rejectionsFor(tq({ cpuTime: 1e6, processors: 64, tags: ['X', 'Y'] }), res())).toEqual([
      'CPU time 1000000 > resource CPU work 3600',
      'tag X not offered',
      'tag Y not offered',
      'needs 64 processors, resource offers 4',
    ]);
  });

  it('treats limits as inclusive and required tags as offered', () => {
    expect(rejectionsFor(tq({ cpuTime: 3600, processors: 4, ramMb: 2048 }), res())).toEqual([]);
    expect(rejectionsFor(tq({ tags: ['WholeNode'] }), res({ requiredTags: ['WholeNode'] }))).toEqual([]);
    expect(normalizeResource(res({ tags: ['b', 'a', 'b'], requiredTags: ['c'] })).tags).toEqual(['a', 'b', 'c']);
  });

  it('a queue without job types is taken by any resource; one with types needs an overlap', () => {
    expect(rejectionsFor(tq({ jobTypes: [] }), res({ jobTypes: ['MC'] }))).toEqual([]);
    expect(rejectionsFor(tq({ jobTypes: ['MC', 'User'] }), res({ jobTypes: ['MC'] }))).toEqual([]);
  });
});

describe("DIRAC's tag ladders (Matcher._processResourceDescription)", () => {
  it('a resource with N processors offers 2Processors..NProcessors and MultiProcessor', () => {
    const four = { processors: 4, ramMb: 0 };
    expect(['2Processors', '3Processors', '4Processors', 'MultiProcessor'].filter((t) => impliedTag(four, t))).toHaveLength(4);
    expect(impliedTag(four, '5Processors')).toBe(false);
    expect(impliedTag(four, '1Processors')).toBe(false);
    expect(impliedTag(four, '04Processors')).toBe(false);
    const one = { processors: 1, ramMb: 0 };
    expect(impliedTag(one, 'MultiProcessor')).toBe(false);
    expect(impliedTag(one, '2Processors')).toBe(false);
    // a fraction of a core does not count (DIRAC: int())
    expect(impliedTag({ processors: 2.9, ramMb: 0 }, '3Processors')).toBe(false);
    expect(impliedTag({ processors: 2.9, ramMb: 0 }, '2Processors')).toBe(true);
  });

  it('a resource with R MB offers 2GB..kGB, k = R / 1000 rounded down; never 1GB', () => {
    expect(impliedTag({ processors: 1, ramMb: 8000 }, '8GB')).toBe(true);
    expect(impliedTag({ processors: 1, ramMb: 7999 }, '8GB')).toBe(false);
    expect(impliedTag({ processors: 1, ramMb: 7999 }, '7GB')).toBe(true);
    expect(impliedTag({ processors: 1, ramMb: 8000 }, '1GB')).toBe(false);
    expect(impliedTag({ processors: 1, ramMb: 8000 }, '0GB')).toBe(false);
  });

  it('the ladders stop at 1024 (DIRAC offers none at all above it)', () => {
    const huge = { processors: 4096, ramMb: 4_000_000 };
    expect(impliedTag(huge, '1024Processors')).toBe(true);
    expect(impliedTag(huge, '1025Processors')).toBe(false);
    expect(impliedTag(huge, '1024GB')).toBe(true);
    expect(impliedTag(huge, '2000GB')).toBe(false);
    expect(impliedTag(huge, 'MultiProcessor')).toBe(true);
  });

  it('a queue with DIRAC-derived tags matches a resource through its numbers alone', () => {
    const job = tq({ processors: 4, ramMb: 8000, tags: ['4Processors', '8GB', 'MultiProcessor'] });
    expect(rejectionsFor(job, res({ processors: 4, ramMb: 8000 }))).toEqual([]);
    expect(rejectionsFor(job, res({ processors: 8, ramMb: 16000 }))).toEqual([]);
    expect(rejectionsFor(job, res({ processors: 2, ramMb: 8000 }))).toEqual([
      'tag 4Processors not offered',
      'needs 4 processors, resource offers 2',
    ]);
    expect(rejectionsFor(job, res({ processors: 4, ramMb: 7999 }))).toEqual([
      'tag 8GB not offered',
      'needs 8000 MB RAM, resource offers 7999',
    ]);
    // a resource that sends DIRAC's ladder itself is read the same way
    expect(rejectionsFor(job, res({ processors: 4, ramMb: 8000, tags: ['2Processors', '4Processors', 'MultiProcessor'] }))).toEqual([]);
  });

  it('explain shows the resource as sent: the ladder is not written into its tags', () => {
    expect(normalizeResource(res({ processors: 64, ramMb: 256_000 })).tags).toEqual([]);
  });
});
