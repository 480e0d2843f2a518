import { api, type Identity } from '../api.js';
import { usePolled } from '../hooks.js';

interface AccountingRow {
  key: string;
  jobs: number;
  done: number;
  failed: number;
  killed: number;
  cpuSeconds: number;
  wallSeconds: number;
  normalizedCpuSeconds: number;
}

interface Summary {
  counts: Record<string, number>;
  total: number;
}

interface Load {
  key: string;
  waiting: number;
  running: number;
}

const WAITING = ['Submitting', 'Received', 'Checking', 'Waiting', 'Rescheduled'];
const RUNNING = ['Matched', 'Running', 'Completing', 'Stalled'];

function load(key: string, s: Summary): Load {
  const sum = (states: string[]) => states.reduce((a, st) => a + (s.counts[st] ?? 0), 0);
  return { key, waiting: sum(WAITING), running: sum(RUNNING) };
}

function hours(seconds: number): string {
  return seconds >= 3600 ? `${(seconds / 3600).toFixed(1)} h` : seconds >= 60 ? `${(seconds / 60).toFixed(1)} min` : `${seconds.toFixed(0)} s`;
}

interface Bar {
  label: string;
  parts: { value: number; cls: string; title: string }[];
  text: string;
}

/** A horizontal bar chart in plain SVG: one row per label, stacked parts, the figure at the end. */
function BarChart({ bars, testId }: { bars: Bar[]; testId: string }) {
  if (bars.length === 0) return <p class="empty" data-testid={testId}>Nothing yet.</p>;
  const rowH = 22;
  const labelW = 150;
  const barW = 360;
  const textW = 130;
  const max = Math.max(1e-9, ...bars.map((b) => b.parts.reduce((a, p) => a + p.value, 0)));
  return (
    <svg class="chart" data-testid={testId} width={labelW + barW + textW} height={bars.length * rowH + 4} role="img">
      {bars.map((b, i) => {
        let x = labelW;
        const y = i * rowH + 2;
        return (
          <g key={b.label}>
            <text x={labelW - 6} y={y + rowH / 2 + 4} text-anchor="end">{b.label}</text>
            {b.parts.map((p) => {
              const w = (p.value / max) * barW;
              const r = <rect key={p.cls} x={x} y={y + 3} width={Math.max(w, p.value > 0 ? 1 : 0)} height={rowH - 6} class={p.cls}><title>{p.title}</title></rect>;
              x += w;
              return r;
            })}
            <text x={x + 6} y={y + rowH / 2 + 4}>{b.text}</text>
          </g>
        );
      })}
    </svg>
  );
}

function cpuBars(rows: AccountingRow[]): Bar[] {
  return rows.map((r) => ({
    label: r.key,
    parts: [{ value: r.cpuSeconds, cls: 'bar-cpu', title: `${r.key}: ${hours(r.cpuSeconds)} CPU, ${r.jobs} jobs` }],
    text: `${hours(r.cpuSeconds)} · ${r.jobs} jobs`,
  }));
}

function loadBars(loads: Load[]): Bar[] {
  return loads.map((l) => ({
    label: l.key,
    parts: [
      { value: l.running, cls: 'bar-running', title: `${l.key}: ${l.running} running` },
      { value: l.waiting, cls: 'bar-waiting', title: `${l.key}: ${l.waiting} waiting` },
    ],
    text: `${l.running} running · ${l.waiting} waiting`,
  }));
}

function Accounting({ by, title }: { by: 'user' | 'group' | 'site'; title: string }) {
  const day = usePolled(() => api<{ rows: AccountingRow[] }>('GET', `/api/accounting?by=${by}&since=1d`), [by], 30_000);
  const week = usePolled(() => api<{ rows: AccountingRow[] }>('GET', `/api/accounting?by=${by}&since=7d`), [by], 30_000);
  const err = day.error ?? week.error;
  return (
    <div class="usage-block">
      <h3>CPU time per {title}</h3>
      {err && <p class="error">{err.message}</p>}
      <div class="charts">
        <figure>
          <figcaption>Last day</figcaption>
          {day.data ? <BarChart bars={cpuBars(day.data.rows)} testId={`cpu-${by}-1d`} /> : <p>Loading…</p>}
        </figure>
        <figure>
          <figcaption>Last week</figcaption>
          {week.data ? <BarChart bars={cpuBars(week.data.rows)} testId={`cpu-${by}-7d`} /> : <p>Loading…</p>}
        </figure>
      </div>
    </div>
  );
}

/**
 * Jobs waiting and running: the caller's own (users), or per owner and per site (admins: one
 * `/api/jobs/summary?owner=` per user seen in the week's accounting or in the job list, and
 * one `?site=` per registered site).
 */
async function loads(me: Identity | null): Promise<{ owners: Load[]; sites: Load[] }> {
  if (me?.role !== 'admin') {
    const s = await api<Summary>('GET', '/api/jobs/summary');
    return { owners: [load(me?.user ?? 'me', s)], sites: [] };
  }
  const [acc, recent, sites] = await Promise.all([
    api<{ rows: AccountingRow[] }>('GET', '/api/accounting?by=user&since=7d'),
    api<{ jobs: { owner: string }[] }>('GET', '/api/jobs?limit=500'),
    api<{ queues: { site: string }[] }>('GET', '/api/sites'),
  ]);
  const owners = [...new Set([...acc.rows.map((r) => r.key), ...recent.jobs.map((j) => j.owner)])].sort();
  const siteNames = [...new Set(sites.queues.map((q) => q.site))].sort();
  const [o, s] = await Promise.all([
    Promise.all(owners.map(async (u) => load(u, await api<Summary>('GET', `/api/jobs/summary?owner=${encodeURIComponent(u)}`)))),
    Promise.all(siteNames.map(async (n) => load(n, await api<Summary>('GET', `/api/jobs/summary?site=${encodeURIComponent(n)}`)))),
  ]);
  return { owners: o, sites: s };
}

/** Quotas and usage: jobs waiting and running, and CPU time used in the last day and week. */
export function UsagePage({ me }: { me: Identity | null }) {
  const people = me?.role === 'user' || me?.role === 'admin';
  const current = usePolled(() => (people ? loads(me) : Promise.resolve({ owners: [], sites: [] })), [me?.role, me?.user], 5000);
  return (
    <section>
      <h1>Quotas and usage</h1>
      {people && (
        <>
          <h2>Jobs waiting and running</h2>
          {current.error && <p class="error">{current.error.message}</p>}
          {current.data ? (
            <div class="charts">
              <figure>
                <figcaption>{me?.role === 'admin' ? 'Per user' : `Your jobs (${me?.user})`}</figcaption>
                <BarChart bars={loadBars(current.data.owners)} testId="load-users" />
              </figure>
              {me?.role === 'admin' && (
                <figure>
                  <figcaption>Per site</figcaption>
                  <BarChart bars={loadBars(current.data.sites)} testId="load-sites" />
                </figure>
              )}
            </div>
          ) : (
            <p>Loading…</p>
          )}
          <p class="legend"><span class="bar-running">■</span> running <span class="bar-waiting">■</span> waiting</p>
        </>
      )}
      <h2>CPU time used</h2>
      <Accounting by="user" title="user" />
      <Accounting by="group" title="group" />
      <Accounting by="site" title="site" />
    </section>
  );
}
