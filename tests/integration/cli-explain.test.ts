/**
 * `wms job explain` (run in this process against the real app on a random port) says what stops
 * a Waiting job, queue by queue, with the words of the site director's own rules: a paused queue
 * with the end of its pause, a queue at its pilot limit, a queue of another VO, a queue whose CE
 * settings are invalid; and the site director, ticked on the same registry, sends pilots exactly
 * where explain says a queue can run the job. A job that is not Waiting is said to be what it is.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSiteDirector } from '../../agents/site-director.js';
import type { ComputingElement } from '../../agents/computing-elements/types.js';
import { resolveServiceConfig } from '../../core/config.js';
import type { ExplainJob } from '../../api/index.js';
import { createPilots, matchJob, pauseQueue, reportJobStatus, submitJobs, upsertCeQueue, upsertComputingElement } from '../../db/index.js';
import { silentLogger } from '../../services/logger.js';
import { makeJob, makeResource } from '../db/fixtures.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { runWms } from '../helpers/cli.js';

const PAUSE_ENDS = new Date('2099-01-01T12:00:00.250Z');
const PAUSE_REASON = '3 pilots in a row failed (last: no local work dir: /scratch); paused for 3600 s';

let t: TestApp;
let url: string;
let alice: string;
let waiting: number;
let done: number;

const wms = (...args: string[]) => runWms(args, { url, token: alice });

/** The row of queue `name` in the readable answer. */
function rowOf(out: string, name: string): string {
  const row = out.split('\n').find((l) => l.split(/\s+/).includes(name));
  if (!row) throw new Error(`no queue ${name} in:\n${out}`);
  return row;
}

/** The answer of `wms job explain ID --json` for queue `name`. */
async function jsonOf(id: number, name: string): Promise<ExplainJob['queues'][number]> {
  const r = await wms('job', 'explain', String(id), '--json');
  const queue = (JSON.parse(r.out) as ExplainJob).queues.find((q) => q.queue === name);
  if (!queue) throw new Error(`no queue ${name} in:\n${r.out}`);
  return queue;
}

/** A site director whose driver records where it sends pilots. */
function director(sentTo: string[]) {
  const driver: ComputingElement = {
    type: 'slurm',
    submit: async (q, pilots) => {
      sentTo.push(...pilots.map(() => q.queue));
      return { submitted: pilots.map((p) => ({ stamp: p.stamp, reference: `fake://${p.stamp}` })), failed: [] };
    },
    status: async () => new Map(),
    cancel: async () => undefined,
    cleanup: async () => undefined,
    availableSlots: async () => null,
    close: async () => undefined,
  };
  const d = createSiteDirector(
    {
      drivers: () => driver,
      signPilotToken: async () => 'token',
      bundleSha256: async () => 'a'.repeat(64),
      serverUrl: () => 'http://127.0.0.1:1',
    },
    '* * * * * *',
  );
  const config = resolveServiceConfig({});
  return () => d.tick({ db: t.db, config, now: () => new Date(), log: silentLogger(), previousTickAt: null });
}

beforeAll(async () => {
  t = await createTestApp();
  url = await t.app.listen({ host: '127.0.0.1', port: 0 });
  alice = await t.user('alice');
  // A job that ran and ended, then the job that waits.
  [done] = (await submitJobs(t.db, [makeJob()])) as [number];
  await matchJob(t.db, makeResource());
  for (const status of ['Running', 'Done'] as const) await reportJobStatus(t.db, done, null, { status, minorStatus: status }, 'JobWrapper');
  [waiting] = (await submitJobs(t.db, [makeJob()])) as [number];

  await upsertComputingElement(t.db, { site: 'LCG.Paused.org', name: 'ce.paused.org', type: 'slurm' });
  const paused = await upsertCeQueue(t.db, { ce: 'ce.paused.org', name: 'pausedq' });
  await pauseQueue(t.db, paused, PAUSE_ENDS, PAUSE_REASON);

  await upsertComputingElement(t.db, { site: 'LCG.Full.org', name: 'ce.full.org', type: 'slurm' });
  const full = await upsertCeQueue(t.db, { ce: 'ce.full.org', name: 'fullq', maxWaitingPilots: 2 });
  const pilot = { site: 'LCG.Full.org', ce: 'ce.full.org', ceType: 'slurm', queue: 'fullq', queueId: full, vo: 'vo1' };
  await createPilots(t.db, [
    { ...pilot, stamp: 'full-1' },
    { ...pilot, stamp: 'full-2' },
  ]);

  await upsertComputingElement(t.db, { site: 'LCG.Atlas.org', name: 'ce.atlas.org', type: 'slurm' });
  await upsertCeQueue(t.db, { ce: 'ce.atlas.org', name: 'atlasq', allowedVos: ['atlas'] });

  // An OpenNebula CE without its endpoint, user and template: its driver cannot start a VM.
  await upsertComputingElement(t.db, { site: 'CLOUD.Broken.org', name: 'one.broken.org', type: 'opennebula', settings: {} });
  await upsertCeQueue(t.db, { ce: 'one.broken.org', name: 'vmq' });
});
afterAll(() => t?.close());

describe('wms job explain, a Waiting job', () => {
  it('a paused queue: when its pause ends (UTC) and why', async () => {
    const r = await wms('job', 'explain', String(waiting));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const row = rowOf(r.out, 'pausedq');
    expect(row).toMatch(/\bno\b/);
    expect(row).toContain(`queue paused until 2099-01-01T12:00:00Z: ${PAUSE_REASON}`);
  });

  it('a queue at its pilot limit: which limit, and how many pilots it has', async () => {
    const row = rowOf((await wms('job', 'explain', String(waiting))).out, 'fullq');
    expect(row).toMatch(/\bno\b/);
    expect(row).toContain('queue has 2 of 2 waiting pilots (maxWaitingPilots)');
  });

  it('a queue of another VO: the VOs it serves and the job’s', async () => {
    const row = rowOf((await wms('job', 'explain', String(waiting))).out, 'atlasq');
    expect(row).toMatch(/\bno\b/);
    expect(row).toContain('queue serves VOs {atlas}, job is of VO vo1');
    expect((await jsonOf(waiting, 'atlasq')).blockers).toEqual([
      { kind: 'vo-not-served', reason: 'queue serves VOs {atlas}, job is of VO vo1' },
    ]);
  });

  it('a queue whose CE settings are invalid: each problem, named', async () => {
    const row = rowOf((await wms('job', 'explain', String(waiting))).out, 'vmq');
    expect(row).toMatch(/\bno\b/);
    expect(row).toMatch(/CE settings invalid: settings\.endpoint: /);
  });

  it('none can run it: the summary says so, and that the job’s requirements are not at fault; the site director agrees', async () => {
    const r = await wms('job', 'explain', String(waiting));
    expect(r.out).toContain(
      'blocked: none of the 4 registered queues can run this job (see their reasons); its requirements fit 4 of them, which get no pilot now',
    );
    expect(r.out).not.toMatch(/nothing stops it|\byes\b/);
    const sentTo: string[] = [];
    const tick = director(sentTo);
    await tick();
    expect(sentTo).toEqual([]);

    // A queue nothing stops: explain says so, and that is where the director sends pilots.
    await upsertComputingElement(t.db, { site: 'LCG.Open.org', name: 'ce.open.org', type: 'slurm' });
    await upsertCeQueue(t.db, { ce: 'ce.open.org', name: 'openq', maxPilotsPerCycle: 1 });
    const now = await wms('job', 'explain', String(waiting));
    expect(now.out).toContain('nothing stops it: a pilot from a queue marked yes below can run it');
    expect(rowOf(now.out, 'openq')).toMatch(/\byes\s+-$/);
    await tick();
    expect(sentTo).toEqual(['openq']);
  });

  it('--json carries the same sentences, with their kinds, the end of the pause and the pilot counts', async () => {
    const r = await wms('job', 'explain', String(waiting), '--json');
    const a = JSON.parse(r.out) as ExplainJob;
    const q = (name: string) => a.queues.find((x) => x.queue === name)!;
    expect(q('pausedq').pausedUntil).toBe(PAUSE_ENDS.toISOString());
    expect(q('pausedq').blockers).toEqual([{ kind: 'queue-paused', reason: `queue paused until 2099-01-01T12:00:00Z: ${PAUSE_REASON}` }]);
    expect(q('fullq').pilots).toEqual({ waiting: 2, total: 2, maxWaiting: 2, maxTotal: 100 });
    expect(q('atlasq').blockers.map((b) => b.kind)).toEqual(['vo-not-served']);
    expect(q('vmq').blockers.every((b) => b.kind === 'ce-settings-invalid')).toBe(true);
    for (const x of a.queues) expect(x.reasons).toEqual(x.blockers.map((b) => b.reason));
  });
});

describe('wms job explain, a job that is not Waiting', () => {
  it('a Done job is said to be done: not blocked, nothing about what stops it, no queue table', async () => {
    const r = await wms('job', 'explain', String(done));
    expect(r.code).toBe(0);
    expect(r.out).toContain(`job ${done} is Done: it is not waiting for a pilot`);
    expect(r.out).not.toMatch(/blocked|nothing stops|CAN RUN/);
  });
});
