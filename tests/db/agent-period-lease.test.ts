/**
 * Issue 14: an agent's scheduled period runs once across all processes. `takeLease` with
 * `{ period }` takes the lease only when, in the same statement, it is free (or expired, or
 * ours) AND no process took this period or a later one; `{ period: 'now' }` (runOnce) is never
 * refused for a period. Two holders racing for one period: exactly one wins, also after the
 * winner released the lease; a later period is taken again.
 */
import { beforeEach, expect, it } from 'vitest';
import { MAX_PERIOD_AHEAD_SECONDS, releaseLease, takeLease, tryTakeLease, type DbHandle } from '../../db/index.js';
import { describeDb, describePg } from '../helpers/db.js';

/** A period `seconds` from the database's now, floored to the second as the runner's are. */
async function periodAt(h: DbHandle, seconds: number): Promise<Date> {
  const [row] = await h.query<{ at: Date }>(`select date_trunc('second', now() + make_interval(secs => $1::float8)) as at`, [seconds]);
  return row!.at;
}

async function lastPeriod(h: DbHandle, agent: string): Promise<Date | null> {
  const [row] = await h.query<{ at: Date | null }>(`select last_period_at as at from agent_leases where agent = $1`, [agent]);
  return row?.at ?? null;
}

const release = (h: DbHandle, agent: string, holder: string) => releaseLease(h, agent, holder, { durationMs: 1, outcome: 'ok' });

describeDb('agent leases for scheduled periods', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('a period runs once: taken by one holder, refused to the next one even once released; a later period is taken', async () => {
    const p1 = await periodAt(ctx.handle, -2);
    const first = await takeLease(ctx.handle, 'a', 'h1', 60, { period: p1 });
    expect(first?.period).toEqual(p1);
    // Held: refused.
    expect(await tryTakeLease(ctx.handle, 'a', 'h2', 60, { period: p1 })).toBe(false);
    await release(ctx.handle, 'a', 'h1');
    // Free, but this period ran: refused (also to its first holder).
    expect(await tryTakeLease(ctx.handle, 'a', 'h2', 60, { period: p1 })).toBe(false);
    expect(await tryTakeLease(ctx.handle, 'a', 'h1', 60, { period: p1 })).toBe(false);
    // An earlier period (a process whose clock is behind): refused.
    expect(await tryTakeLease(ctx.handle, 'a', 'h2', 60, { period: new Date(p1.getTime() - 1000) })).toBe(false);
    // The next period: taken, by whoever comes first.
    const p2 = new Date(p1.getTime() + 1000);
    expect((await takeLease(ctx.handle, 'a', 'h2', 60, { period: p2 }))?.period).toEqual(p2);
    expect(await lastPeriod(ctx.handle, 'a')).toEqual(p2);
  });

  it('a renewal keeps the period; an expired lease is taken for a new period only', async () => {
    const p1 = await periodAt(ctx.handle, -3);
    expect(await tryTakeLease(ctx.handle, 'a', 'h1', 60, { period: p1 })).toBe(true);
    const renewed = await takeLease(ctx.handle, 'a', 'h1', 60);
    expect(renewed?.period).toEqual(p1);
    await ctx.handle.query(`update agent_leases set expires_at = now() - interval '1 second' where agent = 'a'`);
    expect(await tryTakeLease(ctx.handle, 'a', 'h2', 60, { period: p1 })).toBe(false);
    expect(await tryTakeLease(ctx.handle, 'a', 'h2', 60, { period: new Date(p1.getTime() + 1000) })).toBe(true);
  });

  it('runOnce ("now") is never refused for a period and records now; a period before it is then refused', async () => {
    const past = await periodAt(ctx.handle, -10);
    const ahead = await periodAt(ctx.handle, 2);
    expect(await tryTakeLease(ctx.handle, 'a', 'h1', 60, { period: ahead })).toBe(true);
    await release(ctx.handle, 'a', 'h1');
    // A period ahead of now was taken: "now" still runs, and keeps the later period.
    const once = await takeLease(ctx.handle, 'a', 'h2', 60, { period: 'now' });
    expect(once?.period).toEqual(ahead);
    await release(ctx.handle, 'a', 'h2');
    // On a fresh agent, "now" records the database's now: a late firing for an earlier period is refused.
    const fresh = await takeLease(ctx.handle, 'b', 'h2', 60, { period: 'now' });
    expect(fresh?.period).toEqual(fresh?.takenAt);
    await release(ctx.handle, 'b', 'h2');
    expect(await tryTakeLease(ctx.handle, 'b', 'h1', 60, { period: past })).toBe(false);
    // And "now" again is not blocked by it.
    expect(await tryTakeLease(ctx.handle, 'b', 'h1', 60, { period: 'now' })).toBe(true);
  });

  it(`a period more than ${MAX_PERIOD_AHEAD_SECONDS} s ahead of the database clock is refused (a wrong clock), for a new or an existing lease`, async () => {
    const far = await periodAt(ctx.handle, MAX_PERIOD_AHEAD_SECONDS + 60);
    expect(await tryTakeLease(ctx.handle, 'a', 'h1', 60, { period: far })).toBe(false);
    expect(await lastPeriod(ctx.handle, 'a')).toBeNull();
    expect(await tryTakeLease(ctx.handle, 'a', 'h1', 60, { period: await periodAt(ctx.handle, -1) })).toBe(true);
    await release(ctx.handle, 'a', 'h1');
    expect(await tryTakeLease(ctx.handle, 'a', 'h1', 60, { period: far })).toBe(false);
  });
});

describePg('agent leases for scheduled periods under concurrency', (ctx) => {
  beforeEach(() => ctx.truncate());

  it('two holders racing for the same period: exactly one wins, whether the lease is new, free or expired; a later period is taken again', async () => {
    const pool = await ctx.open({ poolSize: 8 });
    const base = await periodAt(ctx.handle, -60);
    const race = (agent: string, period: Date) =>
      Promise.all(['h1', 'h2'].map((holder) => tryTakeLease(pool, agent, holder, 60, { period })));
    for (let round = 0; round < 20; round++) {
      const agent = `agent-${round % 4}`;
      const period = new Date(base.getTime() + Math.floor(round / 4) * 1000);
      const wins = await race(agent, period);
      expect(wins.filter(Boolean)).toHaveLength(1);
      const winner = wins[0] ? 'h1' : 'h2';
      // Released: the same period is still refused to both.
      await release(ctx.handle, agent, winner);
      expect((await race(agent, period)).filter(Boolean)).toHaveLength(0);
      expect(await lastPeriod(ctx.handle, agent)).toEqual(period);
    }
    // Expired (a holder that died mid-tick) and a later period: one of the two takes it.
    await ctx.handle.query(`update agent_leases set holder = 'dead', expires_at = now() - interval '1 second'`);
    const later = new Date(base.getTime() + 10_000);
    for (let i = 0; i < 4; i++) expect((await race(`agent-${i}`, later)).filter(Boolean)).toHaveLength(1);
  });
});
