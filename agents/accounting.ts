/**
 * The accounting agent: each tick records every finished job (Done, Failed, Killed) that has no
 * accounting record yet (db/ops/accounting.ts `recordFinishedJobs`, one statement per batch of
 * `config.agentSettings.accounting.batchSize`). It hooks none of the paths that end a job, so
 * the wrapper's report, a kill, the stalled-jobs agent and a reschedule past MaxRescheduling are
 * all covered; a record is written once even when two processes tick at the same time.
 * It must run more often than job cleaning removes finished jobs (default: every minute,
 * against 7 days of retention).
 */
import { DEFAULT_SERVICE_CONFIG } from '../core/config.js';
import { recordFinishedJobs } from '../db/index.js';
import type { Agent } from './agent.js';

export interface AccountingAgentOptions {
  /** Default: the default config's `agentSettings.accounting.schedule`. */
  schedule?: string;
  /** Jobs per statement; default `config.agentSettings.accounting.batchSize`. */
  batchSize?: number;
}

export function createAccountingAgent(opts: AccountingAgentOptions = {}): Agent {
  return {
    name: 'accounting',
    schedule: opts.schedule ?? DEFAULT_SERVICE_CONFIG.agentSettings.accounting.schedule,
    async tick(ctx) {
      const ids = await recordFinishedJobs(ctx.db, { batchSize: opts.batchSize ?? ctx.config.agentSettings.accounting.batchSize });
      return ids.length === 0 ? 'nothing to record' : `${ids.length} job${ids.length === 1 ? '' : 's'} recorded`;
    },
  };
}
