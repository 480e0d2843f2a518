import { useState } from 'preact/hooks';
import type { AccountingReport, AccountingRow, GroupUsage, Identity, Usage, UsageWindow, UserUsage } from '../../../api/index.js';
import { api } from '../api.js';
import { usePolled } from '../hooks.js';
import { isRefusal, Refused } from '../roles.js';
import { Time } from '../time.js';

function hours(seconds: number): string {
  return seconds >= 3600
    ? `${(seconds / 3600).toFixed(1)} h`
    : seconds >= 60
      ? `${(seconds / 60).toFixed(1)} min`
      : `${seconds.toFixed(0)} s`;
}

const compactFormat = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });

/** Normalized CPU (CPU seconds × DB12), compact: `12.3K DB12·s`. */
function norm(value: number): string {
  return `${compactFormat.format(value)} DB12·s`;
}

function jobs(n: number): string {
  return `${n} job${n === 1 ? '' : 's'}`;
}

function percent(f: number): string {
  return `${(f * 100).toFixed(f > 0 && f < 0.1 ? 1 : 0)} %`;
}

interface Bar {
  key: string;
  label: string;
  parts: { value: number; cls: string; title: string }[];
  text: string;
}

/**
 * A horizontal bar chart in plain SVG: one row per label, stacked parts, the figure at the end.
 * `max` fixes the scale (1 for fractions); by default the longest row fills the width.
 */
function BarChart({ bars, testId, max }: { bars: Bar[]; testId: string; max?: number }) {
  if (bars.length === 0)
    return (
      <p class="empty" data-testid={testId}>
        Nothing yet.
      </p>
    );
  const rowH = 22;
  const labelW = 150;
  const barW = 250;
  const textW = 150;
  const scale = max ?? Math.max(1e-9, ...bars.map((b) => b.parts.reduce((a, p) => a + p.value, 0)));
  return (
    <svg class="chart" data-testid={testId} width={labelW + barW + textW} height={bars.length * rowH + 4} role="img">
      {bars.map((b, i) => {
        let x = labelW;
        const y = i * rowH + 2;
        return (
          <g key={b.key}>
            <text x={labelW - 6} y={y + rowH / 2 + 4} text-anchor="end">
              {b.label}
            </text>
            {b.parts.map((p) => {
              const w = (p.value / scale) * barW;
              const r = (
                <rect key={p.cls} x={x} y={y + 3} width={Math.max(w, p.value > 0 ? 1 : 0)} height={rowH - 6} class={p.cls}>
                  <title>{p.title}</title>
                </rect>
              );
              x += w;
              return r;
            })}
            <text x={x + 6} y={y + rowH / 2 + 4}>
              {b.text}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/**
 * Share against use, per group: two bars on one 0–100 % scale, the share fraction (what the
 * group is entitled to among its VO's active groups) over the used fraction (its part of the
 * VO's normalized CPU of the week).
 */
function ShareChart({ groups }: { groups: GroupUsage[] }) {
  if (groups.length === 0)
    return (
      <p class="empty" data-testid="share-vs-used">
        Nothing yet.
      </p>
    );
  const rowH = 18;
  const gap = 10;
  const labelW = 150;
  const barW = 250;
  const textW = 90;
  const blockH = 2 * rowH + gap;
  return (
    <svg class="chart" data-testid="share-vs-used" width={labelW + barW + textW} height={groups.length * blockH + 4} role="img">
      {groups.map((g, i) => {
        const y = i * blockH + 2;
        const label = `${g.vo}/${g.group}`;
        const rows = [
          {
            cls: 'bar-share',
            value: g.shareFraction,
            title: `${label}: share ${percent(g.shareFraction)} (${g.share})`,
            text: `share ${percent(g.shareFraction)}`,
          },
          {
            cls: 'bar-used',
            value: g.usedFraction,
            title: `${label}: used ${percent(g.usedFraction)} of the VO's normalized CPU this week`,
            text: `used ${percent(g.usedFraction)}`,
          },
        ];
        return (
          <g key={label}>
            <text x={labelW - 6} y={y + rowH + 4} text-anchor="end">
              {label}
            </text>
            {rows.map((r, k) => (
              <g key={r.cls}>
                <rect x={labelW} y={y + k * rowH + 2} width={barW} height={rowH - 4} class="bar-track" />
                <rect x={labelW} y={y + k * rowH + 2} width={Math.max(r.value * barW, r.value > 0 ? 1 : 0)} height={rowH - 4} class={r.cls}>
                  <title>{r.title}</title>
                </rect>
                <text x={labelW + barW + 6} y={y + k * rowH + rowH / 2 + 4}>
                  {r.text}
                </text>
              </g>
            ))}
          </g>
        );
      })}
    </svg>
  );
}

function loadBars(rows: { key: string; label: string; waiting: number; running: number }[]): Bar[] {
  return rows.map((l) => ({
    key: l.key,
    label: l.label,
    parts: [
      { value: l.running, cls: 'bar-running', title: `${l.label}: ${l.running} running` },
      { value: l.waiting, cls: 'bar-waiting', title: `${l.label}: ${l.waiting} waiting` },
    ],
    text: `${l.running} running · ${l.waiting} waiting`,
  }));
}

function cpuBars(rows: { key: string; label: string; used: UsageWindow }[]): Bar[] {
  return rows.map((r) => ({
    key: r.key,
    label: r.label,
    parts: [
      {
        value: r.used.cpuSeconds,
        cls: 'bar-cpu',
        title: `${r.label}: ${hours(r.used.cpuSeconds)} CPU, ${norm(r.used.normalizedCpuSeconds)}, ${jobs(r.used.jobs)}`,
      },
    ],
    text: `${hours(r.used.cpuSeconds)} · ${jobs(r.used.jobs)}`,
  }));
}

function outcomeBars(rows: AccountingRow[]): Bar[] {
  return rows.map((r) => ({
    key: r.key,
    label: r.key,
    parts: [
      { value: r.done, cls: 'bar-done', title: `${r.key}: ${r.done} done` },
      { value: r.failed, cls: 'bar-failed', title: `${r.key}: ${r.failed} failed` },
      { value: r.killed, cls: 'bar-killed', title: `${r.key}: ${r.killed} killed` },
    ],
    text: `${r.done} done · ${r.failed} failed${r.killed ? ` · ${r.killed} killed` : ''}`,
  }));
}

function normBars(rows: AccountingRow[]): Bar[] {
  return rows.map((r) => ({
    key: r.key,
    label: r.key,
    parts: [
      {
        value: r.normalizedCpuSeconds,
        cls: 'bar-norm',
        title: `${r.key}: ${norm(r.normalizedCpuSeconds)}, ${hours(r.cpuSeconds)} CPU, ${jobs(r.jobs)}`,
      },
    ],
    text: norm(r.normalizedCpuSeconds),
  }));
}

/** The share of a group, with Edit (admins): PUT /api/shares/:vo/:group, then `onDone`. */
function ShareCell({ g, editable, onDone }: { g: GroupUsage; editable: boolean; onDone: () => void }) {
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState(String(g.share));
  const [error, setError] = useState<string | null>(null);
  const label = `${g.vo}/${g.group}`;
  const shown = (
    <span data-testid={`share-${label}`}>
      {g.share}
      {!g.shareConfigured && <small class="muted"> (default)</small>}
    </span>
  );
  if (!editable) return shown;
  if (!editing) {
    return (
      <span class="share-cell">
        {shown}{' '}
        <button
          type="button"
          class="small"
          aria-label={`Edit share of ${label}`}
          onClick={() => {
            setValue(String(g.share));
            setEditing(true);
          }}
        >
          Edit
        </button>
      </span>
    );
  }
  const n = Number(value);
  const valid = value.trim() !== '' && Number.isFinite(n) && n > 0;
  return (
    <form
      class="share-cell"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        try {
          await api('PUT', `/api/shares/${encodeURIComponent(g.vo)}/${encodeURIComponent(g.group)}`, { share: n });
          setEditing(false);
          onDone();
        } catch (err) {
          setError((err as Error).message);
        }
      }}
    >
      <input
        type="number"
        min="0"
        step="any"
        aria-label={`Share of ${label}`}
        value={value}
        onInput={(e) => setValue(e.currentTarget.value)}
        autoFocus
      />
      <button type="submit" class="small" disabled={!valid}>
        Save
      </button>
      <button type="button" class="small" onClick={() => setEditing(false)}>
        Cancel
      </button>
      {!valid && <span class="error">a number &gt; 0</span>}
      {error && (
        <span class="error" role="alert">
          {error}
        </span>
      )}
    </form>
  );
}

function GroupsTable({ groups, editable, onChanged }: { groups: GroupUsage[]; editable: boolean; onChanged: () => void }) {
  return (
    <div class="table-scroll">
      <table data-testid="usage-groups">
        <thead>
          <tr>
            <th>VO</th>
            <th>Group</th>
            <th>Share</th>
            <th>Share %</th>
            <th>Used % (week)</th>
            <th>Waiting</th>
            <th>Running</th>
            <th>CPU last day</th>
            <th>CPU last week</th>
            <th>Normalized CPU week</th>
          </tr>
        </thead>
        <tbody>
          {groups.map((g) => (
            <tr key={`${g.vo}/${g.group}`}>
              <td>{g.vo}</td>
              <td>{g.group}</td>
              <td>
                <ShareCell g={g} editable={editable} onDone={onChanged} />
              </td>
              <td>{percent(g.shareFraction)}</td>
              <td class={g.usedFraction > g.shareFraction ? 'over' : ''}>{percent(g.usedFraction)}</td>
              <td>{g.waiting}</td>
              <td>{g.running}</td>
              <td>{hours(g.day.cpuSeconds)}</td>
              <td>{hours(g.week.cpuSeconds)}</td>
              <td>{norm(g.week.normalizedCpuSeconds)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function UsersTable({ users }: { users: UserUsage[] }) {
  return (
    <div class="table-scroll">
      <table data-testid="usage-users">
        <thead>
          <tr>
            <th>VO</th>
            <th>Group</th>
            <th>User</th>
            <th>Waiting</th>
            <th>Running</th>
            <th>CPU last day</th>
            <th>CPU last week</th>
            <th>Normalized CPU day</th>
            <th>Normalized CPU week</th>
          </tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <tr key={`${u.vo}/${u.group}/${u.user}`}>
              <td>{u.vo}</td>
              <td>{u.group}</td>
              <td>{u.user}</td>
              <td>{u.waiting}</td>
              <td>{u.running}</td>
              <td>{hours(u.day.cpuSeconds)}</td>
              <td>{hours(u.week.cpuSeconds)}</td>
              <td>{norm(u.day.normalizedCpuSeconds)}</td>
              <td>{norm(u.week.normalizedCpuSeconds)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Jobs done and failed, and normalized CPU, per site and per group over the last week. */
function WeekAccounting({ mine }: { mine: boolean }) {
  const sites = usePolled(() => api<AccountingReport>('GET', '/api/accounting?by=site&since=7d'), [], 30_000);
  const groups = usePolled(() => api<AccountingReport>('GET', '/api/accounting?by=group&since=7d'), [], 30_000);
  const err = sites.error ?? groups.error;
  const byJobs = sites.data ? [...sites.data.rows].sort((a, b) => b.jobs - a.jobs || a.key.localeCompare(b.key)) : null;
  return (
    <>
      <h2>Finished jobs of the last week{mine ? ' (yours)' : ''}</h2>
      {sites.data && (
        <p class="hint" data-testid="accounting-since">
          Jobs that ended since <Time iso={sites.data.since} />.
        </p>
      )}
      {err && (isRefusal(err) ? <Refused what="The accounting of the last week" /> : <p class="error">{err.message}</p>)}
      <div class="charts">
        <figure>
          <figcaption>Jobs done and failed per site</figcaption>
          {byJobs ? <BarChart bars={outcomeBars(byJobs)} testId="jobs-site-7d" /> : <p>Loading…</p>}
          <p class="legend">
            <span class="bar-done">■</span> done <span class="bar-failed">■</span> failed <span class="bar-killed">■</span> killed
          </p>
        </figure>
        <figure>
          <figcaption>Normalized CPU per site</figcaption>
          {sites.data ? <BarChart bars={normBars(sites.data.rows)} testId="norm-site-7d" /> : <p>Loading…</p>}
        </figure>
        <figure>
          <figcaption>Normalized CPU per group</figcaption>
          {groups.data ? <BarChart bars={normBars(groups.data.rows)} testId="norm-group-7d" /> : <p>Loading…</p>}
        </figure>
      </div>
    </>
  );
}

/**
 * Quotas and usage, from one `GET /api/usage`: per group its share against what it used this
 * week (fractions of its VO), jobs waiting and running, CPU of the last day and week; the same
 * per user without shares. Users see their group and themselves; admins and site admins all,
 * and admins edit a group's share here (`PUT /api/shares`). Below, the week's accounting: jobs
 * done and failed per site, normalized CPU per site and per group.
 */
export function UsagePage({ me }: { me: Identity | null }) {
  const usage = usePolled(() => api<Usage>('GET', '/api/usage'), [me?.role, me?.user], 5000);
  const people = me === null || me.role === 'user' || me.role === 'admin' || me.role === 'site-admin';
  const mine = me?.role === 'user';
  const u = usage.data;
  return (
    <section>
      <h1>Quotas and usage</h1>
      {!people && <p>This page is for users and administrators.</p>}
      {usage.error &&
        (isRefusal(usage.error) ? (
          <Refused what="Usage" />
        ) : (
          <p class="error" role="alert">
            Usage: {usage.error.message}
          </p>
        ))}
      {people && !u && !usage.error && <p>Loading…</p>}
      {u && (
        <>
          <h2>{mine ? 'Your group' : 'Groups'}: shares against use</h2>
          <p class="hint">
            Share %: the group's share over the shares of its VO's groups that have jobs waiting or running, or used CPU this week (default
            share {u.defaultShare}). Used %: its part of the VO's normalized CPU of the last week.
          </p>
          <p class="hint" data-testid="usage-since">
            Last day: since <Time iso={u.daySince} />; last week: since <Time iso={u.weekSince} />.
          </p>
          <GroupsTable groups={u.groups} editable={me?.role === 'admin'} onChanged={usage.reload} />
          <div class="charts">
            <figure>
              <figcaption>Share and use per group</figcaption>
              <ShareChart groups={u.groups} />
              <p class="legend">
                <span class="bar-share">■</span> share <span class="bar-used">■</span> used (normalized CPU, week)
              </p>
            </figure>
            <figure>
              <figcaption>Jobs waiting and running per group</figcaption>
              <BarChart
                bars={loadBars(
                  u.groups.map((g) => ({ key: `${g.vo}/${g.group}`, label: `${g.vo}/${g.group}`, waiting: g.waiting, running: g.running })),
                )}
                testId="load-groups"
              />
              <p class="legend">
                <span class="bar-running">■</span> running <span class="bar-waiting">■</span> waiting
              </p>
            </figure>
          </div>

          <h2>{mine ? `You (${me?.user})` : 'Users'}</h2>
          <UsersTable users={u.users} />
          <div class="charts">
            <figure>
              <figcaption>Jobs waiting and running per user</figcaption>
              <BarChart
                bars={loadBars(
                  u.users.map((x) => ({
                    key: `${x.vo}/${x.group}/${x.user}`,
                    label: `${x.user} (${x.group})`,
                    waiting: x.waiting,
                    running: x.running,
                  })),
                )}
                testId="load-users"
              />
            </figure>
            <figure>
              <figcaption>CPU time per user, last day</figcaption>
              <BarChart
                bars={cpuBars(u.users.map((x) => ({ key: `${x.vo}/${x.group}/${x.user}`, label: `${x.user} (${x.group})`, used: x.day })))}
                testId="cpu-user-1d"
              />
            </figure>
            <figure>
              <figcaption>CPU time per user, last week</figcaption>
              <BarChart
                bars={cpuBars(u.users.map((x) => ({ key: `${x.vo}/${x.group}/${x.user}`, label: `${x.user} (${x.group})`, used: x.week })))}
                testId="cpu-user-7d"
              />
            </figure>
          </div>
        </>
      )}
      {people && <WeekAccounting mine={mine} />}
    </section>
  );
}
