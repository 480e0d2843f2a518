/**
 * A director cycle the CE's driver fails pauses the queue with the driver's words as the reason
 * (CE health's pause lengths), so `wms site status` says why instead of "ok": a driver that
 * cannot be built (settings it refuses), one that throws, one that refuses every pilot. A
 * paused queue is not tried again before its pause ends; a cycle the process itself fails
 * (not the driver) pauses nothing.
 */
import { beforeEach, expect, it } from 'vitest';
import { createSiteDirector, type SiteDirectorDeps } from '../../agents/site-director.js';
import type { ComputingElement } from '../../agents/computing-elements/types.js';
import { resolveServiceConfig } from '../../core/config.js';
import { applySiteRegistry, listCeQueues, submitJobs } from '../../db/index.js';
import { rows } from '../../db/queries/raw.js';
import { makeJob } from '../db/fixtures.js';
import { describeDb } from '../helpers/db.js';
import { silentLogger } from '../../services/logger.js';

const REFUSED = 'SLURM CE c1: cannot connect to login.example:22: connection refused';

/** A driver that answers as `submit` says; counts its calls. */
function driverWith(submit: ComputingElement['submit'], calls: { n: number }): ComputingElement {
  return {
    type: 'slurm',
    submit: (q, p) => {
      calls.n++;
      return submit(q, p);
    },
    status: async () => new Map(),
    cancel: async () => undefined,
    cleanup: async () => undefined,
    availableSlots: async () => null,
    close: async () => undefined,
  };
}

describeDb('a failing director cycle', (ctx) => {
  beforeEach(async () => {
    await ctx.truncate();
    await applySiteRegistry(ctx.handle, {
      sites: [{ name: 'S.test', computingElements: [{ name: 'c1', type: 'slurm', queues: [{ name: 'q', maxPilotsPerCycle: 2 }] }] }],
    });
    await submitJobs(ctx.handle, [makeJob(), makeJob()]);
  });

  const tick = (drivers: SiteDirectorDeps['drivers']) =>
    createSiteDirector(
      { drivers, signPilotToken: async () => 'token', bundleSha256: async () => 'a'.repeat(64), serverUrl: () => 'http://127.0.0.1:1' },
      '* * * * * *',
    ).tick({ db: ctx.handle, config: resolveServiceConfig({}), now: () => new Date(), log: silentLogger(), previousTickAt: null });
  const queue = async () => (await listCeQueues(ctx.handle)).find((q) => q.queue === 'q')!;

  it('pauses the queue with the words of a driver that cannot be built, and does not try it again while paused', async () => {
    let built = 0;
    const drivers = () => {
      built++;
      throw new Error('OpenNebula CE c1: give exactly one of settings.templateId and settings.template');
    };
    await tick(drivers);
    const q = await queue();
    expect(q.pauseReason).toBe(
      'pilot submission failed: OpenNebula CE c1: give exactly one of settings.templateId and settings.template; paused for 300 s',
    );
    expect(q.pausedUntil!.getTime()).toBeGreaterThan(Date.now() + 290_000);
    await tick(drivers);
    expect(built).toBe(1);
  });

  it('pauses the queue when the driver throws or refuses every pilot, the pilots Aborted with the reason', async () => {
    const calls = { n: 0 };
    await tick(() =>
      driverWith(async (_q, pilots) => ({ submitted: [], failed: pilots.map((p) => ({ stamp: p.stamp, reason: REFUSED })) }), calls),
    );
    expect(calls.n).toBe(1);
    expect((await queue()).pauseReason).toBe(`pilot submission failed: ${REFUSED}; paused for 300 s`);
    const pilots = await rows<{ status: string; status_reason: string }>(ctx.handle, 'select status, status_reason from pilots');
    expect(pilots).toEqual([
      { status: 'Aborted', status_reason: `submission failed: ${REFUSED}` },
      { status: 'Aborted', status_reason: `submission failed: ${REFUSED}` },
    ]);

    // The next pause in a row is twice as long; a driver that throws is no different.
    await rows(ctx.handle, `update ce_queues set paused_until = now() - interval '1 second'`);
    await tick(() =>
      driverWith(async () => {
        throw new Error('HTCondor CE c1: condor_submit is not installed or not on PATH');
      }, calls),
    );
    expect((await queue()).pauseReason).toBe(
      'pilot submission failed: HTCondor CE c1: condor_submit is not installed or not on PATH; paused for 600 s',
    );
  });

  it('does not pause a queue that got some of its pilots, nor one whose cycle failed elsewhere', async () => {
    const calls = { n: 0 };
    await tick(() =>
      driverWith(
        async (_q, [first, ...rest]) => ({
          submitted: [{ stamp: first!.stamp, reference: 'slurm://c1/1' }],
          failed: rest.map((p) => ({ stamp: p.stamp, reason: REFUSED })),
        }),
        calls,
      ),
    );
    expect((await queue()).pausedUntil).toBeNull();
    const failing: SiteDirectorDeps['drivers'] = () => driverWith(async () => ({ submitted: [], failed: [] }), calls);
    await createSiteDirector(
      {
        drivers: failing,
        signPilotToken: async () => {
          throw new Error('signer unavailable');
        },
        bundleSha256: async () => 'a'.repeat(64),
        serverUrl: () => 'http://127.0.0.1:1',
      },
      '* * * * * *',
    ).tick({ db: ctx.handle, config: resolveServiceConfig({}), now: () => new Date(), log: silentLogger(), previousTickAt: null });
    expect((await queue()).pausedUntil).toBeNull();
  });
});
