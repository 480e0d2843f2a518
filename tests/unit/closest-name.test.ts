/** "Did you mean": the nearest known name, or none when nothing is near enough. */
import { describe, expect, it } from 'vitest';
import { closestName } from '../../core/closest-name.js';

describe('closestName', () => {
  const names = ['LCG.CERN.ch', 'LCG.JINR.ru', 'accounting', 'job', 'pilot', 'share', 'site'];

  it('the same name in another case first', () => {
    expect(closestName('lcg.jinr.RU', names)).toBe('LCG.JINR.ru');
  });

  it('two neighbouring letters swapped', () => {
    expect(closestName('jbo', names)).toBe('job');
    expect(closestName('piolt', names)).toBe('pilot');
  });

  it('a small edit distance for the length of the name', () => {
    expect(closestName('sites', names)).toBe('site');
    expect(closestName('acounting', names)).toBe('accounting');
    expect(closestName('LCG.CERN.cz', names)).toBe('LCG.CERN.ch');
  });

  it('nothing when no name is near enough', () => {
    expect(closestName('xyz', names)).toBeUndefined();
    expect(closestName('jobs-list', names)).toBeUndefined();
    expect(closestName('ab', names)).toBeUndefined();
    expect(closestName('anything', [])).toBeUndefined();
  });
});
