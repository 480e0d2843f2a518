/**
 * Prometheus metrics of one service process, with prom-client: one Registry per app (tests
 * build many apps in one process; the global registry would mix them), written in the text
 * exposition format 0.0.4.
 *
 * Three kinds of figures:
 * - gauges read from the database at scrape time (their `collect()` callbacks share one read
 *   per scrape, `readMetricsGauges`): the same figures from every replica, so dashboards take
 *   `max` over instances, never `sum`;
 * - `wms_pilots_failed_total`: pilots that became Failed or Aborted while this process ran,
 *   read from the database in windows at scrape time (`readPilotsEnded`); every replica counts
 *   the same pilots, so dashboards take `max` of its `increase`;
 * - counters and histograms kept in this process since it started (submissions, matches, HTTP
 *   requests by route, agent ticks): per instance, so dashboards `sum` their rates;
 * - connections held by this process (`wms_pilot_websockets`, `wms_event_subscribers`), counted
 *   at scrape time by whoever holds them (`countConnections`): per instance, `sum` for the total.
 * DATABASE_WIDE_METRICS names the first two kinds; tests/integration/metrics.test.ts holds the
 * Grafana dashboard to them.
 * The process and Node.js runtime series (`process_*`, `nodejs_*`) come from prom-client's
 * default metrics, collected once per process (they describe the process, not an app; one set
 * per app would leave an event-loop monitor and a GC observer behind for each app).
 *
 * Agent ticks arrive through the runner's `onTick` hook; the composition root
 * (cli/server-system.ts) forwards them as `AGENT_TICK_EVENT` on the app's in-process events.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MetricsGauges, PilotsEnded } from '../db/index.js';

/** The in-process event that carries one agent tick: `(agent: string, tick: AgentTick)`. */
export const AGENT_TICK_EVENT = 'agent-tick';

/** Match latency buckets (seconds): a claim takes ~1 ms on an idle PostgreSQL, seconds only when something is wrong. */
export const MATCH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] as const;

/** HTTP request buckets (seconds): most answers take milliseconds; uploads and long polls take seconds. */
export const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** The families every replica reads the same from the database: `max` over instances, never `sum`. */
export const DATABASE_WIDE_METRICS: ReadonlySet<string> = new Set([
  'wms_waiting_jobs',
  'wms_running_jobs',
  'wms_pilots',
  'wms_failed_jobs',
  'wms_jobs',
  'wms_pilots_failed_total',
]);

/** The connections a process holds: pilots' push websockets, event-stream (`/api/events`) subscribers. */
export type ConnectionKind = 'pilot-websockets' | 'event-subscribers';

/** What a tick reports (agents/runner.ts TickResult; services may not import agents/). */
export interface AgentTick {
  durationMs: number;
  ok: boolean;
}

/** What one scrape reads from the database; null: it could not be read (an outage). */
export interface DatabaseReading {
  gauges: MetricsGauges;
  /** Pilots ended since the window `since` the reader was given. */
  pilotsEnded: PilotsEnded;
}

/** Reads the database for one scrape; answers null during an outage (the caller logs it). */
export type DatabaseReader = (pilotsEndedSince: Date) => Promise<DatabaseReading | null>;

/** A label value in the exposition format: backslash, double quote and line feed escaped (as prom-client writes them). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

let processRegistry: Registry | undefined;

const MISNAMED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** The process and runtime series, registered once per process. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
    // Gauges named like counters, which promtool refuses ("non-counter metrics should not have
    // _total suffix"); each is the sum of its by-type family (nodejs_active_handles{type}...).
    for (const name of MISNAMED_DEFAULT_METRICS) processRegistry.removeSingleMetric(name);
  }
  return processRegistry;
}

/** The metrics of one app: its registry, the in-process counters and the scrape-time gauges. */
export class Metrics {
  readonly registry = new Registry();
  readonly #submitted: Counter;
  readonly #matches: Counter<'result'>;
  readonly #matchDuration: Histogram;
  readonly #httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  readonly #tickDuration: Gauge<'agent'>;
  readonly #ticks: Counter<'agent' | 'outcome'>;
  readonly #pilotsFailed: Counter<'site' | 'ce' | 'ce_type' | 'state'>;
  /** Who counts each kind of connection (the plugin holding them); none yet: 0. */
  readonly #connections = new Map<ConnectionKind, () => number>();
  /** The reading of the scrape in progress, shared by the database gauges' `collect()`. */
  #reading: Promise<DatabaseReading | null> = Promise.resolve(null);
  /** Scrapes run one after the other: the gauges of two scrapes never mix. */
  #scrapes: Promise<unknown> = Promise.resolve();
  /** Where the next window of ended pilots starts (this process's start, then each window's end). */
  #pilotsEndedSince: Date;

  constructor(startedAt: Date = new Date()) {
    this.#pilotsEndedSince = startedAt;
    const registers = [this.registry];
    const reading = () => this.#reading;
    const fromDb = <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[],
      fill: (g: Gauge<L>, r: MetricsGauges) => void,
    ): Gauge<L> =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers,
        // A missing series during an outage, not a stale or zero one.
        async collect() {
          this.reset();
          const r = await reading();
          if (r) fill(this, r.gauges);
        },
      });
    new Gauge({
      name: 'wms_database_up',
      help: 'Whether the database answered this scrape (1) or not (0: its gauges are absent).',
      registers,
      collect: async function (this: Gauge) {
        this.set((await reading()) === null ? 0 : 1);
      },
    });
    fromDb(
      'wms_waiting_jobs',
      'Jobs in status Waiting, per task queue (id) with its VO and owner group.',
      ['task_queue', 'vo', 'owner_group'],
      (g, r) => {
        for (const w of r.waitingJobs) g.set({ task_queue: String(w.taskQueue), vo: w.vo, owner_group: w.ownerGroup }, w.count);
      },
    );
    fromDb('wms_running_jobs', 'Jobs in status Running, per site.', ['site'], (g, r) => {
      for (const x of r.runningJobs) g.set({ site: x.site }, x.count);
    });
    fromDb('wms_pilots', 'Pilots per site, computing element, CE type and state.', ['site', 'ce', 'ce_type', 'state'], (g, r) => {
      for (const p of r.pilots) g.set({ site: p.site, ce: p.ce, ce_type: p.ceType, state: p.state }, p.count);
    });
    fromDb('wms_failed_jobs', 'Jobs in status Failed, per minor status (the failure reason).', ['minor_status'], (g, r) => {
      for (const f of r.failedJobs) g.set({ minor_status: f.minorStatus }, f.count);
    });
    fromDb('wms_jobs', 'Jobs per status.', ['status'], (g, r) => {
      for (const [status, n] of Object.entries(r.jobs)) g.set({ status }, n);
    });
    this.#pilotsFailed = new Counter({
      name: 'wms_pilots_failed_total',
      help: 'Pilots that became Failed or Aborted while this process ran (read from the database: every replica counts the same pilots).',
      labelNames: ['site', 'ce', 'ce_type', 'state'],
      registers,
    });
    this.#submitted = new Counter({ name: 'wms_jobs_submitted_total', help: 'Jobs stored by submissions to this process.', registers });
    this.#matches = new Counter({
      name: 'wms_matches_total',
      help: 'Match requests answered by this process, by result.',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['matched', 'none']) this.#matches.inc({ result }, 0);
    this.#matchDuration = new Histogram({
      name: 'wms_match_duration_seconds',
      help: 'Time to answer a match request (claim and job token).',
      buckets: [...MATCH_BUCKETS],
      registers,
    });
    this.#httpDuration = new Histogram({
      name: 'wms_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [...HTTP_BUCKETS],
      registers,
    });
    this.#tickDuration = new Gauge({
      name: 'wms_agent_tick_duration_seconds',
      help: 'Duration of the last tick of each agent run by this process (lease included).',
      labelNames: ['agent'],
      registers,
    });
    this.#connectionGauge('wms_pilot_websockets', 'pilot-websockets', 'Pilot push websockets held open by this process.');
    this.#connectionGauge(
      'wms_event_subscribers',
      'event-subscribers',
      'Event-stream websockets (/api/events: dashboards, --wait clients) held open by this process.',
    );
    this.#ticks = new Counter({
      name: 'wms_agent_ticks_total',
      help: 'Agent ticks run by this process, by outcome.',
      labelNames: ['agent', 'outcome'],
      registers,
    });
  }

  /** Who counts the connections of `kind` held by this process, read at each scrape. */
  countConnections(kind: ConnectionKind, count: () => number): void {
    this.#connections.set(kind, count);
  }

  #connectionGauge(name: string, kind: ConnectionKind, help: string): void {
    const connections = this.#connections;
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect(this: Gauge) {
        this.set(connections.get(kind)?.() ?? 0);
      },
    });
  }

  /** Jobs stored by a submission (a parametric JDL counts each job). */
  jobsSubmitted(n: number): void {
    this.#submitted.inc(n);
  }

  /** One answer of the matcher and how long it took (seconds). */
  observeMatch(matched: boolean, seconds: number): void {
    this.#matches.inc({ result: matched ? 'matched' : 'none' });
    this.#matchDuration.observe(seconds);
  }

  /** One HTTP answer: `route` is the route's pattern (`/api/jobs/:id`), never the raw URL. */
  observeRequest(method: string, route: string, statusCode: number, seconds: number): void {
    this.#httpDuration.observe({ method, route, status_code: String(statusCode) }, seconds);
  }

  /** One agent tick (the runner's `onTick`). */
  agentTick(agent: string, tick: AgentTick): void {
    this.#tickDuration.set({ agent }, tick.durationMs / 1000);
    this.#ticks.inc({ agent, outcome: 'ok' }, tick.ok ? 1 : 0);
    this.#ticks.inc({ agent, outcome: 'error' }, tick.ok ? 0 : 1);
  }

  /**
   * One scrape: the database read once through `read` (null during an outage: the database
   * gauge families are declared without samples and `wms_database_up` is 0; this process's
   * counters still go out), then the app's registry and the process's series.
   */
  render(read: DatabaseReader): Promise<string> {
    const scrape = this.#scrapes.then(async () => {
      this.#reading = read(this.#pilotsEndedSince);
      const r = await this.#reading;
      if (r) this.#countEnded(r.pilotsEnded);
      const [own, proc] = await Promise.all([this.registry.metrics(), processMetrics().metrics()]);
      return `${own}\n${proc}`;
    });
    this.#scrapes = scrape.catch(() => undefined);
    return scrape;
  }

  #countEnded(ended: PilotsEnded): void {
    for (const p of ended.counts) this.#pilotsFailed.inc({ site: p.site, ce: p.ce, ce_type: p.ceType, state: p.state }, p.count);
    this.#pilotsEndedSince = ended.until;
  }
}
