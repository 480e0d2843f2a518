/**
 * Why a registered CE queue gets no new pilot now, in words: a banned site or CE, a pause after
 * failed pilots (CE health), a pilot limit that is full, a VO the queue does not serve, CE
 * settings its driver cannot work with (core/site-config.ts `ceSettingsProblems`). Written
 * once, here: the site director skips a queue for these reasons (agents/site-director.ts) and
 * `explainJob` (db/ops/match.ts) shows them, so the two cannot disagree. Pure.
 *
 * The pilots a queue already has still take jobs: a paused or full queue stops new pilots, not
 * the matcher.
 */

import { ceSettingsProblems } from './site-config.js';

/** What stops a queue, one kind per rule; `vo-not-served` only when a job's VO is given. */
export const QUEUE_BLOCKER_KINDS = [
  'site-banned',
  'ce-banned',
  'queue-paused',
  'vo-not-served',
  'waiting-pilots-full',
  'total-pilots-full',
  'ce-settings-invalid',
] as const;
export type QueueBlockerKind = (typeof QUEUE_BLOCKER_KINDS)[number];

/**
 * Why a job cannot run at a queue (`wms job explain`): what stops the queue, or `requirement`
 * (the job needs what the queue's pilots lack; the user can change it), or `no-task-queue`.
 */
export const EXPLAIN_REASON_KINDS = [...QUEUE_BLOCKER_KINDS, 'requirement', 'no-task-queue'] as const;
export type ExplainReasonKind = (typeof EXPLAIN_REASON_KINDS)[number];

/** A banned queue gets no pilot and no job: the site director does not consider it at all. */
export const BAN_KINDS: readonly QueueBlockerKind[] = ['site-banned', 'ce-banned'];
/** The queue has all the pilots its limits allow: more come when some start or end. */
export const PILOT_LIMIT_KINDS: readonly QueueBlockerKind[] = ['waiting-pilots-full', 'total-pilots-full'];

export interface QueueBlocker {
  kind: QueueBlockerKind;
  /** One sentence, as the CLI, the API and the dashboard show it. */
  reason: string;
}

/** The fields of a registered queue (db's `CeQueueView`) the rules read. */
export interface QueueState {
  site: string;
  ce: string;
  ceType: string;
  /** Backend settings of the CE, and the queue's (over the CE's). */
  ceSettings: Readonly<Record<string, unknown>>;
  settings: Readonly<Record<string, unknown>>;
  siteBanned: boolean;
  siteBanReason: string | null;
  ceBanned: boolean;
  ceBanReason: string | null;
  /** CE health: no pilots before this time, and why (null when never paused). */
  pausedUntil: Date | null;
  pauseReason: string | null;
  /** VOs the queue serves; empty: every VO. */
  allowedVos: readonly string[];
  maxWaitingPilots: number;
  maxTotalPilots: number;
}

/** The queue's pilots now: waiting (submitted or idle) and live (every pilot not final). */
export interface QueuePilotCounts {
  waiting: number;
  total: number;
}

/** `2026-12-04T15:00:00.000Z` -> `2026-12-04T15:00:00Z`: UTC, to the second. */
export function isoUtcSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** "site S is banned: reason" / "CE C is banned" (the matcher's explain says it the same way). */
export function banReason(kind: 'site' | 'CE', name: string, reason: string | null): string {
  return `${kind} ${name} is banned${reason ? `: ${reason}` : ''}`;
}

/**
 * Every reason the site director sends the queue no pilot at `now`, in a fixed order; `[]` when
 * nothing stops it (it still sends pilots only for waiting work that fits). With `jobVo`, a
 * queue closed to that VO says so.
 */
export function queueBlockers(q: QueueState, counts: QueuePilotCounts, now: Date, jobVo?: string): QueueBlocker[] {
  const out: QueueBlocker[] = [];
  if (q.siteBanned) out.push({ kind: 'site-banned', reason: banReason('site', q.site, q.siteBanReason) });
  if (q.ceBanned) out.push({ kind: 'ce-banned', reason: banReason('CE', q.ce, q.ceBanReason) });
  if (q.pausedUntil && q.pausedUntil > now) {
    const why = q.pauseReason ? `: ${q.pauseReason}` : '';
    out.push({ kind: 'queue-paused', reason: `queue paused until ${isoUtcSeconds(q.pausedUntil)}${why}` });
  }
  if (jobVo !== undefined && q.allowedVos.length > 0 && !q.allowedVos.includes(jobVo)) {
    out.push({ kind: 'vo-not-served', reason: `queue serves VOs {${q.allowedVos.join(',')}}, job is of VO ${jobVo}` });
  }
  if (counts.waiting >= q.maxWaitingPilots) {
    out.push({
      kind: 'waiting-pilots-full',
      reason: `queue has ${counts.waiting} of ${q.maxWaitingPilots} waiting pilots (maxWaitingPilots)`,
    });
  }
  if (counts.total >= q.maxTotalPilots) {
    out.push({ kind: 'total-pilots-full', reason: `queue has ${counts.total} of ${q.maxTotalPilots} live pilots (maxTotalPilots)` });
  }
  for (const problem of ceSettingsProblems(q.ceType, q.ceSettings, q.settings)) {
    out.push({ kind: 'ce-settings-invalid', reason: `CE settings invalid: ${problem}` });
  }
  return out;
}
