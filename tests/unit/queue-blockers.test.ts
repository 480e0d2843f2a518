/**
 * What stops a CE queue from getting pilots (core/queue-blockers.ts): the rules the site
 * director applies and `wms job explain` shows, in their words, and the rules that do not apply.
 */
import { describe, expect, it } from 'vitest';
import { isoUtcSeconds, queueBlockers, type QueueState } from '../../core/queue-blockers.js';

const now = new Date('2026-12-04T14:00:00.000Z');

function queue(o: Partial<QueueState> = {}): QueueState {
  return {
    site: 'LCG.JINR.ru',
    ce: 'lxui.jinr.ru',
    ceType: 'slurm',
    ceSettings: {},
    settings: {},
    siteBanned: false,
    siteBanReason: null,
    ceBanned: false,
    ceBanReason: null,
    pausedUntil: null,
    pauseReason: null,
    allowedVos: [],
    maxWaitingPilots: 5,
    maxTotalPilots: 20,
    ...o,
  };
}

const idle = { waiting: 0, total: 0 };

describe('queueBlockers', () => {
  it('a healthy queue with room for pilots: nothing stops it, whatever the VO when it serves every VO', () => {
    expect(queueBlockers(queue(), idle, now)).toEqual([]);
    expect(queueBlockers(queue(), { waiting: 4, total: 19 }, now, 'atlas')).toEqual([]);
  });

  it('a pause says when it ends (UTC, to the second) and why; a pause that has ended stops nothing', () => {
    const paused = queue({
      pausedUntil: new Date('2026-12-04T15:00:00.400Z'),
      pauseReason: '3 pilots in a row failed (last: no local work dir); paused for 3600 s',
    });
    expect(queueBlockers(paused, idle, now)).toEqual([
      {
        kind: 'queue-paused',
        reason: 'queue paused until 2026-12-04T15:00:00Z: 3 pilots in a row failed (last: no local work dir); paused for 3600 s',
      },
    ]);
    expect(queueBlockers(queue({ pausedUntil: now, pauseReason: 'over' }), idle, now)).toEqual([]);
    expect(queueBlockers(queue({ pausedUntil: new Date('2026-12-04T14:30:00Z') }), idle, now)[0]!.reason).toBe(
      'queue paused until 2026-12-04T14:30:00Z',
    );
  });

  it('each full pilot limit is named with its count; one below the limit is not full', () => {
    expect(queueBlockers(queue(), { waiting: 5, total: 20 }, now)).toEqual([
      { kind: 'waiting-pilots-full', reason: 'queue has 5 of 5 waiting pilots (maxWaitingPilots)' },
      { kind: 'total-pilots-full', reason: 'queue has 20 of 20 live pilots (maxTotalPilots)' },
    ]);
    expect(queueBlockers(queue(), { waiting: 1, total: 20 }, now).map((b) => b.kind)).toEqual(['total-pilots-full']);
    expect(queueBlockers(queue({ maxWaitingPilots: 0 }), idle, now).map((b) => b.kind)).toEqual(['waiting-pilots-full']);
  });

  it('bans come first, with their reasons; a queue closed to the job’s VO says which VOs it serves', () => {
    const q = queue({ siteBanned: true, siteBanReason: 'downtime', ceBanned: true, allowedVos: ['atlas', 'cms'] });
    expect(queueBlockers(q, idle, now, 'vo1')).toEqual([
      { kind: 'site-banned', reason: 'site LCG.JINR.ru is banned: downtime' },
      { kind: 'ce-banned', reason: 'CE lxui.jinr.ru is banned' },
      { kind: 'vo-not-served', reason: 'queue serves VOs {atlas,cms}, job is of VO vo1' },
    ]);
    // Without a job there is no VO to refuse (the site director's view).
    expect(queueBlockers(q, idle, now).map((b) => b.kind)).toEqual(['site-banned', 'ce-banned']);
    expect(queueBlockers(q, idle, now, 'cms').map((b) => b.kind)).toEqual(['site-banned', 'ce-banned']);
  });

  it('CE settings the driver cannot work with are named one by one; valid settings stop nothing', () => {
    const cloud = queue({ ceType: 'opennebula', ceSettings: { user: 'wms', password: { env: 'ONE_PASSWORD' } } });
    const blockers = queueBlockers(cloud, idle, now);
    expect(blockers.length).toBeGreaterThan(0);
    expect(blockers.every((b) => b.kind === 'ce-settings-invalid' && b.reason.startsWith('CE settings invalid: '))).toBe(true);
    expect(blockers.map((b) => b.reason).join('\n')).toMatch(/settings\.endpoint/);
    const fixed = { ...cloud.ceSettings, endpoint: 'https://one.example.org:2633/RPC2', templateId: 7 };
    expect(queueBlockers({ ...cloud, ceSettings: fixed }, idle, now)).toEqual([]);
  });

  it('isoUtcSeconds drops the milliseconds and keeps the Z', () => {
    expect(isoUtcSeconds(new Date('2026-12-04T15:00:00.999Z'))).toBe('2026-12-04T15:00:00Z');
  });
});
