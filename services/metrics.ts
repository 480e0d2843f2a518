/**
 * Prometheus metrics of one service process, written in the text exposition format 0.0.4 by
 * hand (no client library: five gauges, three counters and one histogram do not need one).
 *
 * Two kinds of figures:
 * - gauges read from the database at scrape time (`readMetricsGauges`): the same figures from
 *   every replica, so dashboards take `max` over instances, never `sum`;
 * - counters, the match-latency histogram and agent ticks kept in this process since it
 *   started: per instance, so dashboards `sum` their rates over instances.
 *
 * Agent ticks arrive through the runner's `onTick` hook; the composition root
 * (cli/server-system.ts) forwards them as `AGENT_TICK_EVENT` on the app's in-process events.
 */
import type { MetricsGauges } from '../db/index.js';

/** The in-process event that carries one agent tick: `(agent: string, tick: AgentTick)`. */
export const AGENT_TICK_EVENT = 'agent-tick';

/** Match latency buckets (seconds): a claim takes ~1 ms on an idle PostgreSQL, seconds only when something is wrong. */
export const MATCH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] as const;

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;

/** What a tick reports (agents/runner.ts TickResult; services may not import agents/). */
export interface AgentTick {
  durationMs: number;
  ok: boolean;
}

/** A label value in the exposition format: backslash, double quote and line feed escaped. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text: backslash and line feed escaped. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** Builds one exposition: each family once, HELP and TYPE before its samples. */
class Exposition {
  readonly #lines: string[] = [];

  family(name: string, type: 'gauge' | 'counter' | 'histogram', help: string, samples: [Labels, number][] = [], suffix = ''): this {
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) this.sample(`${name}${suffix}`, labels, v);
    return this;
  }

  sample(name: string, labels: Labels, v: number): this {
    this.#lines.push(`${name}${labelText(labels)} ${formatValue(v)}`);
    return this;
  }

  toString(): string {
    return `${this.#lines.join('\n')}\n`;
  }
}

/** The in-process metrics of one service process (counters, histogram, agent ticks). */
export class Metrics {
  #submitted = 0;
  readonly #matches = { matched: 0, none: 0 };
  readonly #bucketCounts = MATCH_BUCKETS.map(() => 0);
  #matchCount = 0;
  #matchSum = 0;
  readonly #ticks = new Map<string, { lastSeconds: number; ok: number; error: number }>();

  /** Jobs stored by a submission (a parametric JDL counts each job). */
  jobsSubmitted(n: number): void {
    this.#submitted += n;
  }

  /** One answer of the matcher and how long it took (seconds). */
  observeMatch(matched: boolean, seconds: number): void {
    this.#matches[matched ? 'matched' : 'none'] += 1;
    this.#matchCount += 1;
    this.#matchSum += seconds;
    const i = MATCH_BUCKETS.findIndex((b) => seconds <= b);
    if (i >= 0) this.#bucketCounts[i]! += 1; // above the last bucket: only +Inf (the count)
  }

  /** One agent tick (the runner's `onTick`). */
  agentTick(agent: string, tick: AgentTick): void {
    const t = this.#ticks.get(agent) ?? { lastSeconds: 0, ok: 0, error: 0 };
    t.lastSeconds = tick.durationMs / 1000;
    t[tick.ok ? 'ok' : 'error'] += 1;
    this.#ticks.set(agent, t);
  }

  /**
   * The whole exposition: the database gauges given, then this process's figures. `null`: the
   * database could not be read (an outage): its gauge families are declared without samples
   * (a missing series, not a stale or zero one) and `wms_database_up` is 0; this process's
   * counters are still exposed.
   */
  render(given: MetricsGauges | null): string {
    const e = new Exposition();
    e.family('wms_database_up', 'gauge', 'Whether the database answered this scrape (1) or not (0: its gauges are absent).', [
      [{}, given === null ? 0 : 1],
    ]);
    const g: MetricsGauges = given ?? { waitingJobs: [], runningJobs: [], pilots: [], failedJobs: [], jobs: {} as MetricsGauges['jobs'] };
    e.family(
      'wms_waiting_jobs',
      'gauge',
      'Jobs in status Waiting, per task queue (id) with its VO and owner group.',
      g.waitingJobs.map((w) => [{ task_queue: String(w.taskQueue), vo: w.vo, owner_group: w.ownerGroup }, w.count]),
    );
    e.family('wms_running_jobs', 'gauge', 'Jobs in status Running, per site.', g.runningJobs.map((r) => [{ site: r.site }, r.count]));
    e.family(
      'wms_pilots',
      'gauge',
      'Pilots per site, computing element, CE type and state.',
      g.pilots.map((p) => [{ site: p.site, ce: p.ce, ce_type: p.ceType, state: p.state }, p.count]),
    );
    e.family(
      'wms_failed_jobs',
      'gauge',
      'Jobs in status Failed, per minor status (the failure reason).',
      g.failedJobs.map((f) => [{ minor_status: f.minorStatus }, f.count]),
    );
    e.family('wms_jobs', 'gauge', 'Jobs per status.', Object.entries(g.jobs).map(([status, n]) => [{ status }, n]));
    e.family('wms_jobs_submitted_total', 'counter', 'Jobs stored by submissions to this process.', [[{}, this.#submitted]]);
    e.family('wms_matches_total', 'counter', 'Match requests answered by this process, by result.', [
      [{ result: 'matched' }, this.#matches.matched],
      [{ result: 'none' }, this.#matches.none],
    ]);
    e.family('wms_match_duration_seconds', 'histogram', 'Time to answer a match request (claim and job token).');
    let cumulative = 0;
    MATCH_BUCKETS.forEach((b, i) => {
      cumulative += this.#bucketCounts[i]!;
      e.sample('wms_match_duration_seconds_bucket', { le: String(b) }, cumulative);
    });
    e.sample('wms_match_duration_seconds_bucket', { le: '+Inf' }, this.#matchCount);
    e.sample('wms_match_duration_seconds_sum', {}, this.#matchSum);
    e.sample('wms_match_duration_seconds_count', {}, this.#matchCount);
    const ticks = [...this.#ticks.entries()].sort(([a], [b]) => a.localeCompare(b));
    e.family(
      'wms_agent_tick_duration_seconds',
      'gauge',
      'Duration of the last tick of each agent run by this process (lease included).',
      ticks.map(([agent, t]) => [{ agent }, t.lastSeconds]),
    );
    e.family(
      'wms_agent_ticks_total',
      'counter',
      'Agent ticks run by this process, by outcome.',
      ticks.flatMap(([agent, t]) => [
        [{ agent, outcome: 'ok' }, t.ok],
        [{ agent, outcome: 'error' }, t.error],
      ]),
    );
    return e.toString();
  }
}
