/**
 * `/metrics` read by the real Prometheus tools (Debian's `prometheus` package): a live app
 * (listening, PGlite, a metrics token) with jobs Waiting, Matched, Running and Failed, pilots
 * Submitted, Running, Failed and Aborted, matches and agent ticks;
 * - `promtool check metrics` finds no problem in its scrape;
 * - a real Prometheus scrapes it every second, and every PromQL expression of the Grafana
 *   dashboard (deploy/grafana/pilot-wms.json; Grafana's variables given concrete values) parses,
 *   runs and returns data through `/api/v1/query`; every template variable's `label_values`
 *   finds values through `/api/v1/label/<name>/values`.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resolveServiceConfig } from '../../core/config.js';
import { createPilots, openDb, reportJobStatus, updatePilots, type DbHandle } from '../../db/index.js';
import { buildApp, type App } from '../../services/app.js';
import { AGENT_TICK_EVENT } from '../../services/metrics.js';
import { TokenSigner } from '../../services/token-signer.js';
import { jdl } from '../helpers/app.js';
import {
  describePrometheus,
  promtoolCheckMetrics,
  startPrometheus,
  type PromAnswer,
  type RunningPrometheus,
} from '../helpers/prometheus.js';

const METRICS_TOKEN = 'prometheus-test-secret';
const JOB = 'wms';
const DASHBOARD = resolve(import.meta.dirname, '../../deploy/grafana/pilot-wms.json');
const resource = { site: 'LCG.Test.org', ce: 'ce1.test.org', queue: 'long', cpuWork: 5_000_000, processors: 1, ramMb: 4096 };

/** Grafana's variables as a dashboard with "All" selected would send them. */
const VARIABLES: Record<string, string> = {
  __rate_interval: '1m',
  __interval: '15s',
  __range: '1h',
  job: JOB,
  vo: '.*',
  site: '.*',
};

function substitute(expr: string): string {
  const out = expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const v = VARIABLES[(braced ?? bare)!];
    if (v === undefined) throw new Error(`the dashboard uses ${whole}, which this test gives no value`);
    return v;
  });
  return out;
}

interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
  templating: { list: { name: string; type: string; definition?: string }[] };
}

describePrometheus('metrics read by promtool and Prometheus', () => {
  let db: DbHandle;
  let dataDir: string;
  let app: App;
  let target: string;
  let signer: TokenSigner;
  let prom: RunningPrometheus | undefined;
  const events = new EventEmitter();
  let pilotSeq = 0;

  const call = async (method: 'GET' | 'POST', url: string, token: string, body?: object) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(body ? { payload: body } : {}) });

  async function pilot(status: 'Submitted' | 'Running' | 'Failed' | 'Aborted', vo = 'vo1', at = { site: resource.site, ce: resource.ce }) {
    const [id] = await createPilots(db, [
      { stamp: `prom-${++pilotSeq}-${Date.now()}`, ...at, ceType: 'slurm', queue: 'long', queueId: null, vo },
    ]);
    if (status !== 'Submitted') await updatePilots(db, [id!], { status, reason: `test: ${status}` });
    return { id: id!, token: (await signer.sign({ role: 'pilot', user: `pilot:${id}`, vo, pilotId: id! }, 3600)).token };
  }

  /** Jobs submitted, some matched, one failed, one running; pilots in four states; agent ticks. */
  async function activity(round: number): Promise<void> {
    const alice = (await signer.sign({ role: 'user', user: 'alice', vo: 'vo1', group: 'vo1_user' }, 3600)).token;
    const bob = (await signer.sign({ role: 'user', user: 'bob', vo: 'vo2', group: 'vo2_user' }, 3600)).token;
    for (const [token, name] of [
      [alice, 'a'],
      [alice, 'b'],
      [bob, 'c'],
    ] as const) {
      const res = await call('POST', '/api/jobs', token, {
        jdls: [1, 2, 3].map((i) => jdl({ JobName: `${name}${round}-${i}`, CPUTime: 3600 })),
      });
      expect(res.statusCode, res.body).toBe(201);
    }
    const matched: { jobId: number; pilotId: number }[] = [];
    for (const vo of ['vo1', 'vo1', 'vo2', 'vo3']) {
      const p = await pilot('Running', vo);
      const res = await call('POST', '/api/match', p.token, resource);
      expect(res.statusCode, res.body).toBe(200);
      const m = res.json<{ match: { jobId: number } | null }>().match;
      if (m) matched.push({ jobId: m.jobId, pilotId: p.id });
    }
    expect(matched.length).toBeGreaterThanOrEqual(2);
    expect(
      (
        await reportJobStatus(
          db,
          matched[0]!.jobId,
          matched[0]!.pilotId,
          { status: 'Failed', minorStatus: 'Application Finished With Errors' },
          'test',
        )
      ).accepted,
    ).toBe(true);
    expect(
      (await reportJobStatus(db, matched[1]!.jobId, matched[1]!.pilotId, { status: 'Running', minorStatus: 'Application' }, 'test'))
        .accepted,
    ).toBe(true);
    await pilot('Submitted');
    await pilot('Failed');
    await pilot('Aborted', 'vo1', { site: 'CLOUD.Other.org', ce: 'one.other.org' });
    events.emit(AGENT_TICK_EVENT, 'stalled-jobs', { durationMs: 30, ok: true });
    events.emit(AGENT_TICK_EVENT, 'site-director', { durationMs: 80, ok: round % 2 === 0 });
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'wms-prom-test-'));
    db = await openDb('memory://');
    const config = Object.freeze({ ...resolveServiceConfig({ env: {} }), dataDir, metricsToken: METRICS_TOKEN });
    app = buildApp({ db, config, events });
    await app.ready();
    signer = await TokenSigner.open(db, { issuer: config.tokens.issuer });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    target = new URL(address).host;
    await activity(0);
  });

  afterAll(async () => {
    await prom?.close();
    await app?.close();
    await db?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('promtool check metrics finds no problem in a scrape', async () => {
    const res = await fetch(`http://${target}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    // The runtime series and the request histogram by route pattern (never the raw URL) are there.
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d/m);
    expect(text).toMatch(/^wms_http_request_duration_seconds_bucket\{.*route="\/api\/jobs".*\} \d/m);
    expect(text).not.toMatch(/route="\/api\/jobs\/\d/);
    const check = promtoolCheckMetrics(text);
    expect(check.output).toBe('');
    expect(check.status).toBe(0);
  });

  it('every PromQL expression of the Grafana dashboard runs on a real Prometheus and returns data', async () => {
    prom = await startPrometheus({ target, job: JOB, token: METRICS_TOKEN });
    await prom.waitForScrapes(3);
    // More of everything while Prometheus watches: rates and increases become positive.
    await activity(1);
    await prom.waitForScrapes(8);

    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: substitute(t.expr) })));
    expect(exprs.length).toBeGreaterThanOrEqual(15);
    const failures: string[] = [];
    for (const { panel, expr } of exprs) {
      const a: PromAnswer = await prom.query(expr);
      if (a.status !== 'success') failures.push(`${panel}: ${expr}: ${a.error ?? JSON.stringify(a)}`);
      else if (Array.isArray(a.data) || (a.data?.result ?? []).length === 0) failures.push(`${panel}: ${expr}: no data`);
    }
    // The failed-pilot panel counts the counter's increase, not a gauge's delta.
    const failed = await prom.query(substitute(exprs.find((e) => e.expr.includes('wms_pilots_failed_total'))!.expr));
    expect(JSON.stringify(failed.data)).toContain('"ce":"ce1.test.org"');

    for (const v of dash.templating.list.filter((x) => x.type === 'query')) {
      const m = v.definition?.match(/^label_values\((\w+),\s*(\w+)\)$/);
      if (!m) {
        failures.push(`variable ${v.name}: "${v.definition}" is not label_values(metric, label)`);
        continue;
      }
      const a = await prom.api(`label/${m[2]}/values`, { 'match[]': m[1]! });
      if (a.status !== 'success' || !Array.isArray(a.data) || a.data.length === 0)
        failures.push(`variable ${v.name}: ${JSON.stringify(a)}`);
    }
    expect(failures, prom.log().slice(-1000)).toEqual([]);
  });
});
