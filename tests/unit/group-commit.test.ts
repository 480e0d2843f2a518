import { describe, expect, it } from 'vitest';
import { GroupCommit, type GroupCommitOptions } from '../../core/group-commit.js';

/** A writer whose calls end when the test says; it records each call's items. */
function writer(overrides: Partial<GroupCommitOptions<number, string>> = {}) {
  const calls: number[][] = [];
  const gates: (() => void)[] = [];
  const gate = () => new Promise<void>((r) => gates.push(r));
  const g = new GroupCommit<number, string>({
    parallel: 1,
    maxBatch: 3,
    one: async (x) => {
      calls.push([x]);
      await gate();
      return `one ${x}`;
    },
    many: async (xs) => {
      calls.push(xs);
      await gate();
      return xs.map((x) => `many ${x}`);
    },
    retryAlone: () => false,
    ...overrides,
  });
  const release = async () => {
    while (gates.length > 0) gates.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { g, calls, release };
}

describe('GroupCommit', () => {
  it('writes a lone item at once, and what arrives meanwhile together, up to maxBatch, each answered with its own', async () => {
    const { g, calls, release } = writer();
    const answers = [1, 2, 3, 4, 5].map((x) => g.write(x));
    expect(calls).toEqual([[1]]);
    await release();
    expect(calls).toEqual([[1], [2, 3, 4]]);
    await release();
    await release();
    expect(calls).toEqual([[1], [2, 3, 4], [5]]);
    expect(await Promise.all(answers)).toEqual(['one 1', 'many 2', 'many 3', 'many 4', 'one 5']);
  });

  it('never puts two items of one key in a batch, and orders each batch', async () => {
    const { g, calls, release } = writer({ maxBatch: 10, key: (x) => x % 10, order: (a, b) => b - a });
    const answers = [0, 11, 1, 12, 21].map((x) => g.write(x));
    for (let i = 0; i < 4; i++) await release();
    // 0 alone; then 11, 12 (21 and 1 share 11's key and wait), then 1 and 21 one at a time.
    expect(calls).toEqual([[0], [12, 11], [1], [21]]);
    expect(await Promise.all(answers)).toHaveLength(5);
  });

  it('after a failed batch writes each item alone when asked, else fails them all', async () => {
    for (const alone of [true, false]) {
      const g = new GroupCommit<number, number>({
        parallel: 1,
        maxBatch: 5,
        one: async (x) => {
          await new Promise((r) => setImmediate(r));
          if (x === 3) throw new Error('three');
          return x * 10;
        },
        many: () => Promise.reject(new Error('batch')),
        retryAlone: () => alone,
      });
      const answers = await Promise.allSettled([1, 2, 3, 4].map((x) => g.write(x)));
      const seen = answers.map((a) => (a.status === 'fulfilled' ? a.value : (a.reason as Error).message));
      expect(seen).toEqual(alone ? [10, 20, 'three', 40] : [10, 'batch', 'batch', 'batch']);
    }
  });
});
