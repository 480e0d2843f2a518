/**
 * Pilot records for API tests: a pilot token is bound to its record (site, CE, queue come from
 * it, and it works only while the record is not final), so a test that matches as a pilot
 * first creates one.
 *
 * ```ts
 * const p = await pilotAt(t, { site: 'LCG.Test.org', ce: 'ce1.test.org', queue: 'long' });
 * await t.call('POST', '/api/match', p.token, resource);
 * ```
 */
import { randomUUID } from 'node:crypto';
import type { PilotState } from '../../core/pilot-states.js';
import { createPilots, updatePilots } from '../../db/index.js';
import type { TestApp } from './app.js';

export interface TestPilot {
  id: number;
  token: string;
}

/** A pilot record at `site`/`ce`/`queue` (default Running) and a pilot token bound to it. */
export async function pilotAt(
  t: TestApp,
  o: { site: string; ce: string; queue?: string; vo?: string; status?: PilotState; ttlSeconds?: number },
): Promise<TestPilot> {
  const vo = o.vo ?? 'vo1';
  const [id] = await createPilots(t.db, [
    { stamp: randomUUID(), site: o.site, ce: o.ce, ceType: 'local', queue: o.queue ?? 'long', queueId: null, vo },
  ]);
  const status = o.status ?? 'Running';
  if (status !== 'Submitted') await updatePilots(t.db, [id!], { status, reason: 'test' });
  const token = await t.tokenFor({ role: 'pilot', user: `pilot:${id}`, vo, pilotId: id! }, o.ttlSeconds ?? 3600);
  return { id: id!, token };
}
