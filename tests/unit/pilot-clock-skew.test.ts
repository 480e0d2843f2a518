/**
 * The pilot's clock-skew command: the NTP-style estimator, the sampling loop with an injected
 * clock and server, and the refusal of a skewed node.
 */
import { describe, expect, it } from 'vitest';
import { PILOT_COMMAND_EXIT_CODES, PilotCommandError, isPilotCommandError } from '../../pilot/commands/command-error.js';
import { checkClockSkew, estimateClockOffset, measureClockOffset } from '../../pilot/commands/clock-skew.js';

describe('estimateClockOffset', () => {
  it('keeps the sample with the shortest round trip', () => {
    const est = estimateClockOffset([
      { sentAt: 1_000, serverTime: 3_500, receivedAt: 1_400 }, // rtt 400, offset +2.3 s
      { sentAt: 2_000, serverTime: 4_010, receivedAt: 2_020 }, // rtt 20, offset +2.0 s
      { sentAt: 3_000, serverTime: 5_100, receivedAt: 3_100 }, // rtt 100, offset +2.05 s
    ]);
    expect(est.roundTripMs).toBe(20);
    expect(est.offsetSeconds).toBeCloseTo(2.0, 9);
  });

  it('is positive when the server is ahead of the node and negative when it is behind', () => {
    expect(estimateClockOffset([{ sentAt: 10_000, serverTime: 17_000, receivedAt: 10_000 }]).offsetSeconds).toBe(7);
    expect(estimateClockOffset([{ sentAt: 10_000, serverTime: 3_000, receivedAt: 10_000 }]).offsetSeconds).toBe(-7);
  });

  it('takes the midpoint of the round trip as the moment the server answered', () => {
    const est = estimateClockOffset([{ sentAt: 0, serverTime: 500, receivedAt: 1_000 }]);
    expect(est).toEqual({ offsetSeconds: 0, roundTripMs: 1_000 });
  });

  it('refuses an empty list with a clock-skew error', () => {
    expect(() => estimateClockOffset([])).toThrow(PilotCommandError);
  });
});

/** A node clock that advances `rttMs` per server call and a server `offsetMs` ahead of it. */
function fakeLink(offsetMs: number, rtts: number[]) {
  let clock = 1_700_000_000_000;
  let call = 0;
  return {
    now: () => clock,
    fetchServerTime: async () => {
      const rtt = rtts[call++ % rtts.length]!;
      clock += rtt / 2;
      const server = clock + offsetMs;
      clock += rtt / 2;
      return server;
    },
  };
}

describe('measureClockOffset', () => {
  it('takes the requested number of samples and recovers the offset', async () => {
    const link = fakeLink(-12_300, [80, 15, 40]);
    const m = await measureClockOffset({ ...link, samples: 5 });
    expect(m.samples).toBe(5);
    expect(m.roundTripMs).toBe(15);
    expect(m.offsetSeconds).toBeCloseTo(-12.3, 9);
  });

  it('skips failed samples and keeps the others', async () => {
    const link = fakeLink(1_000, [10]);
    let calls = 0;
    const m = await measureClockOffset({
      now: link.now,
      fetchServerTime: async () => {
        if (calls++ % 2 === 0) throw new Error('connection reset');
        return link.fetchServerTime();
      },
      samples: 4,
    });
    expect(m.samples).toBe(2);
    expect(m.offsetSeconds).toBeCloseTo(1, 9);
  });

  it('fails with the reason when no sample succeeds', async () => {
    const attempt = measureClockOffset({
      now: () => 0,
      fetchServerTime: () => Promise.reject(new Error('connect ECONNREFUSED 10.0.0.1:8080')),
      samples: 3,
    });
    await expect(attempt).rejects.toMatchObject({
      command: 'clock-skew',
      reason: "cannot read the server's time: connect ECONNREFUSED 10.0.0.1:8080",
      exitCode: PILOT_COMMAND_EXIT_CODES['clock-skew'],
    });
  });
});

describe('checkClockSkew', () => {
  it('accepts an offset within the limit, either sign', () => {
    expect(() => checkClockSkew({ offsetSeconds: 4.9, roundTripMs: 3 }, 5)).not.toThrow();
    expect(() => checkClockSkew({ offsetSeconds: -5, roundTripMs: 3 }, 5)).not.toThrow();
  });

  it('refuses a node whose clock is behind, saying by how much and the limit', () => {
    let caught: unknown;
    try {
      checkClockSkew({ offsetSeconds: 12.34, roundTripMs: 3 }, 5);
    } catch (e) {
      caught = e;
    }
    expect(isPilotCommandError(caught)).toBe(true);
    const e = caught as PilotCommandError;
    expect(e.command).toBe('clock-skew');
    expect(e.exitCode).toBe(21);
    expect(e.reason).toMatch(/^clock skew 12\.3 s \(limit 5 s\)/);
    expect(e.reason).toContain('behind');
    expect(e.message).toBe(`clock-skew: ${e.reason}`);
  });

  it('refuses a node whose clock is ahead, saying the size of the skew and its direction', () => {
    expect(() => checkClockSkew({ offsetSeconds: -30, roundTripMs: 3 }, 5)).toThrow(
      /clock skew 30\.0 s \(limit 5 s\): this node's clock is ahead of the server's/,
    );
  });
});

describe('exit codes', () => {
  it('differ per command', () => {
    const codes = Object.values(PILOT_COMMAND_EXIT_CODES);
    expect(new Set(codes).size).toBe(codes.length);
  });
});
