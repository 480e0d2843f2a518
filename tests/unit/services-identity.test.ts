import { describe, expect, it } from 'vitest';
import { claimsOf, inScope, ownerScope, principalFromClaims, submitterOf, type Principal } from '../../core/identity.js';

describe('claims and principals', () => {
  const principals: Principal[] = [
    { role: 'user', user: 'alice', vo: 'vo1', group: 'vo1_user' },
    { role: 'admin', user: 'root', vo: 'local', group: 'admin' },
    { role: 'site-admin', user: 'sam', vo: 'vo1', group: 'vo1_site' },
    { role: 'pilot', user: 'pilot:7', vo: 'vo1', pilotId: 7 },
    { role: 'job', user: 'alice', vo: 'vo1', group: 'vo1_user', jobId: 12, pilotId: 7 },
    { role: 'job', user: 'alice', vo: 'vo1', group: 'vo1_user', jobId: 13, pilotId: null },
  ];

  it.each(principals)('round-trips $role', (p) => {
    expect(principalFromClaims({ ...claimsOf(p) })).toEqual(p);
  });

  it('refuses payloads of the wrong shape', () => {
    const bad: Record<string, unknown>[] = [
      {},
      { sub: 'a', role: 'god', vo: 'v', group: 'g' },
      { sub: 'a', role: 'user', vo: 'v' },
      { sub: '', role: 'user', vo: 'v', group: 'g' },
      { sub: 'p', role: 'pilot', vo: 'v' },
      { sub: 'p', role: 'pilot', vo: 'v', pilot: '7' },
      { sub: 'a', role: 'job', vo: 'v', group: 'g', job: 0 },
    ];
    for (const payload of bad) {
      expect(() => principalFromClaims(payload)).toThrowError(expect.objectContaining({ code: 'WMS_AUTH_INVALID' }));
    }
  });

  it('owner scope: admins none, users and job tokens their owner, others nobody', () => {
    expect(ownerScope(principals[1]!)).toEqual({});
    // A user is the pair (VO, name): alice of vo1 is not alice of vo2.
    expect(ownerScope(principals[0]!)).toEqual({ owner: 'alice', vo: 'vo1' });
    expect(ownerScope(principals[4]!)).toEqual({ owner: 'alice', vo: 'vo1' });
    expect(inScope(ownerScope(principals[0]!), { owner: 'alice', vo: 'vo1' })).toBe(true);
    expect(inScope(ownerScope(principals[0]!), { owner: 'alice', vo: 'vo2' })).toBe(false);
    expect(inScope(ownerScope(principals[0]!), { owner: 'bob', vo: 'vo1' })).toBe(false);
    expect(inScope(ownerScope(principals[1]!), { owner: 'anyone', vo: 'any' })).toBe(true);
    expect(inScope(ownerScope(principals[2]!), { owner: 'sam', vo: 'vo1' })).toBe(false);
    expect(ownerScope(principals[2]!).owner).toContain(':');
    expect(ownerScope(principals[3]!).owner).toContain(':');
  });

  it('the submitter is the token subject', () => {
    expect(submitterOf({ role: 'user', user: 'alice', vo: 'vo1', group: 'g' })).toEqual({ owner: 'alice', ownerGroup: 'g', vo: 'vo1' });
  });
});
