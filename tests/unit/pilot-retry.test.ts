/**
 * The pilot's retry policy (io/retry.ts, pilot/client.ts): back-off with full jitter, bounded by a deadline;
 * what is worth retrying; claim ids.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, retryableLater } from '../../io/api-error.js';
import { backoffDelay, retryUntil } from '../../io/retry.js';
import { isJobNotHeld, newClaimId } from '../../pilot/client.js';
import { ClaimIdSchema, JOB_NOT_HELD_CODE } from '../../core/pilot-protocol.js';
import { Value } from 'typebox/value';

describe('backoffDelay', () => {
  it('doubles from the base up to the cap, with full jitter', () => {
    const policy = { baseMs: 1000, capMs: 15_000 };
    expect([0, 1, 2, 3, 4, 5, 10].map((n) => backoffDelay(n, policy, () => 0.999999))).toEqual([
      999, 1999, 3999, 7999, 14_999, 14_999, 14_999,
    ]);
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
    expect(backoffDelay(2, policy, () => 0.5)).toBe(2000);
  });
});

describe('retryUntil', () => {
  it('retries failures on the way until it succeeds', async () => {
    let tries = 0;
    const waits: number[] = [];
    const r = await retryUntil(
      async () => {
        if (++tries < 4) throw new ApiError('away', tries === 1 ? 0 : tries === 2 ? 503 : 429);
        return 'ok';
      },
      { deadline: Date.now() + 5000, backoff: { baseMs: 4, capMs: 8 }, onRetry: (_e, _a, w) => waits.push(w) },
    );
    expect(r).toBe('ok');
    expect(tries).toBe(4);
    expect(waits).toHaveLength(3);
    expect(waits.every((w) => w >= 1 && w <= 8)).toBe(true);
  });

  it('never retries an answer (4xx other than 429)', async () => {
    let tries = 0;
    await expect(
      retryUntil(
        async () => {
          tries++;
          throw new ApiError('refused', 403, 'WMS_FORBIDDEN');
        },
        { deadline: Date.now() + 5000 },
      ),
    ).rejects.toThrow('refused');
    expect(tries).toBe(1);
  });

  describe('on a fake clock', () => {
    afterEach(() => vi.useRealTimers());

    /** Whether `p` has settled, read after the clock is moved on. */
    function settledFlag(p: Promise<unknown>): () => boolean {
      let settled = false;
      p.then(
        () => (settled = true),
        () => (settled = true),
      );
      return () => settled;
    }

    it('gives up once the deadline has passed: at most one back-off after it', async () => {
      vi.useFakeTimers();
      let tries = 0;
      const run = retryUntil(
        async () => {
          tries++;
          throw new ApiError('away', 0);
        },
        { deadline: Date.now() + 100, backoff: { baseMs: 20, capMs: 40 } },
      );
      const settled = settledFlag(run);
      await vi.advanceTimersByTimeAsync(99);
      expect(settled()).toBe(false);
      await vi.advanceTimersByTimeAsync(41);
      expect(settled()).toBe(true);
      await expect(run).rejects.toThrow('away');
      expect(tries).toBeGreaterThan(1);
    });

    it('stops at once when its signal is aborted, not after the back-off', async () => {
      vi.useFakeTimers();
      const stop = new AbortController();
      setTimeout(() => stop.abort(), 30);
      const run = retryUntil(
        async () => {
          throw new ApiError('away', 503);
        },
        { deadline: Date.now() + 60_000, backoff: { baseMs: 10_000, capMs: 10_000 }, random: () => 0.99, signal: stop.signal },
      );
      const settled = settledFlag(run);
      await vi.advanceTimersByTimeAsync(29);
      expect(settled()).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(settled()).toBe(true);
      await expect(run).rejects.toThrow('away');
    });
  });
});

describe('what is worth retrying', () => {
  it('connection failures, 5xx and 429; never another answer', () => {
    expect([0, 429, 500, 502, 503, 504].map((s) => retryableLater(new ApiError('x', s)))).toEqual([true, true, true, true, true, true]);
    expect([400, 401, 403, 404, 409].map((s) => retryableLater(new ApiError('x', s)))).toEqual([false, false, false, false, false]);
    expect(retryableLater(new Error('x'))).toBe(false);
  });

  it('a job no longer held is a 409 with its code, nothing else', () => {
    expect(isJobNotHeld(new ApiError('x', 409, JOB_NOT_HELD_CODE))).toBe(true);
    expect(isJobNotHeld(new ApiError('x', 403, 'WMS_FORBIDDEN'))).toBe(false);
    expect(isJobNotHeld(new ApiError('x', 409))).toBe(false);
  });
});

describe('newClaimId', () => {
  it('is random and fits the schema', () => {
    const ids = new Set(Array.from({ length: 100 }, () => newClaimId()));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(Value.Check(ClaimIdSchema, id)).toBe(true);
    expect(Value.Check(ClaimIdSchema, 'short')).toBe(false);
    expect(Value.Check(ClaimIdSchema, 'has space in it')).toBe(false);
  });
});
