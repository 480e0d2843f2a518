/**
 * Sending again what failed on the way: one loop (`retrying`) whose caller decides, per
 * failure, how long to wait or to give up; and the pilot's policy on it (`retryUntil`):
 * exponential back-off with full jitter (a restarted server is not hit by every client in the
 * same second) until a deadline. The CLI words its own policy on the same loop
 * (`cli/client.ts`: whole seconds, said on stderr). An `AbortSignal` ends a wait at once.
 */
import { retryableLater } from './api-error.js';

/** A sleep that `signal` ends early. */
export function sleepUnless(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface RetryLoop {
  /**
   * The wait in ms before trying again after failure number `attempt` (0 first), `waitedMs`
   * having been waited so far; null to give up (the error is thrown).
   */
  wait(e: unknown, attempt: number, waitedMs: number): number | null;
  /** Hears about each failure that will be retried, before the wait. */
  onRetry?: (e: unknown, attempt: number, waitMs: number) => void;
  /** Stops the retries at once: the last error is thrown. */
  signal?: AbortSignal | undefined;
  /** For tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Runs `fn` until it succeeds or `loop` gives up (then throws the last error). */
export async function retrying<T>(fn: () => Promise<T>, loop: RetryLoop): Promise<T> {
  const sleep = loop.sleep ?? sleepUnless;
  let waited = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (loop.signal?.aborted) throw e;
      const wait = loop.wait(e, attempt, waited);
      if (wait === null) throw e;
      loop.onRetry?.(e, attempt, wait);
      await sleep(wait, loop.signal);
      waited += wait;
      if (loop.signal?.aborted) throw e;
    }
  }
}

/** A few quick tries: waits of `delaysMs` in turn while `retryable` accepts the error. */
export function quickRetries(delaysMs: readonly number[], retryable: (e: unknown) => boolean): RetryLoop {
  return { wait: (e, attempt) => (retryable(e) ? (delaysMs[attempt] ?? null) : null) };
}

/** Back-off of `retryUntil`: the first wait is up to `baseMs`, doubling up to `capMs`. */
export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, capMs: 15_000 };

/**
 * The wait before retry number `attempt` (0 first): full jitter, uniform in
 * [0, min(cap, base × 2^attempt)). Pure given `random`.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

export interface RetryOptions {
  /** Stop retrying once this time (ms since the epoch) has passed; the last error is thrown. */
  deadline: number;
  backoff?: BackoffPolicy;
  /** Stops the retries at once (the job stopped): the last error is thrown. */
  signal?: AbortSignal;
  /** Hears about each failed try that will be retried. */
  onRetry?: (e: unknown, attempt: number, waitMs: number) => void;
  random?: () => number;
  /** Which errors are worth another try (default `retryableLater`: no answer, 5xx, 429). */
  retryable?: (e: unknown) => boolean;
  now?: () => number;
}

/**
 * Runs `fn` until it succeeds, retrying what `retryable` accepts with back-off and jitter until
 * `deadline` (a wait never goes past it) or `signal`; then throws the last error.
 */
export function retryUntil<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  const now = o.now ?? Date.now;
  const isRetryable = o.retryable ?? retryableLater;
  return retrying(fn, {
    wait: (e, attempt) => {
      if (!isRetryable(e)) return null;
      const left = o.deadline - now();
      return left <= 0 ? null : Math.max(1, Math.min(left, backoffDelay(attempt, o.backoff, o.random)));
    },
    ...(o.onRetry ? { onRetry: o.onRetry } : {}),
    signal: o.signal,
  });
}
