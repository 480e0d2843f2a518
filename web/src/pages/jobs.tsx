import type { Identity, JobCounts, JobList, QueueList } from '../../../api/index.js';
import { api } from '../api.js';
import { LIVE_POLL_MS, streamLabel, useEvents, useThrottled } from '../events.js';
import { usePolled } from '../hooks.js';
import { navigate, onLinkClick } from '../router.js';
import { JOB_STATES } from '../../../core/job-states.js';
import { isRefusal, Refused } from '../roles.js';

const PAGE = 25;

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The filters of the page, as the address holds them (names as GET /api/jobs takes them). */
interface Filters {
  status: string;
  site: string;
  group: string;
  /** Submitted on or after this day (YYYY-MM-DD, the browser's time zone). */
  since: string;
  /** Submitted on or before this day (YYYY-MM-DD, the browser's time zone). */
  until: string;
  /** A job id or part of the job name. */
  search: string;
}

const FILTER_NAMES = ['status', 'site', 'group', 'since', 'until', 'search'] as const;

function filtersOf(url: URL): Filters {
  const get = (k: string) => (url.searchParams.get(k) ?? '').trim();
  return { status: get('status'), site: get('site'), group: get('group'), since: get('since'), until: get('until'), search: get('search') };
}

/** Midnight (local) starting day `d` (YYYY-MM-DD), or null when `d` is not such a day. */
function dayStart(d: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(d);
  if (!m) return null;
  const t = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  // new Date(2026, 1, 31) rolls over to March: such a day does not exist.
  return t.getMonth() === Number(m[2]) - 1 && t.getDate() === Number(m[3]) ? t : null;
}

/**
 * The query parameters of GET /api/jobs and /api/jobs/summary for `f` (days become instants:
 * `since` the start of its day, `until` the end of its day), or the problem with them.
 */
function apiFilters(f: Filters): { params: Record<string, string | undefined>; problem: string | null } {
  const since = f.since ? dayStart(f.since) : null;
  const untilStart = f.until ? dayStart(f.until) : null;
  let problem: string | null = null;
  if (f.since && !since) problem = `Submitted from: "${f.since}" is not a date (YYYY-MM-DD)`;
  else if (f.until && !untilStart) problem = `Submitted until: "${f.until}" is not a date (YYYY-MM-DD)`;
  else if (f.status && !(JOB_STATES as readonly string[]).includes(f.status)) problem = `Status: "${f.status}" is not a job status`;
  else if (f.search.length > 256) problem = 'Search: at most 256 characters';
  else if (since && untilStart && since > untilStart) problem = 'Submitted from is after Submitted until';
  const until = untilStart ? new Date(untilStart.getFullYear(), untilStart.getMonth(), untilStart.getDate() + 1, 0, 0, 0, -1) : null;
  return {
    params: {
      site: f.site || undefined,
      group: f.group || undefined,
      since: since?.toISOString(),
      until: until?.toISOString(),
      search: f.search || undefined,
    },
    problem,
  };
}

function jobsPath(f: Partial<Filters>, offset?: number): string {
  const params: Record<string, string | number | undefined> = {};
  for (const k of FILTER_NAMES) params[k] = f[k];
  params.offset = offset || undefined;
  return `/jobs${query(params)}`;
}

/**
 * The jobs table: counts by status, filters (status, site, job group, submission days, a job id
 * or part of its name) and paging, all kept in the address. The counts follow every filter but
 * the status (they are the status choices). Live from the event stream (the caller's jobs, every
 * job for admins); polls every 2 s without it.
 */
export function JobsPage({ url, me = null }: { url: URL; me?: Identity | null }) {
  const f = filtersOf(url);
  const offset = Math.max(0, Number(url.searchParams.get('offset') ?? 0) || 0);
  const { params, problem } = apiFilters(f);
  const key = JSON.stringify([f, offset]);

  const stream = useEvents(me ? { jobs: me.role === 'admin' ? 'all' : 'mine' } : null, () => refresh());
  const every = stream === 'live' ? LIVE_POLL_MS : 2000;
  const guarded =
    <T,>(load: () => Promise<T>) =>
    () =>
      problem ? Promise.reject(new Error(problem)) : load();
  const summary = usePolled(
    guarded(() => api<JobCounts>('GET', `/api/jobs/summary${query(params)}`)),
    [key],
    every,
  );
  const list = usePolled(
    guarded(() => api<JobList>('GET', `/api/jobs${query({ status: f.status || undefined, ...params, limit: PAGE, offset })}`)),
    [key],
    every,
  );
  const sites = usePolled(() => api<QueueList>('GET', '/api/sites'), []);
  const refresh = useThrottled(() => {
    summary.reload();
    list.reload();
  }, 500);
  const siteNames = [...new Set((sites.data?.queues ?? []).map((q) => q.site))].sort();
  const filtered = FILTER_NAMES.some((k) => f[k] !== '');
  const total = list.data?.total ?? 0;

  const apply = (form: HTMLFormElement) => {
    const d = new FormData(form);
    const next = {} as Filters;
    for (const k of FILTER_NAMES) next[k] = String(d.get(k) ?? '').trim();
    navigate(jobsPath(next));
  };

  return (
    <section>
      <h1>
        Jobs{' '}
        <small class={`stream stream-${stream}`} data-testid="stream">
          {streamLabel(stream)}
        </small>
      </h1>
      <ul class="counts" data-testid="counts">
        <li>
          <a href={jobsPath({ ...f, status: '' })} onClick={onLinkClick}>
            All <b>{summary.data?.total ?? '…'}</b>
          </a>
        </li>
        {Object.entries(summary.data?.counts ?? {}).map(([s, n]) => (
          <li key={s}>
            <a href={jobsPath({ ...f, status: s })} onClick={onLinkClick} class={`status-${s}`}>
              {s} <b>{n}</b>
            </a>
          </li>
        ))}
      </ul>
      {/* key: a new address (back, a count link) resets what was typed but not applied */}
      <form
        key={url.search}
        class="filters"
        data-testid="job-filters"
        onSubmit={(e) => {
          e.preventDefault();
          apply(e.currentTarget);
        }}
      >
        <label>
          Status{' '}
          <select name="status" value={f.status} onChange={(e) => e.currentTarget.form && apply(e.currentTarget.form)}>
            <option value="">any</option>
            {JOB_STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Site <input name="site" defaultValue={f.site} list="job-filter-sites" size={14} />
        </label>
        <datalist id="job-filter-sites">
          {siteNames.map((s) => (
            <option key={s} value={s} />
          ))}
        </datalist>
        <label>
          Job group <input name="group" defaultValue={f.group} size={14} />
        </label>
        <label>
          Submitted from <input type="date" name="since" defaultValue={f.since} />
        </label>
        <label>
          Submitted until <input type="date" name="until" defaultValue={f.until} />
        </label>
        <label>
          Search <input type="search" name="search" defaultValue={f.search} maxLength={256} placeholder="job id or name" size={18} />
        </label>
        <button type="submit">Filter</button>
        {filtered && (
          <a href="/jobs" onClick={onLinkClick}>
            Clear filters
          </a>
        )}
      </form>
      {list.error &&
        (isRefusal(list.error) ? (
          <Refused what="The job list" />
        ) : (
          <p class="error" role="alert">
            {list.error.message}
          </p>
        ))}
      <table data-testid="jobs">
        <thead>
          <tr>
            <th>Id</th>
            <th>Name</th>
            <th>Group</th>
            <th>Status</th>
            <th>Minor status</th>
            <th>Site</th>
            <th>Owner</th>
            <th>Submitted</th>
          </tr>
        </thead>
        <tbody>
          {(problem ? [] : (list.data?.jobs ?? [])).map((j) => (
            <tr key={j.id}>
              <td>
                <a href={`/jobs/${j.id}`} onClick={onLinkClick}>
                  {j.id}
                </a>
              </td>
              <td>{j.jobName}</td>
              <td>{j.jobGroup}</td>
              <td class={`status-${j.status}`}>{j.status}</td>
              <td>{j.minorStatus}</td>
              <td>{j.site}</td>
              <td>{j.owner}</td>
              <td>{new Date(j.submittedAt).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!problem && list.data && total === 0 && <p>{filtered ? 'No jobs match these filters.' : 'No jobs.'}</p>}
      <nav class="pager">
        <button type="button" disabled={offset === 0} onClick={() => navigate(jobsPath(f, Math.max(0, offset - PAGE)))}>
          Previous
        </button>
        <span>
          {total === 0 ? '0' : `${offset + 1}–${Math.min(offset + PAGE, total)}`} of {total}
        </span>
        <button type="button" disabled={offset + PAGE >= total} onClick={() => navigate(jobsPath(f, offset + PAGE))}>
          Next
        </button>
      </nav>
    </section>
  );
}
