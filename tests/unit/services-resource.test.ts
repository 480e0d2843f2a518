import { describe, expect, it } from 'vitest';
import { resourceOf } from '../../services/resource.js';

const pilot = { role: 'pilot' as const, user: 'pilot:1', vo: 'vo1', pilotId: 1 };
const admin = { role: 'admin' as const, user: 'root', vo: 'local', group: 'admin' };
const place = { site: 'S', ce: 'ce.s', queue: 'long' };

describe('resourceOf', () => {
  it('fills defaults', () => {
    expect(resourceOf({ site: 'S', cpuWork: 10 }, admin)).toEqual({
      site: 'S',
      cpuWork: 10,
      tags: [],
      requiredTags: [],
      processors: 1,
      ramMb: 0,
      gpus: 0,
    });
  });

  it('holds a pilot to its VO', () => {
    expect(resourceOf({ site: 'S', cpuWork: 10 }, pilot, place).vo).toBe('vo1');
    expect(resourceOf({ site: 'S', cpuWork: 10, vo: 'vo1' }, pilot, place).vo).toBe('vo1');
    expect(() => resourceOf({ site: 'S', cpuWork: 10, vo: 'vo2' }, pilot, place)).toThrowError(
      expect.objectContaining({ code: 'WMS_FORBIDDEN' }),
    );
    expect(resourceOf({ site: 'S', cpuWork: 10, vo: 'vo2' }, admin).vo).toBe('vo2');
  });

  it("holds a pilot to its record's site, CE and queue, whatever the body names; admins name any", () => {
    const r = resourceOf({ site: 'LCG.CERN.ch', ce: 'ce.cern.ch', queue: 'grid', cpuWork: 10 }, pilot, place);
    expect([r.site, r.ce, r.queue]).toEqual(['S', 'ce.s', 'long']);
    expect(() => resourceOf({ site: 'S', cpuWork: 10 }, pilot)).toThrowError(
      expect.objectContaining({ code: 'WMS_FORBIDDEN', message: expect.stringContaining('no record') }),
    );
    const a = resourceOf({ site: 'LCG.CERN.ch', ce: 'ce.cern.ch', cpuWork: 10 }, admin, place);
    expect([a.site, a.ce]).toEqual(['LCG.CERN.ch', 'ce.cern.ch']);
  });

  it('required tags must be offered', () => {
    expect(() => resourceOf({ site: 'S', cpuWork: 1, requiredTags: ['GPU'] }, admin)).toThrowError(
      expect.objectContaining({ code: 'WMS_VALIDATION' }),
    );
    expect(resourceOf({ site: 'S', cpuWork: 1, tags: ['GPU'], requiredTags: ['GPU'] }, admin).requiredTags).toEqual(['GPU']);
  });
});
