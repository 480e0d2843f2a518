/**
 * The agent runner: node-cron schedules each agent; every tick runs under the agent's database
 * lease (db/queries/agent-leases.ts), so several agent processes never act at the same time, and
 * a tick never overlaps itself in this process either (a schedule firing while the previous tick
 * runs is skipped). Errors are caught, logged as one line and recorded as the tick's outcome: no
 * tick ever crashes the process. `runOnce(name)` runs one tick now (the `--once` mode).
 *
 * Each scheduled period runs once across all processes: a firing takes the lease for its period
 * (node-cron's slot: the schedule's firing time in whole seconds, the same in every process whose
 * clock is right to within a second), and the lease statement refuses a period already taken or
 * older than the last one taken. The processes' clocks are assumed to agree (NTP) to well within
 * the shortest schedule interval; `start()` compares this process's clock with the database's
 * once and warns when they differ by more than a second. `runOnce` is not a period: it takes the
 * lease for "now" (never refused for a period, it records the database's now()), so a scheduled
 * firing for an earlier period that comes late does not run that period again. Every tick that
 * runs is logged at debug level with its period (`{ period }`, "tick for period ...").
 *
 * Logging: the runner's own lines through `logger.child({ component: 'agent-runner' })`, each
 * agent's (its tick outcomes and what it logs) through `logger.child({ agent: name })`.
 *
 * States (one log line on each change):
 *
 * ```
 *  idle --start()--> running --stop()--> stopping --(ticks in flight done)--> stopped
 *    '-------------------------stop()------------------------------------------^
 * ```
 *
 * - idle: constructed; `runOnce` works, nothing is scheduled.
 * - running: the schedules fire.
 * - stopping: schedules stopped; waiting for the ticks in flight; `runOnce` refuses.
 * - stopped: final.
 *
 * While a tick runs, its lease is renewed every third of `leaseSeconds`, so a long tick keeps
 * it; a tick that outlives its lease anyway (its process was frozen) is logged.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { performance } from 'node:perf_hooks';
import { createTask, validate, type ScheduledTask, type TaskContext } from 'node-cron';
import type { ServiceConfig } from '../core/config.js';
import type { ComputingElement } from './computing-elements/types.js';
import { WmsError } from '../core/errors.js';
import { DbOutageLog, isDbUnavailableError, MAX_PERIOD_AHEAD_SECONDS, releaseLease, takeLease, type DbHandle } from '../db/index.js';
import type { Agent, AgentContext } from './agent.js';
import { createAccountingAgent } from './accounting.js';
import { createJobCleaningAgent } from './job-cleaning.js';
import { createPilotStatusAgent } from './pilot-status.js';
import { createStalledJobsAgent } from './stalled-jobs.js';

export type RunnerState = 'idle' | 'running' | 'stopping' | 'stopped';

/** The last tick of an agent in this process. */
export interface TickResult {
  /** When it started. */
  at: Date;
  durationMs: number;
  outcome: string;
  /** False when the tick threw (the outcome then starts with "error: "). */
  ok: boolean;
}

export interface AgentRunnerOptions {
  db: DbHandle;
  config: Readonly<ServiceConfig>;
  agents: readonly Agent[];
  /** Who holds the leases; default `<hostname>:<pid>`. */
  holder?: string;
  /** The process's root pino logger (the runner and each agent log through children of it). */
  logger: Logger;
  /** The clock handed to ticks (default: the system clock). */
  now?: () => Date;
  /** Called after every tick that ran (metrics: duration per agent, failures). */
  onTick?: (agent: string, tick: TickResult) => void;
}

/**
 * One line from anything thrown: the code of a WmsError first. drizzle wraps a database error
 * in "Failed query: <the whole SQL> params: ..."; the line then carries the database's own
 * message and the query's first line only.
 */
function describeError(e: unknown): string {
  const code = typeof (e as { code?: unknown })?.code === 'string' ? `${(e as { code: string }).code} ` : '';
  let message = e instanceof Error ? e.message : String(e);
  const cause = e instanceof Error ? e.cause : undefined;
  if (message.startsWith('Failed query:') && cause instanceof Error) {
    const firstLine = message.slice('Failed query:'.length).trim().split('\n')[0]!.trim();
    message = `${cause.message} (in: ${firstLine.length > 80 ? `${firstLine.slice(0, 77)}...` : firstLine})`;
  }
  return `${code}${message}`.replace(/\s*\n\s*/g, ' | ');
}

/** How far this process's clock may be from the database's before `start()` warns (ms). */
const CLOCK_SKEW_WARN_MS = 1000;

/** The period of a scheduled firing: node-cron's slot, floored to the whole second. */
export function periodOf(slot: Date): Date {
  return new Date(Math.floor(slot.getTime() / 1000) * 1000);
}

export class AgentRunner {
  readonly holder: string;
  #state: RunnerState = 'idle';
  readonly #db: DbHandle;
  readonly #config: Readonly<ServiceConfig>;
  readonly #agents = new Map<string, Agent>();
  readonly #logger: Logger;
  /** The runner's own lines. */
  readonly #log: Logger;
  readonly #now: () => Date;
  readonly #onTick: ((agent: string, tick: TickResult) => void) | undefined;
  readonly #tasks: ScheduledTask[] = [];
  readonly #scheduled: string[] = [];
  readonly #inFlight = new Map<string, Promise<{ ran: boolean; outcome: string }>>();
  readonly #last = new Map<string, TickResult>();
  /**
   * The database away: said once for the whole runner when the first lease cannot be taken,
   * once when a lease is taken again; the ticks meanwhile are skipped quietly (each agent's
   * schedule is the retry, so an outage costs one failed connect per tick, no spinning).
   */
  readonly #outage: DbOutageLog;

  constructor(opts: AgentRunnerOptions) {
    this.#db = opts.db;
    this.#config = opts.config;
    this.#logger = opts.logger;
    this.#log = opts.logger.child({ component: 'agent-runner' });
    this.#now = opts.now ?? (() => new Date());
    this.#onTick = opts.onTick;
    this.holder = opts.holder ?? `${hostname()}:${process.pid}`;
    this.#outage = new DbOutageLog('agents', { warn: (m) => this.#log.warn(m), info: (m) => this.#log.info(m) });
    for (const a of opts.agents) {
      if (this.#agents.has(a.name)) throw new WmsError('WMS_CONFIG', `two agents are named "${a.name}"`);
      if (!validate(a.schedule)) {
        throw new WmsError(
          'WMS_CONFIG',
          `agent ${a.name}: "${a.schedule}" is not a node-cron expression (seconds first: "*/30 * * * * *")`,
        );
      }
      this.#agents.set(a.name, a);
    }
  }

  get state(): RunnerState {
    return this.#state;
  }

  /** The agents `start()` scheduled (none before it). */
  get scheduledNames(): string[] {
    return [...this.#scheduled];
  }

  /** The agents' names, in the order given. */
  get agentNames(): string[] {
    return [...this.#agents.keys()];
  }

  #setState(to: RunnerState, why: string): void {
    this.#log.info(`agent runner ${this.#state} -> ${to}: ${why}`);
    this.#state = to;
  }

  /** Schedules every agent, or only the ones named. Only from idle (logged and ignored otherwise). */
  start(only?: readonly string[]): void {
    if (this.#state !== 'idle') {
      this.#log.warn(`agent runner: start() ignored in state ${this.#state}`);
      return;
    }
    const logger = {
      info: () => {},
      debug: () => {},
      warn: (m: string) => this.#log.warn(`node-cron: ${m}`),
      error: (m: string | Error) => this.#log.error(`node-cron: ${describeError(m)}`),
    };
    for (const agent of this.#agents.values()) {
      if (only && !only.includes(agent.name)) continue;
      const task = createTask(
        agent.schedule,
        async (context: TaskContext) => {
          // Skipped, not queued, when the previous tick still runs.
          if (this.#inFlight.has(agent.name) || this.#state !== 'running') return;
          await this.#run(agent, periodOf(context.date));
        },
        { name: `agent:${agent.name}`, logger },
      );
      void task.start();
      this.#tasks.push(task);
      this.#scheduled.push(agent.name);
    }
    const names = this.agentNames.filter((n) => !only || only.includes(n));
    this.#setState('running', `${names.length} agent(s) scheduled as ${this.holder}: ${names.join(', ')}`);
    void this.#checkClock();
  }

  /**
   * Warns once when this process's clock and the database's differ by more than a second: the
   * periods of the schedules are named by this clock (module comment). Errors are ignored (the
   * ticks report an outage themselves).
   */
  async #checkClock(): Promise<void> {
    try {
      const before = Date.now();
      const [row] = await this.#db.query<{ now: Date }>('select now() as now');
      const after = Date.now();
      if (!row) return;
      const skewMs = row.now.getTime() - (before + after) / 2;
      if (Math.abs(skewMs) > CLOCK_SKEW_WARN_MS + (after - before) / 2) {
        const refused =
          -skewMs > MAX_PERIOD_AHEAD_SECONDS * 1000 ? ' (more than the lease accepts: every scheduled tick here is refused)' : '';
        this.#log.warn(
          `this process's clock is ${Math.abs(skewMs / 1000).toFixed(1)} s ${skewMs > 0 ? 'behind' : 'ahead of'} the database's${refused}: ` +
            'scheduled periods are named by it, so agent processes on clocks that disagree may skip periods; synchronise the clocks (NTP)',
        );
      }
    } catch {
      // The database is away: the first tick says so.
    }
  }

  /**
   * One tick of `name` now, under its lease. `ran` is false when the tick did not run: the
   * lease is held elsewhere, a tick of this agent is already running here, the lease could not
   * be taken (database down) or the runner is stopping. Never throws for a tick's failure; throws
   * WMS_CONFIG for an unknown agent name.
   *
   * Not a scheduled period: it is never refused because a period already ran (only while another
   * process holds the lease), and it takes the lease for "now" (the database's now() becomes the
   * last period), so a schedule firing late, in another process, for a period before it does not
   * run that period too.
   */
  runOnce(name: string): Promise<{ ran: boolean; outcome: string }> {
    const agent = this.#agents.get(name);
    if (!agent) {
      return Promise.reject(new WmsError('WMS_CONFIG', `no agent named "${name}" (known: ${this.agentNames.join(', ') || 'none'})`));
    }
    return this.#run(agent, 'now');
  }

  /** A tick of `agent` for `period` unless stopping or one already runs here (see runOnce). */
  #run(agent: Agent, period: Date | 'now'): Promise<{ ran: boolean; outcome: string }> {
    const name = agent.name;
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      return Promise.resolve({ ran: false, outcome: `runner is ${this.#state}` });
    }
    if (this.#inFlight.has(name)) return Promise.resolve({ ran: false, outcome: 'a tick of this agent is already running here' });
    const p = this.#tick(agent, period).finally(() => this.#inFlight.delete(name));
    this.#inFlight.set(name, p);
    return p;
  }

  async #tick(agent: Agent, period: Date | 'now'): Promise<{ ran: boolean; outcome: string }> {
    const log = this.#logger.child({ agent: agent.name });
    const leaseSeconds = this.#config.agentSettings.leaseSeconds;
    const t0 = performance.now();
    let lease;
    try {
      lease = await takeLease(this.#db, agent.name, this.holder, leaseSeconds, { period });
    } catch (e) {
      const outcome = `lease not taken: ${describeError(e)}`;
      if (!this.#outage.failed(e)) log.warn(outcome);
      return { ran: false, outcome };
    }
    this.#outage.ok();
    if (!lease) {
      return {
        ran: false,
        outcome: period === 'now' ? 'lease held by another process' : 'lease held by another process, or this period already ran',
      };
    }
    log.debug({ period: lease.period?.toISOString() ?? null, holder: this.holder }, `tick for period ${lease.period?.toISOString()}`);

    const renew = setInterval(
      () => {
        takeLease(this.#db, agent.name, this.holder, leaseSeconds).then(
          (l) => {
            if (!l) log.warn('lease lost while the tick runs (it outlived its lease and another process took it)');
          },
          (e: unknown) => {
            if (!this.#outage.failed(e)) log.warn(`lease renewal failed: ${describeError(e)}`);
          },
        );
      },
      Math.max(100, (leaseSeconds * 1000) / 3),
    );
    renew.unref();

    const ctx: AgentContext = { db: this.#db, config: this.#config, now: this.#now, log, previousTickAt: lease.previousTickAt };
    let outcome: string;
    let ok = true;
    try {
      outcome = (await agent.tick(ctx)).replace(/\s*\n\s*/g, ' | ');
    } catch (e) {
      ok = false;
      outcome = isDbUnavailableError(e) ? `error: database unavailable (${describeError(e)})` : `error: ${describeError(e)}`;
    } finally {
      clearInterval(renew);
    }
    const durationMs = performance.now() - t0;
    const result: TickResult = { at: lease.takenAt, durationMs, outcome, ok };
    // A steady state is said once: a tick is logged when it fails or its outcome changes.
    if (!ok || this.#last.get(agent.name)?.outcome !== outcome) {
      log[ok ? 'info' : 'error']({ durationMs: Math.round(durationMs) }, `${outcome} (${Math.round(durationMs)} ms)`);
    }
    this.#last.set(agent.name, result);
    try {
      await releaseLease(this.#db, agent.name, this.holder, { durationMs, outcome, startedAt: lease.takenAt });
    } catch (e) {
      if (!this.#outage.failed(e)) log.warn(`lease not released (it expires in ${leaseSeconds} s): ${describeError(e)}`);
    }
    try {
      this.#onTick?.(agent.name, result);
    } catch (e) {
      log.error(`onTick hook failed: ${describeError(e)}`);
    }
    return { ran: true, outcome };
  }

  /** The last tick of each agent that ran in this process: name -> { at, durationMs, outcome, ok }. */
  lastTicks(): Map<string, TickResult> {
    return new Map(this.#last);
  }

  /** Stops the schedules and waits for the ticks in flight. Idempotent. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') {
      await Promise.allSettled([...this.#inFlight.values()]);
      return;
    }
    this.#setState('stopping', `${this.#inFlight.size} tick(s) in flight`);
    await Promise.allSettled(
      this.#tasks.splice(0).map(async (t) => {
        await t.stop();
        await t.destroy();
      }),
    );
    await Promise.allSettled([...this.#inFlight.values()]);
    this.#setState('stopped', 'schedules stopped, no tick in flight');
  }
}

/** What the standard agents need from the process that runs them. */
export interface StandardAgentDeps {
  /** The CE driver of a pilot's CE (type, name), or null when this process has none. */
  drivers: (ceType: string, ceName: string) => ComputingElement | null;
  /** Deletes sandbox files whose database rows the cleaning agent removed (on PostgreSQL nothing: the chunks cascade). */
  removeSandboxFiles?: (sha256s: string[]) => Promise<void>;
}

/**
 * The pilot-status, stalled-jobs, job-cleaning and accounting agents with the schedules of
 * `config.agentSettings` (the site director is added by its caller).
 */
export function standardAgents(config: Readonly<ServiceConfig>, deps: StandardAgentDeps): Agent[] {
  const s = config.agentSettings;
  return [
    createPilotStatusAgent({ drivers: deps.drivers, schedule: s.pilotStatus.schedule }),
    createStalledJobsAgent({ schedule: s.stalledJobs.schedule }),
    createJobCleaningAgent({
      schedule: s.jobCleaning.schedule,
      ...(deps.removeSandboxFiles ? { removeSandboxFiles: deps.removeSandboxFiles } : {}),
    }),
    createAccountingAgent({ schedule: s.accounting.schedule, batchSize: s.accounting.batchSize }),
  ];
}
