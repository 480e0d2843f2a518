/**
 * `/metrics` of a whole system (services, agents, local site with real pilots) on PGlite and
 * PostgreSQL: after hello-world jobs (and one that fails) ran through real pilots, the scraped
 * gauges equal SQL counts on the system's database, the counters equal what was submitted and
 * matched, and the agents' ticks arrived through the runner's onTick.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { DbHandle } from '../../db/index.js';
import { describeSystem, waitUntil, type SystemCtx } from '../helpers/system.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Samples of the text format (the format itself is checked in tests/integration/metrics.test.ts). */
function samplesOf(text: string): Sample[] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = l.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
      if (!m) throw new Error(`not a sample: ${l}`);
      const labels: Record<string, string> = {};
      for (const x of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[x[1]!] = x[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      }
      return { name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) };
    });
}

async function scrape(sys: SystemCtx): Promise<Sample[]> {
  const res = await fetch(`${sys.url}/metrics`); // no token: /metrics is open by default
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('version=0.0.4');
  return samplesOf(await res.text());
}

/** Non-zero samples of `name` keyed by `key`. */
function figures(s: Sample[], name: string, key: (l: Record<string, string>) => string): Map<string, number> {
  return new Map(s.filter((x) => x.name === name && x.value !== 0).map((x) => [key(x.labels), x.value]));
}

async function sqlMap(db: DbHandle, text: string): Promise<Map<string, number>> {
  const r = await db.query<{ k: string; n: number | string }>(text);
  return new Map(r.map((x) => [String(x.k), Number(x.n)]));
}

const pilotKey = (l: Record<string, string>) => `${l['site']}|${l['ce']}|${l['ce_type']}|${l['state']}`;

describeSystem('metrics of a running system', (sys) => {
  it('after hello-world jobs ran through real pilots, /metrics equals the database', async () => {
    const hello = await readFile(join(import.meta.dirname, '../../examples/hello.jdl'), 'utf8');
    const ids = [...(await sys.submit(hello)), ...(await sys.submit(hello)), ...(await sys.submit(hello))];
    const [bad] = await sys.submit('[ JobName = "fails"; Executable = "/bin/false"; CPUTime = 600; ]');
    for (const id of ids) expect((await sys.waitForStatus(id, ['Done', 'Failed'])).status).toBe('Done');
    expect((await sys.waitForStatus(bad!, ['Done', 'Failed'])).status).toBe('Failed');

    const db = sys.system.server.db;
    // Jobs are final now: the job gauges must equal the database exactly.
    const s = await scrape(sys);
    expect(figures(s, 'wms_jobs', (l) => l['status']!)).toEqual(
      await sqlMap(db, 'select status as k, count(*) as n from jobs group by status'),
    );
    expect(figures(s, 'wms_jobs', (l) => l['status']!)).toEqual(
      new Map([
        ['Done', 3],
        ['Failed', 1],
      ]),
    );
    expect(figures(s, 'wms_failed_jobs', (l) => l['minor_status']!)).toEqual(
      await sqlMap(db, `select minor_status as k, count(*) as n from jobs where status = 'Failed' group by minor_status`),
    );
    expect(figures(s, 'wms_waiting_jobs', (l) => l['task_queue']!).size).toBe(0);
    expect(figures(s, 'wms_running_jobs', (l) => l['site']!).size).toBe(0);
    expect(figures(s, 'wms_jobs_submitted_total', () => '')).toEqual(new Map([['', 4]]));
    expect(figures(s, 'wms_matches_total', (l) => l['result']!).get('matched')).toBe(4);
    const count = figures(s, 'wms_match_duration_seconds_count', () => '').get('')!;
    expect(count).toBe(s.filter((x) => x.name === 'wms_matches_total').reduce((a, x) => a + x.value, 0));

    // Pilots still move (idle ones stop, the pilot-status agent records it): a scrape and a
    // count taken one after the other agree once a state holds for both.
    await waitUntil(
      'pilot gauges to equal the pilots table',
      async () => {
        const p = figures(await scrape(sys), 'wms_pilots', pilotKey);
        const q = await sqlMap(
          db,
          `select site || '|' || ce || '|' || ce_type || '|' || status as k, count(*) as n from pilots group by 1`,
        );
        return p.size > 0 && JSON.stringify([...p].sort()) === JSON.stringify([...q].sort());
      },
      30_000,
      250,
    );
    const pilots = figures(await scrape(sys), 'wms_pilots', pilotKey);
    expect([...pilots.keys()].every((k) => k.startsWith('Local.localhost|localhost|local|'))).toBe(true);

    // Agent ticks arrived through the runner's onTick (agents tick every second here).
    const ticks = await waitUntil(
      'ticks of the three fast agents',
      async () => {
        const t = await scrape(sys);
        const ok = figures(t, 'wms_agent_ticks_total', (l) => `${l['agent']}|${l['outcome']}`);
        return ['site-director', 'pilot-status', 'stalled-jobs'].every((a) => (ok.get(`${a}|ok`) ?? 0) >= 1) ? t : null;
      },
      15_000,
      250,
    );
    const durations = new Map(ticks.filter((x) => x.name === 'wms_agent_tick_duration_seconds').map((x) => [x.labels['agent'], x.value]));
    for (const a of ['site-director', 'pilot-status', 'stalled-jobs']) {
      expect(durations.get(a), a).toBeGreaterThan(0);
      expect(durations.get(a), a).toBeLessThan(60);
    }
  });
});
