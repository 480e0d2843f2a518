/**
 * The pilot's DB12 with real worker threads and real child processes, on few draws so that a
 * run takes well under a second. Asserts what the result says, never how fast it was.
 */
import { describe, expect, it } from 'vitest';
import { DB12_CALIBRATION, runDb12, threadCpuClock } from '../../pilot/commands/db12.js';

const DRAWS = 200_000;

/** The calibrated score of the slowest copy, rounded to 0.1 as DIRAC does. */
function expectScoreIsCalibratedMinimum(r: { score: number; raw: number[]; calibration: number }) {
  expect(Math.abs(r.score - Math.min(...r.raw) * r.calibration)).toBeLessThanOrEqual(0.051);
  expect(Math.round(r.score * 10)).toBe(r.score * 10);
}

describe('runDb12', () => {
  it('one copy gives a positive finite score with the raw value, CPU time and engine', async () => {
    const r = await runDb12({ copies: 1, draws: DRAWS });
    expect(r.score).toBeGreaterThan(0);
    expect(Number.isFinite(r.score)).toBe(true);
    expect(r.raw).toHaveLength(1);
    expect(r.cpuSeconds).toHaveLength(1);
    expect(r.cpuSeconds[0]).toBeGreaterThan(0);
    expect(r.copies).toBe(1);
    expect(r.calibration).toBe(DB12_CALIBRATION);
    expect(r.engine).toBe(`node ${process.version}`);
    expectScoreIsCalibratedMinimum(r);
  });

  it('uses worker threads timed by their own thread clock where the kernel offers one', async () => {
    const clock = threadCpuClock();
    const r = await runDb12({ copies: 1, draws: DRAWS });
    if (clock) {
      expect(r.method).toBe('worker-thread');
      expect(r.cpuClock).toBe(clock);
    } else {
      expect(r.method).toBe('child-process');
      expect(r.cpuClock).toBe('process');
    }
  });

  it('two copies give two raw scores, ascending, and the score is the calibrated minimum', async () => {
    const r = await runDb12({ copies: 2, draws: DRAWS });
    expect(r.copies).toBe(2);
    expect(r.raw).toHaveLength(2);
    expect(r.cpuSeconds).toHaveLength(2);
    expect(r.raw[0]!).toBeLessThanOrEqual(r.raw[1]!);
    for (const raw of r.raw) expect(raw).toBeGreaterThan(0);
    expectScoreIsCalibratedMinimum(r);
  });

  it('runs copies as child processes when asked', async () => {
    const r = await runDb12({ copies: 2, draws: DRAWS, method: 'child-process' });
    expect(r.method).toBe('child-process');
    expect(r.cpuClock).toBe('process');
    expect(r.raw).toHaveLength(2);
    expectScoreIsCalibratedMinimum(r);
  });

  it('applies the calibration it is given', async () => {
    const r = await runDb12({ copies: 1, draws: DRAWS, calibration: 1 });
    expect(r.calibration).toBe(1);
    expect(r.score).toBeCloseTo(r.raw[0]!, 0);
  });

  it('refuses nonsense options with a db12 error a site admin can read', async () => {
    await expect(runDb12({ copies: 0 })).rejects.toMatchObject({
      command: 'db12',
      exitCode: 22,
      reason: 'copies must be a whole number >= 1, not 0',
    });
    await expect(runDb12({ copies: 1, draws: 10, calibration: -1 })).rejects.toMatchObject({ command: 'db12' });
  });
});
