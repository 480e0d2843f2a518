/**
 * The stalled-jobs agent (DIRAC's StalledJobAgent): each tick runs
 * the sweep of db/ops/stalled-jobs.ts with `config.agentSettings.stalledJobs` and
 * `config.jobLimits.maxRescheduling`:
 *
 * - Running / Completing with no sign of life for `stalledAfterSeconds` -> Stalled;
 * - Stalled whose pilot is gone -> rescheduled at once (or Failed past MaxRescheduling);
 * - Stalled for `failedAfterSeconds` with a live pilot -> Failed "Stalling for more than N sec"
 *   and a Kill command;
 * - Matched for `matchedTimeoutSeconds` without starting -> rescheduled.
 *
 * A heartbeat reviving a Stalled job is the services' part, not this agent's.
 */
import { STALLED_JOBS_SOURCE, sweepStalledJobs, type RescheduleOutcome } from '../db/index.js';
import { configuredAgent, type Agent } from './agent.js';

export interface StalledJobsAgentOptions {
  /** Default: the default config's `agentSettings.stalledJobs.schedule`. */
  schedule?: string;
  /** Jobs per transaction (default 1000); a tick handles every eligible job. */
  batchSize?: number;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function describeReschedules(outcomes: readonly RescheduleOutcome[], why: string): string | null {
  if (outcomes.length === 0) return null;
  const failed = outcomes.filter((o) => o.status === 'Failed').length;
  const back = outcomes.length - failed;
  const parts = [back > 0 ? `${back} rescheduled` : null, failed > 0 ? `${failed} failed at max reschedulings` : null];
  return `${why}: ${parts.filter(Boolean).join(', ')}`;
}

export function createStalledJobsAgent(opts: StalledJobsAgentOptions = {}): Agent {
  return configuredAgent('stalled-jobs', 'stalledJobs', opts.schedule, async (ctx, s) => {
    const r = await sweepStalledJobs(ctx.db, {
      now: ctx.now(),
      stalledAfterSeconds: s.stalledAfterSeconds,
      failedAfterSeconds: s.failedAfterSeconds,
      matchedTimeoutSeconds: s.matchedTimeoutSeconds,
      maxRescheduling: ctx.config.jobLimits.maxRescheduling,
      source: STALLED_JOBS_SOURCE,
      ...(opts.batchSize ? { batchSize: opts.batchSize } : {}),
    });
    const parts = [
      r.stalled.length > 0 ? `${plural(r.stalled.length, 'job')} stalled` : null,
      describeReschedules(r.pilotGone, 'pilot gone'),
      r.failed.length > 0 ? `${plural(r.failed.length, 'job')} failed after stalling ${s.failedAfterSeconds} s` : null,
      describeReschedules(r.matchedTimeout, `matched > ${s.matchedTimeoutSeconds} s`),
    ].filter((p): p is string => p !== null);
    return parts.length === 0 ? 'nothing stalled' : parts.join('; ');
  });
}
