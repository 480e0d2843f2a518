import { describe, expect, it } from 'vitest';
import type { LogBatch } from '../../core/pilot-protocol.js';
import { RemoteLog } from '../../pilot/remote-log.js';

/** A sender whose calls wait until released; each call is recorded with its lines. */
function gatedSender(fail: () => boolean) {
  const calls: string[][] = [];
  const gates: Array<() => void> = [];
  const send = (batch: LogBatch) => {
    calls.push(batch.lines.map((l) => l.line.replace(/^\S+ /, '')));
    return new Promise<void>((resolve, reject) => {
      gates.push(() => (fail() ? reject(new Error('cannot reach the server (ECONNREFUSED)')) : resolve()));
    });
  };
  /** Releases every send, as they come, until `p` settles. */
  const releaseUntil = async (p: Promise<unknown>) => {
    let settled = false;
    void p.finally(() => (settled = true));
    while (!settled) {
      gates.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { calls, send, releaseUntil };
}

function quietLog() {
  const echoed: string[] = [];
  let t = Date.UTC(2026, 10, 22);
  const log = new RemoteLog(
    () => (t += 1000),
    (l) => echoed.push(l),
  );
  return { log, echoed };
}

describe('RemoteLog', () => {
  it('sends lines logged before it connects first, in order', async () => {
    const { log } = quietLog();
    const s = gatedSender(() => false);
    log.log('one');
    log.log('two');
    log.connect(s.send, { batchLines: 100, flushSeconds: 3600 });
    log.log('three');
    await s.releaseUntil(log.close());
    expect(s.calls.flat()).toEqual(['one', 'two', 'three']);
  });

  it('does not pile up flushes while a send hangs: one runs, one waits, the rest share it', async () => {
    const { log } = quietLog();
    const s = gatedSender(() => true);
    log.connect(s.send, { batchLines: 1, flushSeconds: 3600 });
    log.log('first');
    await new Promise((r) => setImmediate(r));
    expect(s.calls.length).toBe(1); // in flight, hanging
    // batchLines 1: every line asks for a flush while the first send still hangs.
    for (let i = 0; i < 100; i++) log.log(`line ${i}`);
    const flushes = Array.from({ length: 50 }, () => log.flush());
    await s.releaseUntil(Promise.all(flushes));
    expect(s.calls.length).toBe(2);
    expect(s.calls[1]).toHaveLength(101); // the failed line and the hundred after it
  });

  it('keeps the lines a failed send could not deliver and sends them with the next, then closes with nothing left', async () => {
    const { log, echoed } = quietLog();
    let down = true;
    const s = gatedSender(() => down);
    log.connect(s.send, { batchLines: 100, flushSeconds: 3600 });
    log.log('while down');
    await s.releaseUntil(log.flush());
    expect(echoed.some((l) => l.startsWith('remote log: cannot reach the server'))).toBe(true);
    down = false;
    log.log('after');
    await s.releaseUntil(log.close());
    const delivered = s.calls.at(-1);
    expect(delivered).toEqual(['while down', 'after']);
    const callsAtClose = s.calls.length;
    await log.flush(); // nothing waits: no send
    expect(s.calls.length).toBe(callsAtClose);
  });
});
