/**
 * `/metrics` through `app.inject()` on PGlite and PostgreSQL: jobs submitted through the API,
 * some matched, some failed and some running through the db functions, pilots in several
 * states; the scraped gauges equal what SQL counts in the database, the counters and the match
 * histogram equal what this app did. Format: HELP and TYPE before the samples of each family,
 * escaped label values, cumulative histogram buckets. The optional metrics token. The
 * connection gauges count the pilot and event-stream websockets this process holds. The Grafana
 * dashboard only queries metrics that `/metrics` exposes, takes `max` (never `sum`) of the
 * database gauges every replica reports alike, sums the per-process counters, and shows
 * websockets, requests, memory and CPU per replica.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_STATES } from '../../core/job-states.js';
import { createPilots, reportJobStatus, updatePilots, type DbHandle } from '../../db/index.js';
import { buildApp } from '../../services/app.js';
import { AGENT_TICK_EVENT, DATABASE_WIDE_METRICS, escapeLabelValue, MATCH_BUCKETS } from '../../services/metrics.js';
import { createTestApp, jdl, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';
import { EventClient } from '../helpers/events.js';
import { pilotAt } from '../helpers/pilots.js';

/** One sample: its name, labels (unescaped) and value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Scrape {
  text: string;
  families: Map<string, { type: string; help: string }>;
  samples: Sample[];
}

function unescape(v: string): string {
  return v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/** Parses the text format strictly enough to catch what Prometheus would refuse. */
function parseExposition(text: string): Scrape {
  const families = new Map<string, { type: string; help: string }>();
  const samples: Sample[] = [];
  let help: { name: string; text: string } | null = null;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m: RegExpMatchArray | null;
    if ((m = line.match(/^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/))) {
      help = { name: m[1]!, text: m[2]! };
    } else if ((m = line.match(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/))) {
      if (families.has(m[1]!)) throw new Error(`family ${m[1]} declared twice`);
      if (!help || help.name !== m[1]) throw new Error(`TYPE ${m[1]} without its HELP line just before`);
      families.set(m[1]!, { type: m[2]!, help: help.text });
    } else if ((m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/))) {
      const labels: Record<string, string> = {};
      const body = m[2] ?? '';
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
      let consumed = 0;
      for (const l of body.matchAll(re)) {
        labels[l[1]!] = unescape(l[2]!);
        consumed += l[0].length;
      }
      if (consumed !== body.length) throw new Error(`bad labels in: ${line}`);
      const v = m[3] === '+Inf' ? Infinity : Number(m[3]);
      // Prometheus reads NaN in any case (prom-client writes "Nan" for a runtime gauge not measured yet).
      if (Number.isNaN(v) && m[3]!.toLowerCase() !== 'nan') throw new Error(`bad value in: ${line}`);
      const name = m[1]!;
      const family = [name, name.replace(/_(bucket|sum|count)$/, '')].find((n) => families.has(n));
      if (!family) throw new Error(`sample ${name} before (or without) its TYPE line`);
      if (family !== name && families.get(family)!.type !== 'histogram')
        throw new Error(`${name}: suffix on a ${families.get(family)!.type}`);
      samples.push({ name, labels, value: v });
    } else {
      throw new Error(`not a line of the text format: ${JSON.stringify(line)}`);
    }
  }
  return { text, families, samples };
}

function values(s: Scrape, name: string, key: (l: Record<string, string>) => string): Map<string, number> {
  return new Map(s.samples.filter((x) => x.name === name).map((x) => [key(x.labels), x.value]));
}

async function sqlMap(db: DbHandle, text: string): Promise<Map<string, number>> {
  const r = await db.query<{ k: string; n: number | string }>(text);
  return new Map(r.map((x) => [String(x.k), Number(x.n)]));
}

const resource = { site: 'LCG.Test.org', ce: 'ce1.test.org', queue: 'long', cpuWork: 5_000_000, processors: 1, ramMb: 4096 };
const ODD_REASON = 'Payload said "no" \\ then\nexited';

describeDb('metrics', (ctx) => {
  let t: TestApp;

  beforeAll(async () => {
    await ctx.truncate();
    t = await createTestApp({ db: ctx.handle });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function scrape(token: string | null = null): Promise<Scrape> {
    const res = await t.call('GET', '/metrics', token);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    return parseExposition(res.body);
  }

  it('an empty system: every family declared, every job state at 0, no match yet', async () => {
    const s = await scrape();
    for (const f of [
      'wms_waiting_jobs',
      'wms_running_jobs',
      'wms_pilots',
      'wms_failed_jobs',
      'wms_jobs',
      'wms_jobs_submitted_total',
      'wms_matches_total',
      'wms_match_duration_seconds',
      'wms_agent_tick_duration_seconds',
      'wms_agent_ticks_total',
    ]) {
      expect(s.families.has(f), f).toBe(true);
    }
    expect(s.families.get('wms_match_duration_seconds')!.type).toBe('histogram');
    expect(s.families.get('wms_matches_total')!.type).toBe('counter');
    const jobs = values(s, 'wms_jobs', (l) => l['status']!);
    expect(jobs.get('Waiting')).toBe(0);
    expect(jobs.get('Done')).toBe(0);
    expect(values(s, 'wms_match_duration_seconds_count', () => '').get('')).toBe(0);
  });

  it('after submissions, matches, failures and pilots the figures equal the database', async () => {
    const alice = await t.user('alice', 'vo1');
    const bob = await t.user('bob', 'vo2');
    const submit = async (token: string, body: unknown) => {
      const res = await t.call('POST', '/api/jobs', token, body);
      expect(res.statusCode, res.body).toBe(201);
      return res.json<{ jobIds: number[] }>().jobIds;
    };
    await submit(alice, { jdls: [1, 2, 3, 4].map((i) => jdl({ JobName: `a${i}`, CPUTime: 3600 })) });
    await submit(alice, { jdl: jdl({ JobName: 'a-long', CPUTime: 86_400 }) });
    await submit(bob, { jdl: '[ Executable = "run.sh"; Parameters = 3; ParameterStart = 0; ParameterStep = 1; JobName = "b_%n"; ]' });
    const submitted = 8;

    // Five matches for vo1 (4 of them find a job), one for vo2 that finds one, one for vo3 that finds none.
    const matched: { jobId: number; pilotId: number }[] = [];
    let none = 0;
    for (const vo of ['vo1', 'vo1', 'vo1', 'vo1', 'vo1', 'vo2', 'vo3']) {
      // A pilot token matches only for a live pilot record (its place is the record's).
      const { id: pilotId, token } = await pilotAt(t, { site: resource.site, ce: resource.ce, vo });
      const res = await t.call('POST', '/api/match', token, resource);
      expect(res.statusCode, res.body).toBe(200);
      const m = res.json<{ match: { jobId: number } | null }>().match;
      if (m) matched.push({ jobId: m.jobId, pilotId });
      else none += 1;
    }
    expect(matched).toHaveLength(6);
    expect(none).toBe(1);

    // Two fail (one with a reason that needs escaping), two run, the rest stay Matched.
    const report = (i: number, status: 'Failed' | 'Running', minorStatus: string) =>
      reportJobStatus(t.db, matched[i]!.jobId, matched[i]!.pilotId, { status, minorStatus }, 'test');
    expect((await report(0, 'Failed', 'Application Finished With Errors')).accepted).toBe(true);
    expect((await report(1, 'Failed', ODD_REASON)).accepted).toBe(true);
    expect((await report(2, 'Running', 'Application')).accepted).toBe(true);
    expect((await report(5, 'Running', 'Application')).accepted).toBe(true);

    const pilots = await createPilots(
      t.db,
      [1, 2, 3, 4, 5].map((i) => ({
        stamp: `metrics-${i}`,
        site: i <= 3 ? 'LCG.Test.org' : 'CLOUD.Other.org',
        ce: i <= 3 ? 'ce1.test.org' : 'one.other.org',
        ceType: i <= 3 ? 'slurm' : 'opennebula',
        queue: 'long',
        queueId: null,
        vo: 'vo1',
      })),
    );
    await updatePilots(t.db, [pilots[0]!], { status: 'Running', reason: 'registered' });
    await updatePilots(t.db, [pilots[1]!, pilots[3]!], { status: 'Failed', reason: 'clock skew 61.2 s (limit 5 s)' });

    const s = await scrape();
    const db = t.db;

    expect(values(s, 'wms_jobs', (l) => l['status']!)).toEqual(
      new Map([
        ...JOB_STATES.map((k) => [k, 0] as [string, number]),
        ...(await sqlMap(db, 'select status as k, count(*) as n from jobs group by status')),
      ]),
    );
    expect(values(s, 'wms_jobs', (l) => l['status']!).get('Waiting')).toBe(2);
    expect(values(s, 'wms_jobs', (l) => l['status']!).get('Failed')).toBe(2);

    expect(values(s, 'wms_waiting_jobs', (l) => `${l['task_queue']}|${l['vo']}|${l['owner_group']}`)).toEqual(
      await sqlMap(
        db,
        `select tq.id || '|' || tq.vo || '|' || tq.owner_group as k, count(*) as n
           from jobs j join task_queues tq on tq.id = j.task_queue_id
          where j.status = 'Waiting' group by tq.id, tq.vo, tq.owner_group`,
      ),
    );
    expect(values(s, 'wms_running_jobs', (l) => l['site']!)).toEqual(
      await sqlMap(db, `select site as k, count(*) as n from jobs where status = 'Running' group by site`),
    );
    expect(values(s, 'wms_running_jobs', (l) => l['site']!)).toEqual(new Map([['LCG.Test.org', 2]]));
    expect(values(s, 'wms_failed_jobs', (l) => l['minor_status']!)).toEqual(
      await sqlMap(db, `select minor_status as k, count(*) as n from jobs where status = 'Failed' group by minor_status`),
    );
    expect(values(s, 'wms_failed_jobs', (l) => l['minor_status']!).get(ODD_REASON)).toBe(1);
    expect(s.text).toContain(`minor_status="${escapeLabelValue(ODD_REASON)}"`);
    expect(s.text).toContain('minor_status="Payload said \\"no\\" \\\\ then\\nexited"');

    const pilotKey = (l: Record<string, string>) => `${l['site']}|${l['ce']}|${l['ce_type']}|${l['state']}`;
    expect(values(s, 'wms_pilots', pilotKey)).toEqual(
      await sqlMap(db, `select site || '|' || ce || '|' || ce_type || '|' || status as k, count(*) as n from pilots group by 1`),
    );
    expect(values(s, 'wms_pilots', pilotKey).get('LCG.Test.org|ce1.test.org|slurm|Failed')).toBe(1);
    expect(values(s, 'wms_pilots', pilotKey).get('CLOUD.Other.org|one.other.org|opennebula|Submitted')).toBe(1);

    expect(values(s, 'wms_jobs_submitted_total', () => '').get('')).toBe(submitted);
    expect(values(s, 'wms_matches_total', (l) => l['result']!)).toEqual(
      new Map([
        ['matched', 6],
        ['none', 1],
      ]),
    );

    // The histogram: one bucket per bound and +Inf, cumulative, +Inf = count, a positive sum.
    const buckets = s.samples.filter((x) => x.name === 'wms_match_duration_seconds_bucket');
    expect(buckets.map((b) => b.labels['le'])).toEqual([...MATCH_BUCKETS.map(String), '+Inf']);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    const count = values(s, 'wms_match_duration_seconds_count', () => '').get('');
    expect(count).toBe(7);
    expect(buckets.at(-1)!.value).toBe(count);
    expect(values(s, 'wms_match_duration_seconds_sum', () => '').get('')).toBeGreaterThan(0);
  });

  it('agent ticks arriving on the in-process events are exposed per agent and outcome', async () => {
    const events = new EventEmitter();
    const app = buildApp({ db: ctx.handle, config: t.config, events });
    await app.ready();
    try {
      events.emit(AGENT_TICK_EVENT, 'stalled-jobs', { durationMs: 40, ok: true });
      events.emit(AGENT_TICK_EVENT, 'stalled-jobs', { durationMs: 1500, ok: false });
      events.emit(AGENT_TICK_EVENT, 'site-director', { durationMs: 12, ok: true });
      const res = await app.inject({ method: 'GET', url: '/metrics' });
      const s = parseExposition(res.body);
      expect(values(s, 'wms_agent_tick_duration_seconds', (l) => l['agent']!)).toEqual(
        new Map([
          ['site-director', 0.012],
          ['stalled-jobs', 1.5],
        ]),
      );
      expect(values(s, 'wms_agent_ticks_total', (l) => `${l['agent']}|${l['outcome']}`)).toEqual(
        new Map([
          ['site-director|ok', 1],
          ['site-director|error', 0],
          ['stalled-jobs|ok', 1],
          ['stalled-jobs|error', 1],
        ]),
      );
    } finally {
      await app.close();
    }
    expect(events.listenerCount(AGENT_TICK_EVENT)).toBe(0);
  });

  it('with a metrics token, /metrics needs it', async () => {
    const guarded = await createTestApp({ db: ctx.handle, config: { metricsToken: 's3cret' } });
    try {
      expect((await guarded.call('GET', '/metrics', null)).statusCode).toBe(401);
      expect((await guarded.call('GET', '/metrics', 'wrong')).statusCode).toBe(401);
      expect((await guarded.call('GET', '/metrics', await guarded.admin())).statusCode).toBe(401);
      const ok = await guarded.call('GET', '/metrics', 's3cret');
      expect(ok.statusCode).toBe(200);
      expect(ok.body).toContain('# TYPE wms_jobs gauge');
    } finally {
      await guarded.close();
    }
  });
});

describe('connection gauges', () => {
  let t: TestApp;
  let base: string;
  beforeAll(async () => {
    t = await createTestApp();
    base = (await t.app.listen({ port: 0, host: '127.0.0.1' })).replace(/^http/, 'ws');
  });
  afterAll(async () => {
    await t?.close();
  });

  const gauge = async (name: string) => {
    const s = parseExposition((await t.call('GET', '/metrics', null)).body);
    expect(s.families.get(name)?.type, name).toBe('gauge');
    return values(s, name, () => '').get('');
  };
  /** Scrapes until `name` reads `want` (the server sees a socket close after the client does). */
  const settles = async (name: string, want: number) => {
    for (let i = 0; i < 500 && (await gauge(name)) !== want; i++) await new Promise((ok) => setTimeout(ok, 10));
    expect(await gauge(name), name).toBe(want);
  };

  it('wms_pilot_websockets and wms_event_subscribers count the websockets this process holds', async () => {
    expect(await gauge('wms_pilot_websockets')).toBe(0);
    expect(await gauge('wms_event_subscribers')).toBe(0);
    const pilots = await Promise.all([1, 2].map(() => pilotAt(t, { site: resource.site, ce: resource.ce })));
    const sockets = await Promise.all(pilots.map((p) => EventClient.open(`${base}/api/pilots/self/ws`, p.token)));
    const follower = await EventClient.open(`${base}/api/events`, await t.user('alice'));
    await settles('wms_pilot_websockets', 2);
    await settles('wms_event_subscribers', 1);
    sockets[0]!.close();
    await settles('wms_pilot_websockets', 1);
    follower.close();
    sockets[1]!.close();
    await settles('wms_event_subscribers', 0);
    await settles('wms_pilot_websockets', 0);
  });

  it('the process memory is exposed (prom-client default metrics)', async () => {
    const s = parseExposition((await t.call('GET', '/metrics', null)).body);
    expect(values(s, 'process_resident_memory_bytes', () => '').get('')).toBeGreaterThan(0);
    expect(values(s, 'nodejs_heap_size_used_bytes', () => '').get('')).toBeGreaterThan(0);
  });
});

/** PromQL's aggregation operators (a function such as `rate` or `histogram_quantile` is not one). */
const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
]);

interface Aggregation {
  op: string;
  /** The `by (...)` or `without (...)` clause; null: all labels dropped. */
  grouping: { mode: 'by' | 'without'; labels: string[] } | null;
}

/** Where the parenthesis opened at `open` closes. */
function closing(expr: string, open: number): number {
  let depth = 0;
  for (let i = open; i < expr.length; i++) {
    if (expr[i] === '(') depth++;
    else if (expr[i] === ')' && --depth === 0) return i;
  }
  throw new Error(`unbalanced parentheses in ${expr}`);
}

/** Where the parenthesis closed at `close` opens. */
function opening(expr: string, close: number): number {
  let depth = 0;
  for (let i = close; i >= 0; i--) {
    if (expr[i] === ')') depth++;
    else if (expr[i] === '(' && --depth === 0) return i;
  }
  throw new Error(`unbalanced parentheses in ${expr}`);
}

const groupingOf = (mode: string, labels: string): Aggregation['grouping'] => ({
  mode: mode as 'by' | 'without',
  labels: labels.split(',').map((l) => l.trim()),
});

/** The aggregation whose argument list opens at `open`, if that parenthesis is one's (prefix or postfix grouping). */
function aggregationAt(expr: string, open: number): Aggregation | null {
  const before = expr.slice(0, open).trimEnd();
  if (before.endsWith(')')) {
    const groupOpen = opening(before, before.length - 1);
    const m = before.slice(0, groupOpen).match(/([a-z_]+)\s+(by|without)\s*$/);
    return m && AGGREGATIONS.has(m[1]!) ? { op: m[1]!, grouping: groupingOf(m[2]!, before.slice(groupOpen + 1, -1)) } : null;
  }
  const op = before.match(/([a-z_]+)$/)?.[1];
  if (!op || !AGGREGATIONS.has(op)) return null;
  const post = expr.slice(closing(expr, open) + 1).match(/^\s*(by|without)\s*\(([^)]*)\)/);
  return { op, grouping: post ? groupingOf(post[1]!, post[2]!) : null };
}

/** The aggregations enclosing position `at` of `expr`, innermost first. */
function aggregationsAround(expr: string, at: number): Aggregation[] {
  const out: Aggregation[] = [];
  let depth = 0;
  for (let i = at - 1; i >= 0; i--) {
    if (expr[i] === ')') depth++;
    else if (expr[i] === '(' && depth > 0) depth--;
    else if (expr[i] === '(') {
      const a = aggregationAt(expr, i);
      if (a) out.push(a);
    }
  }
  return out;
}

/** Words of PromQL that are neither metrics nor functions. */
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/** `text` with each match of `re` replaced by as many spaces (positions kept), or by `keep` around spaces. */
const blank = (text: string, re: RegExp, keep = ['', '']) =>
  text.replace(re, (x) => keep[0] + ' '.repeat(x.length - keep[0]!.length - keep[1]!.length) + keep[1]);

/** Each metric a PromQL expression selects, with the aggregations around it. */
function selections(expr: string): { metric: string; around: Aggregation[] }[] {
  // Strings, ranges and label matchers blanked: only the structure is left.
  const structure = blank(blank(blank(expr, /"(?:[^"\\]|\\.)*"/g), /\[[^\]]*\]/g), /\{[^}]*\}/g, ['{', '}']);
  // Grouping label lists blanked as well: what remains that is no function call is a metric.
  const names = blank(structure, /\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g);
  const out: { metric: string; around: Aggregation[] }[] = [];
  for (const m of names.matchAll(/(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)) {
    if (!KEYWORDS.has(m[1]!.toLowerCase())) out.push({ metric: m[1]!, around: aggregationsAround(structure, m.index) });
  }
  return out;
}

/** True when the aggregation leaves one series per instance (or more). */
const keepsInstances = (a: Aggregation) =>
  a.grouping !== null && (a.grouping.mode === 'by' ? a.grouping.labels.includes('instance') : !a.grouping.labels.includes('instance'));

describe('Grafana dashboard', () => {
  const path = resolve(import.meta.dirname, '../../deploy/grafana/pilot-wms.json');
  const dash = JSON.parse(readFileSync(path, 'utf8')) as {
    templating: { list: { name: string; type: string; query: unknown; definition?: string }[] };
    panels: { title: string; datasource: { uid: string }; targets: { expr: string }[] }[];
  };
  const exprs = dash.panels.flatMap((p) => p.targets.map((x) => ({ panel: p.title, expr: x.expr })));
  let s: Scrape;

  beforeAll(async () => {
    const t = await createTestApp();
    try {
      s = parseExposition((await t.call('GET', '/metrics', null)).body);
    } finally {
      await t.close();
    }
  });

  it('is valid JSON with a Prometheus datasource variable, and queries only exposed metrics', () => {
    const ds = dash.templating.list.find((v) => v.type === 'datasource');
    expect(ds).toMatchObject({ name: 'datasource', query: 'prometheus' });
    expect(dash.panels.length).toBeGreaterThanOrEqual(8);
    expect(new Set(dash.panels.map((p) => (p as unknown as { id: number }).id)).size, 'panel ids are unique').toBe(dash.panels.length);

    const histograms = [...s.families].filter(([, f]) => f.type === 'histogram').map(([name]) => name);
    const exposed = new Set([
      ...s.families.keys(),
      ...s.samples.map((x) => x.name),
      ...histograms.flatMap((h) => ['_bucket', '_sum', '_count'].map((x) => `${h}${x}`)),
    ]);
    const queries = [...exprs.map((e) => e.expr), ...dash.templating.list.flatMap((v) => (v.definition ? [v.definition] : []))];
    const used = new Set(queries.flatMap((q) => q.match(/\b(?:wms|process|nodejs)_[a-z0-9_]+/g) ?? []));
    expect(used.size).toBeGreaterThanOrEqual(10);
    for (const name of used) expect(exposed.has(name), `${name} is queried by the dashboard but not exposed`).toBe(true);
    // Every selector names an exposed metric, or Prometheus' own `up`.
    for (const { panel, expr } of exprs) {
      const names = selections(expr).map((x) => x.metric);
      expect(names.length, `${panel}: ${expr} selects no metric`).toBeGreaterThan(0);
      for (const n of names) expect(exposed.has(n) || n === 'up', `${panel}: ${n} is not exposed`).toBe(true);
    }
    for (const p of dash.panels) {
      expect(p.datasource.uid, p.title).toBe('${datasource}');
      expect(p.targets.length, p.title).toBeGreaterThan(0);
    }
  });

  it('database gauges take max over instances, never sum; per-process counters are summed', () => {
    for (const name of DATABASE_WIDE_METRICS) expect(s.families.has(name), `${name} is exposed`).toBe(true);
    const problems: string[] = [];
    let databaseSelections = 0;
    for (const { panel, expr } of exprs) {
      for (const { metric, around } of selections(expr)) {
        const inner = around[0];
        if (DATABASE_WIDE_METRICS.has(metric)) {
          databaseSelections++;
          // The same figure from every replica: the first aggregation must pick one (max/min) and
          // fold the instances away; only then may an outer sum add up other labels.
          if (!inner || !['max', 'min'].includes(inner.op) || keepsInstances(inner))
            problems.push(`${panel}: ${metric} is not first aggregated with max over instances in ${expr}`);
        } else if (['counter', 'histogram'].includes(s.families.get(metric.replace(/_(bucket|sum|count)$/, ''))?.type ?? '')) {
          // Kept by each process: the replicas' rates add up (a max would hide all but one).
          if (!inner || inner.op !== 'sum') problems.push(`${panel}: ${metric} is not summed in ${expr}`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(databaseSelections).toBeGreaterThanOrEqual(6);
  });

  it('has per-replica panels: websockets held, requests per second, memory, CPU', () => {
    const perInstance = new Set(
      exprs.flatMap(({ expr }) =>
        selections(expr)
          .filter((x) => x.around[0] && keepsInstances(x.around[0]))
          .map((x) => x.metric),
      ),
    );
    for (const m of [
      'wms_pilot_websockets',
      'wms_event_subscribers',
      'wms_http_request_duration_seconds_count',
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
    ])
      expect(perInstance.has(m), `${m} shown per instance`).toBe(true);
  });

  it('the checker itself: catches a summed database gauge, a bare one and one kept per instance', () => {
    const inner = (e: string) => selections(e)[0]!.around[0];
    expect(inner('sum(wms_jobs{job="x"})')).toEqual({ op: 'sum', grouping: null });
    expect(inner('sum by (status) (wms_jobs{job="x"})')).toEqual({ op: 'sum', grouping: { mode: 'by', labels: ['status'] } });
    expect(inner('max(wms_jobs{a="("}) by (status)')).toEqual({ op: 'max', grouping: { mode: 'by', labels: ['status'] } });
    expect(inner('rate(wms_jobs{job="x"}[5m])')).toBeUndefined();
    expect(keepsInstances(inner('max by (instance, status) (wms_jobs{job="x"})')!)).toBe(true);
    expect(keepsInstances(inner('max without (instance, job) (wms_jobs{job="x"})')!)).toBe(false);
    expect(selections('topk(20, max by (q) (wms_waiting_jobs{vo=~"$vo"}))')[0]!.around.map((a) => a.op)).toEqual(['max', 'topk']);
    expect(selections('sum(wms_jobs) / on (x) group_left max(up offset 5m) > 0').map((x) => [x.metric, x.around[0]?.op])).toEqual([
      ['wms_jobs', 'sum'],
      ['up', 'max'],
    ]);
  });
});
