import { beforeEach, expect, it } from 'vitest';
import { listLeases, releaseLease, takeLease, tryTakeLease, type DbHandle } from '../../db/index.js';
import { describeDb, describePg } from '../helpers/db.js';

async function expire(h: DbHandle, agent: string): Promise<void> {
  await h.query(`update agent_leases set expires_at = now() - interval '1 second' where agent = $1`, [agent]);
}

describeDb('agent leases', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('one holder at a time; the holder renews; release frees it', async () => {
    expect(await tryTakeLease(ctx.handle, 'a', 'h1', 60)).toBe(true);
    expect(await tryTakeLease(ctx.handle, 'a', 'h2', 60)).toBe(false);
    // Another agent's lease is independent.
    expect(await tryTakeLease(ctx.handle, 'b', 'h2', 60)).toBe(true);
    // Renewal by the holder pushes the expiry.
    const [before] = (await listLeases(ctx.handle)).filter((l) => l.agent === 'a');
    const renewed = await takeLease(ctx.handle, 'a', 'h1', 600);
    expect(renewed).not.toBeNull();
    expect(renewed!.expiresAt.getTime()).toBeGreaterThan(before!.expiresAt!.getTime());
    expect(await releaseLease(ctx.handle, 'a', 'h1', { durationMs: 12.4, outcome: 'did things' })).toBe(true);
    expect(await tryTakeLease(ctx.handle, 'a', 'h2', 60)).toBe(true);
  });

  it('an expired lease lets the other holder in', async () => {
    expect(await tryTakeLease(ctx.handle, 'a', 'h1', 60)).toBe(true);
    expect(await tryTakeLease(ctx.handle, 'a', 'h2', 60)).toBe(false);
    await expire(ctx.handle, 'a');
    expect(await tryTakeLease(ctx.handle, 'a', 'h2', 60)).toBe(true);
    expect(await tryTakeLease(ctx.handle, 'a', 'h1', 60)).toBe(false);
    // h1's late release records its tick but does not free h2's lease.
    expect(await releaseLease(ctx.handle, 'a', 'h1', { durationMs: 70_000, outcome: 'slow' })).toBe(false);
    const [row] = await listLeases(ctx.handle);
    expect(row).toMatchObject({ agent: 'a', holder: 'h2', lastOutcome: 'slow', lastDurationMs: 70_000 });
  });

  it('release records the tick; the next take answers when the previous tick started', async () => {
    const first = await takeLease(ctx.handle, 'a', 'h1', 60);
    expect(first).toMatchObject({ previousTickAt: null });
    await releaseLease(ctx.handle, 'a', 'h1', { durationMs: 5, outcome: 'line one\n  line two', startedAt: first!.takenAt });
    const rows = await listLeases(ctx.handle);
    expect(rows).toEqual([
      { agent: 'a', holder: null, expiresAt: null, lastTickAt: first!.takenAt, lastDurationMs: 5, lastOutcome: 'line one | line two' },
    ]);
    const second = await takeLease(ctx.handle, 'a', 'h2', 60);
    expect(second!.previousTickAt).toEqual(first!.takenAt);
    expect(second!.takenAt.getTime()).toBeGreaterThanOrEqual(first!.takenAt.getTime());
  });
});

describePg('agent leases under concurrency', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('many processes racing for a new, a free and an expired lease: exactly one wins each time', async () => {
    const pool = await ctx.open({ poolSize: 24 });
    const race = (agent: string, round: number) =>
      Promise.all(Array.from({ length: 24 }, (_, i) => tryTakeLease(pool, agent, `holder-${round}-${i}`, 60)));
    for (let round = 0; round < 10; round++) {
      const agent = `agent-${round}`;
      // No row yet: the insert races.
      expect((await race(agent, round)).filter(Boolean)).toHaveLength(1);
      // Held: nobody else gets it.
      expect((await race(agent, round + 100)).filter(Boolean)).toHaveLength(0);
      // Expired: the conditional update races.
      await expire(ctx.handle, agent);
      expect((await race(agent, round + 200)).filter(Boolean)).toHaveLength(1);
      // Released (free): again one winner.
      const [row] = (await listLeases(ctx.handle)).filter((l) => l.agent === agent);
      await releaseLease(ctx.handle, agent, row!.holder!, { durationMs: 1, outcome: 'ok' });
      expect((await race(agent, round + 300)).filter(Boolean)).toHaveLength(1);
    }
  });
});
