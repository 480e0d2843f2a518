/**
 * What an agent is: a name, a node-cron schedule and a tick. The runner (agents/runner.ts) runs
 * each tick under the agent's database lease, never two at once, and records its outcome.
 */
import type { Logger } from 'pino';
import { DEFAULT_SERVICE_CONFIG, type ServiceConfig } from '../core/config.js';
import type { DbHandle } from '../db/index.js';

export interface AgentContext {
  db: DbHandle;
  config: Readonly<ServiceConfig>;
  /** The clock for thresholds (injected: tests move it). */
  now: () => Date;
  /** The agent's pino logger: the runner's root logger's `child({ agent: name })`. */
  log: Logger;
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

type AgentSettings = ServiceConfig['agentSettings'];
/** The areas of `config.agentSettings` that belong to one agent (they carry its schedule). */
export type AgentSettingsKey = {
  [K in keyof AgentSettings]: AgentSettings[K] extends { schedule: string } ? K : never;
}[keyof AgentSettings];

/**
 * An agent configured by `config.agentSettings[key]`: its schedule is `schedule` when given,
 * else the default config's; each tick gets the settings of the config it runs with.
 */
export function configuredAgent<K extends AgentSettingsKey>(
  name: string,
  key: K,
  schedule: string | undefined,
  tick: (ctx: AgentContext, settings: AgentSettings[K]) => Promise<string>,
): Agent {
  return {
    name,
    schedule: schedule ?? DEFAULT_SERVICE_CONFIG.agentSettings[key].schedule,
    tick: (ctx) => tick(ctx, ctx.config.agentSettings[key]),
  };
}
