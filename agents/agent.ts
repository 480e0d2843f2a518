/**
 * What an agent is: a name, a node-cron schedule and a tick. The runner (agents/runner.ts) runs
 * each tick under the agent's database lease, never two at once, and records its outcome.
 */
import type { ServiceConfig } from '../core/config.js';
import type { DbHandle } from '../db/index.js';

export interface AgentContext {
  db: DbHandle;
  config: Readonly<ServiceConfig>;
  /** The clock for thresholds (injected: tests move it). */
  now: () => Date;
  /** One line per call, already prefixed with the agent's name by the runner. */
  log: (msg: string) => void;
  /**
   * When the previous tick of this agent started, on the database's clock, whichever process
   * ran it; null before the first. Agents that work incrementally (the pilot-status agent's
   * cleanup of finished pilots) read what changed since then.
   */
  previousTickAt: Date | null;
}

export interface Agent {
  /** Unique among the runner's agents; the lease's key. */
  name: string;
  /** node-cron expression with a seconds field first, e.g. every 30 s: "*\/30 * * * * *". */
  schedule: string;
  /** One tick; answers a one-line outcome ("3 jobs stalled, 1 rescheduled"). May throw. */
  tick(ctx: AgentContext): Promise<string>;
}
