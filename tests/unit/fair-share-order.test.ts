/**
 * The fair-share draw of the matcher (core/matching.ts `fairShareOrder`, used by db/ops/match.ts) at a size where the
 * proportions can be checked tightly: 400,000 draws put the standard error of a share near
 * 0.07 %, so a 1 % band is over 10 sigma and the test cannot flake, while DIRAC's U/p ordering
 * (first of weights 2 and 1 wins 3/4 of the time) would miss it by far.
 */
import { describe, expect, it } from 'vitest';
import { fairShareKeys, fairShareOrder, orderByKeys } from '../../core/matching.js';
import { seededRandom } from '../helpers/random.js';

function firstShares(weights: number[], draws: number): number[] {
  const ids = weights.map((_, i) => i);
  const wins = weights.map(() => 0);
  const random = seededRandom(7);
  for (let d = 0; d < draws; d++) wins[fairShareOrder(ids, weights, random)[0]!]!++;
  return wins.map((w) => w / draws);
}

describe('fair-share draw', () => {
  it('picks each queue first in exact proportion to its weight', () => {
    const shares = firstShares([1.5, 1.5, 1], 400_000);
    expect(shares[0]).toBeCloseTo(0.375, 2);
    expect(shares[1]).toBeCloseTo(0.375, 2);
    expect(shares[2]).toBeCloseTo(0.25, 2);
  });

  it('gives weights 2 and 1 the split 2/3 : 1/3, not the 3/4 : 1/4 of random() / p', () => {
    const [first] = firstShares([2, 1], 400_000);
    expect(Math.abs(first! - 2 / 3)).toBeLessThan(0.01);
  });

  it('returns every queue once, in a weighted order', () => {
    const order = fairShareOrder([10, 20, 30, 40], [1, 1e6, 1e-5, 1], seededRandom(3));
    expect([...order].sort()).toEqual([10, 20, 30, 40]);
    expect(order[0]).toBe(20);
    expect(order[3]).toBe(30);
  });

  it('gives the front of the order without sorting everything', () => {
    const ids = Array.from({ length: 500 }, (_, i) => i + 1);
    const weights = ids.map((i) => (i % 7) + 0.5);
    const random = seededRandom(11);
    for (let run = 0; run < 50; run++) {
      const keys = fairShareKeys(weights, random);
      const all = orderByKeys(ids, keys);
      expect(orderByKeys(ids, keys, 8)).toEqual(all.slice(0, 8));
      expect(orderByKeys(ids, keys, 1)).toEqual(all.slice(0, 1));
    }
    expect(orderByKeys([5, 6], new Float64Array([2, 1]), 8)).toEqual([6, 5]);
  });
});
