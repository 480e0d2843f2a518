/**
 * `/metrics` through `app.inject()` on PGlite and PostgreSQL: jobs submitted through the API,
 * some matched, some failed and some running through the db functions, pilots in several
 * states; the scraped gauges equal what SQL counts in the database, the counters and the match
 * histogram equal what this app did. Format: HELP and TYPE before the samples of each family,
 * escaped label values, cumulative histogram buckets. The optional metrics token. The Grafana
 * dashboard only queries metrics that `/metrics` exposes.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_STATES } from '../../core/job-states.js';
import { createPilots, reportJobStatus, updatePilots, type DbHandle } from '../../db/index.js';
import { buildApp } from '../../services/app.js';
import { AGENT_TICK_EVENT, escapeLabelValue, MATCH_BUCKETS } from '../../services/metrics.js';
import { createTestApp, jdl, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';
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

describe('Grafana dashboard', () => {
  const path = resolve(import.meta.dirname, '../../deploy/grafana/pilot-wms.json');

  it('is valid JSON with a Prometheus datasource variable, and queries only exposed metrics', async () => {
    const dash = JSON.parse(readFileSync(path, 'utf8')) as {
      templating: { list: { name: string; type: string; query: unknown; definition?: string }[] };
      panels: { title: string; datasource: { uid: string }; targets: { expr: string }[] }[];
    };
    const ds = dash.templating.list.find((v) => v.type === 'datasource');
    expect(ds).toMatchObject({ name: 'datasource', query: 'prometheus' });
    expect(dash.panels.length).toBeGreaterThanOrEqual(8);

    const t = await createTestApp();
    let s: Scrape;
    try {
      s = parseExposition((await t.call('GET', '/metrics', null)).body);
    } finally {
      await t.close();
    }
    const histograms = [...s.families].filter(([, f]) => f.type === 'histogram').map(([name]) => name);
    const exposed = new Set([
      ...s.families.keys(),
      ...s.samples.map((x) => x.name),
      ...histograms.flatMap((h) => ['_bucket', '_sum', '_count'].map((x) => `${h}${x}`)),
    ]);
    const queries = [
      ...dash.panels.flatMap((p) => p.targets.map((x) => x.expr)),
      ...dash.templating.list.flatMap((v) => (v.definition ? [v.definition] : [])),
    ];
    const used = new Set(queries.flatMap((q) => q.match(/\bwms_[a-z0-9_]+/g) ?? []));
    expect(used.size).toBeGreaterThanOrEqual(10);
    for (const name of used) expect(exposed.has(name), `${name} is queried by the dashboard but not exposed`).toBe(true);
    for (const p of dash.panels) {
      expect(p.datasource.uid, p.title).toBe('${datasource}');
      expect(p.targets.length, p.title).toBeGreaterThan(0);
    }
  });
});
