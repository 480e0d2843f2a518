/**
 * clock-skew: how far the worker node's clock is from the server's, NTP style, and the refusal
 * of nodes beyond the configured limit (a skewed clock breaks token lifetimes, heartbeat ages
 * and the job timeline).
 *
 * One sample: note the node's time, ask the server for its time (`GET /api/time` answering
 * `{ now: ms since the epoch }`), note the node's time again. Assuming the answer was stamped
 * halfway through the round trip, offset = serverTime − (sentAt + receivedAt) / 2; its error is
 * at most half the round trip, so the sample with the shortest round trip is the one kept.
 *
 * Sign: a positive offset means the server is ahead, i.e. this node's clock is behind.
 */
import { PILOT_COMMAND_EXIT_CODES, PilotCommandError } from './command-error.js';

/** One exchange with the server; all three in ms since the epoch. */
export interface ClockSample {
  /** Node clock just before the request. */
  sentAt: number;
  /** Server clock in the answer. */
  serverTime: number;
  /** Node clock just after the answer. */
  receivedAt: number;
}

export interface ClockOffset {
  /** Server clock − node clock, seconds. */
  offsetSeconds: number;
  /** Round trip of the sample the offset comes from, ms. */
  roundTripMs: number;
}

export interface MeasuredClockOffset extends ClockOffset {
  /** Samples that succeeded. */
  samples: number;
}

function skewError(reason: string): PilotCommandError {
  return new PilotCommandError('clock-skew', reason, PILOT_COMMAND_EXIT_CODES['clock-skew']);
}

/** The offset from the sample with the shortest round trip. Pure; throws on no samples. */
export function estimateClockOffset(samples: readonly ClockSample[]): ClockOffset {
  let best: ClockSample | undefined;
  for (const s of samples) {
    if (!best || s.receivedAt - s.sentAt < best.receivedAt - best.sentAt) best = s;
  }
  if (!best) throw skewError('no clock sample to estimate the offset from');
  return {
    offsetSeconds: (best.serverTime - (best.sentAt + best.receivedAt) / 2) / 1000,
    roundTripMs: best.receivedAt - best.sentAt,
  };
}

/**
 * Takes `samples` samples one after the other and estimates the offset. A failed sample is
 * skipped; when all fail, throws a PilotCommandError (exit code 21) with the last failure.
 */
export async function measureClockOffset(opts: {
  fetchServerTime: () => Promise<number>;
  now: () => number;
  samples: number;
}): Promise<MeasuredClockOffset> {
  const taken: ClockSample[] = [];
  let lastError: unknown;
  for (let i = 0; i < Math.max(1, opts.samples); i++) {
    try {
      const sentAt = opts.now();
      const serverTime = await opts.fetchServerTime();
      const receivedAt = opts.now();
      if (!Number.isFinite(serverTime)) throw new Error(`the server sent ${String(serverTime)} as its time`);
      taken.push({ sentAt, serverTime, receivedAt });
    } catch (e) {
      lastError = e;
    }
  }
  if (taken.length === 0) {
    const why = lastError instanceof Error ? lastError.message : String(lastError);
    throw skewError(`cannot read the server's time: ${why}`);
  }
  return { ...estimateClockOffset(taken), samples: taken.length };
}

/** Refuses the node (PilotCommandError, exit code 21) when |offset| is above `maxSkewSeconds`. */
export function checkClockSkew(measured: ClockOffset, maxSkewSeconds: number): void {
  const offset = measured.offsetSeconds;
  if (Math.abs(offset) <= maxSkewSeconds) return;
  const direction = offset > 0 ? 'behind' : 'ahead of';
  throw skewError(
    `clock skew ${Math.abs(offset).toFixed(1)} s (limit ${maxSkewSeconds} s): this node's clock is ${direction} the server's; check NTP on the node`,
  );
}
