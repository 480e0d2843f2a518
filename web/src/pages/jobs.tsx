import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { Identity, JobCounts, JobList, JobSortColumn, JobSortOrder, JobSummary, QueueList } from '../../../api/index.js';
import { api } from '../api.js';
import { LIVE_POLL_MS, streamLabel, useEvents, useThrottled } from '../events.js';
import { usePolled } from '../hooks.js';
import { navigate, onLinkClick } from '../router.js';
import { isJobState, JOB_STATES, RUNNING_STATES } from '../../../core/job-states.js';
import { isRefusal, Refused } from '../roles.js';
import { GroupLink, JobLink, SiteLink } from '../links.js';
import { duration, Time } from '../time.js';
import { EXPORT_MAX_JOBS, exportFile, exportFileName, fetchAllJobs, saveText, type ExportFormat } from '../job-export.js';
import { BulkActions, jobCount, type BulkTarget } from './job-bulk.js';
import './jobs.css';

/** The page sizes offered; the first is the default. */
const PAGE_SIZES = [25, 50, 100, 200] as const;

/** The headers that sort the table, by the column GET /api/jobs sorts by (every one of them). */
const SORT_LABELS = { id: 'Id', group: 'Group', status: 'Status', site: 'Site', owner: 'Owner' } satisfies Record<JobSortColumn, string>;

/** The table's order when the address names none: newest first, as the API lists. */
const DEFAULT_SORT: Sort = { column: 'id', order: 'desc' };

interface Sort {
  column: JobSortColumn;
  order: JobSortOrder;
}

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
  /** Another user's jobs (admins only; the field is not shown to users). */
  owner: string;
  /** Submitted on or after this day (YYYY-MM-DD, the browser's time zone). */
  since: string;
  /** Submitted on or before this day (YYYY-MM-DD, the browser's time zone). */
  until: string;
  /** A job id or part of the job name. */
  search: string;
}

const FILTER_NAMES = ['status', 'site', 'group', 'owner', 'since', 'until', 'search'] as const;

/** How the table is shown, as the address holds it (`sort`, `order`, `size`; empty: the default). */
interface View {
  sort: string;
  order: string;
  size: string;
}

const VIEW_NAMES = ['sort', 'order', 'size'] as const;

function filtersOf(url: URL): Filters {
  const get = (k: string) => (url.searchParams.get(k) ?? '').trim();
  return Object.fromEntries(FILTER_NAMES.map((k) => [k, get(k)])) as unknown as Filters;
}

function viewOf(url: URL): View {
  const get = (k: string) => (url.searchParams.get(k) ?? '').trim();
  return { sort: get('sort'), order: get('order'), size: get('size') };
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
  else if (f.status && !isJobState(f.status)) problem = `Status: "${f.status}" is not a job status`;
  else if (f.search.length > 256) problem = 'Search: at most 256 characters';
  else if (since && untilStart && since > untilStart) problem = 'Submitted from is after Submitted until';
  const until = untilStart ? new Date(untilStart.getFullYear(), untilStart.getMonth(), untilStart.getDate() + 1, 0, 0, 0, -1) : null;
  return {
    params: {
      site: f.site || undefined,
      group: f.group || undefined,
      owner: f.owner || undefined,
      since: since?.toISOString(),
      until: until?.toISOString(),
      search: f.search || undefined,
    },
    problem,
  };
}

/** The sort and page size `v` asks for, or the problem with them. */
function readView(v: View): { sort: Sort; size: number; problem: string | null } {
  const column = (v.sort || DEFAULT_SORT.column) as JobSortColumn;
  const order = (v.order || (column === 'id' ? 'desc' : 'asc')) as JobSortOrder;
  const size = v.size ? Number(v.size) : PAGE_SIZES[0];
  let problem: string | null = null;
  if (!Object.hasOwn(SORT_LABELS, column))
    problem = `Sort: "${v.sort}" is not a column to sort by (${Object.keys(SORT_LABELS).join(', ')})`;
  else if (order !== 'asc' && order !== 'desc') problem = `Order: "${v.order}" is neither asc nor desc`;
  else if (!(PAGE_SIZES as readonly number[]).includes(size)) problem = `Per page: "${v.size}" is not one of ${PAGE_SIZES.join(', ')}`;
  return { sort: { column, order }, size, problem };
}

/** The view that sorts by `column`: the other direction when it already does, else its default. */
function sortedBy(v: View, current: Sort, column: JobSortColumn): View {
  const order = current.column === column ? (current.order === 'asc' ? 'desc' : 'asc') : column === 'id' ? 'desc' : 'asc';
  const isDefault = column === DEFAULT_SORT.column && order === DEFAULT_SORT.order;
  return { ...v, sort: isDefault ? '' : column, order: isDefault ? '' : order };
}

function jobsPath(f: Partial<Filters>, v: View, offset?: number): string {
  const params: Record<string, string | number | undefined> = {};
  for (const k of FILTER_NAMES) params[k] = f[k];
  for (const k of VIEW_NAMES) params[k] = v[k];
  params.offset = offset || undefined;
  return `/jobs${query(params)}`;
}

/**
 * How long the job ran: from its start to its end (one that no longer runs but has no end: to
 * its last update), or to now while a pilot holds it; `—` before it started.
 */
function runTime(j: JobSummary): string {
  if (!j.startExecAt) return '—';
  const end = j.endExecAt ?? (RUNNING_STATES.includes(j.status) ? null : j.lastUpdateAt);
  return duration(((end === null ? Date.now() : Date.parse(end)) - Date.parse(j.startExecAt)) / 1000);
}

/**
 * A header that sorts the table by `column` (again: the other way), saying how it is sorted;
 * `children` come before its button (the Id header's "select the page" box).
 */
function SortHeader(props: { column: JobSortColumn; sort: Sort; onSort: (c: JobSortColumn) => void; children?: ComponentChildren }) {
  const { column, sort, onSort, children } = props;
  const active = sort.column === column;
  return (
    <th aria-sort={active ? (sort.order === 'asc' ? 'ascending' : 'descending') : undefined}>
      {children}
      <button type="button" class="sort" onClick={() => onSort(column)}>
        {SORT_LABELS[column]}
        {active && <span aria-hidden="true">{sort.order === 'asc' ? ' ▲' : ' ▼'}</span>}
      </button>
    </th>
  );
}

/** The rows chosen for a bulk action, for one set of filters (`key`): ids, or all that match. */
interface Selection {
  key: string;
  ids: ReadonlySet<number>;
  all: boolean;
}

/**
 * The jobs table: counts by status, filters (status, site, job group, owner for admins,
 * submission days, a job id or part of its name), sortable columns, paging with a page size,
 * all kept in the address; export of every matching job as CSV or JSON; rows (or every job
 * matching the filters) selected for Kill, Reschedule or Delete, each confirmed with the counts
 * of a dry run. The counts follow every filter but the status (they are the status choices).
 * Live from the event stream (the caller's jobs, every job for admins); polls every 2 s without it.
 */
export function JobsPage({ url, me = null }: { url: URL; me?: Identity | null }) {
  const f = filtersOf(url);
  const v = viewOf(url);
  const offset = Math.max(0, Number(url.searchParams.get('offset') ?? 0) || 0);
  const { params, problem: filterProblem } = apiFilters(f);
  const { sort, size, problem: viewProblem } = readView(v);
  const problem = filterProblem ?? viewProblem;
  const sortParams = v.sort || v.order ? { sort: sort.column, order: sort.order } : {};
  const listParams = { status: f.status || undefined, ...params, ...sortParams };
  const listPath = (page: { limit: number; offset: number }) => `/api/jobs${query({ ...listParams, ...page })}`;
  const key = JSON.stringify([f, v, offset]);
  const filterKey = JSON.stringify(f);
  const isAdmin = me?.role === 'admin';

  const [selection, setSelection] = useState<Selection>({ key: filterKey, ids: new Set(), all: false });
  const selected: Selection = selection.key === filterKey ? selection : { key: filterKey, ids: new Set(), all: false };
  const [exporting, setExporting] = useState<string | null>(null);
  const [exportNote, setExportNote] = useState<string | null>(null);

  const stream = useEvents(me ? { jobs: isAdmin ? 'all' : 'mine' } : null, () => refresh());
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
    guarded(() => api<JobList>('GET', listPath({ limit: size, offset }))),
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
  const pageSize = list.data?.limit ?? size;
  const rows = problem ? [] : (list.data?.jobs ?? []);

  const apply = (form: HTMLFormElement) => {
    const d = new FormData(form);
    const next = {} as Filters;
    for (const k of FILTER_NAMES) next[k] = String(d.get(k) ?? '').trim();
    navigate(jobsPath(next, v));
  };

  const onSort = (column: JobSortColumn) => navigate(jobsPath(f, sortedBy(v, sort, column)));
  const setSize = (n: string) => navigate(jobsPath(f, { ...v, size: n === String(PAGE_SIZES[0]) ? '' : n }));

  const select = (ids: number[], on: boolean) => {
    const next = new Set(selected.ids);
    for (const id of ids) {
      if (on) next.add(id);
      else next.delete(id);
    }
    setSelection({ key: filterKey, ids: next, all: false });
  };
  const clearSelection = () => setSelection({ key: filterKey, ids: new Set(), all: false });
  const pageSelected = rows.length > 0 && (selected.all || rows.every((j) => selected.ids.has(j.id)));
  const target: BulkTarget | null = selected.all
    ? { filter: { ...(isJobState(f.status) ? { status: [f.status] } : {}), ...params } }
    : selected.ids.size > 0
      ? { ids: [...selected.ids] }
      : null;
  const selectedLabel = selected.all
    ? `All ${jobCount(total)} matching the filters selected`
    : selected.ids.size > 0
      ? `${selected.ids.size} selected`
      : 'Select jobs to act on them';

  const exportAs = async (format: ExportFormat) => {
    setExporting('Exporting…');
    setExportNote(null);
    try {
      const { jobs, total: all } = await fetchAllJobs(listPath, (done, of) =>
        setExporting(`Exporting… ${done} of ${Math.min(of, EXPORT_MAX_JOBS)}`),
      );
      const file = exportFile(jobs, format);
      saveText(file.text, exportFileName(format), file.type);
      setExportNote(
        all > jobs.length
          ? `Exported the first ${jobs.length} of ${all} jobs (an export holds at most ${EXPORT_MAX_JOBS}): narrow the filters for the rest.`
          : `Exported ${jobCount(jobs.length)}.`,
      );
    } catch (e) {
      setExportNote(`Export failed: ${(e as Error).message}`);
    } finally {
      setExporting(null);
    }
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
          <a href={jobsPath({ ...f, status: '' }, v)} onClick={onLinkClick}>
            All <b>{summary.data?.total ?? '…'}</b>
          </a>
        </li>
        {Object.entries(summary.data?.counts ?? {}).map(([s, n]) => (
          <li key={s}>
            <a href={jobsPath({ ...f, status: s }, v)} onClick={onLinkClick} class={`status-${s}`}>
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
        {isAdmin && (
          <label>
            Owner <input name="owner" defaultValue={f.owner} size={12} placeholder="any user" />
          </label>
        )}
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
          <a href={jobsPath({}, v)} onClick={onLinkClick}>
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
      <BulkActions target={target} label={selectedLabel} onDone={() => (clearSelection(), refresh())} />
      {pageSelected && !selected.all && total > rows.length && (
        <p data-testid="select-all">
          All {jobCount(rows.length)} on this page are selected.{' '}
          <button type="button" class="small" onClick={() => setSelection({ key: filterKey, ids: new Set(), all: true })}>
            Select all {jobCount(total)} matching the filters
          </button>
        </p>
      )}
      {selected.all && (
        <p data-testid="select-all">
          All {jobCount(total)} matching the filters are selected.{' '}
          <button type="button" class="small" onClick={clearSelection}>
            Clear selection
          </button>
        </p>
      )}
      <div class="table-scroll">
        <table class="jobs-table" data-testid="jobs">
          <thead>
            <tr>
              <SortHeader column="id" sort={sort} onSort={onSort}>
                <input
                  type="checkbox"
                  class="pick"
                  aria-label="Select the jobs of this page"
                  checked={pageSelected}
                  disabled={rows.length === 0 || selected.all}
                  onChange={(e) =>
                    select(
                      rows.map((j) => j.id),
                      e.currentTarget.checked,
                    )
                  }
                />
              </SortHeader>
              <th>Name</th>
              <SortHeader column="group" sort={sort} onSort={onSort} />
              <SortHeader column="status" sort={sort} onSort={onSort} />
              <th>Minor status</th>
              <th title="what the application reported: the exit code of a payload that failed">Application status</th>
              <SortHeader column="site" sort={sort} onSort={onSort} />
              <SortHeader column="owner" sort={sort} onSort={onSort} />
              <th>Submitted</th>
              <th>Started</th>
              <th>Last update</th>
              <th>Duration</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((j) => (
              <tr key={j.id}>
                <td>
                  <input
                    type="checkbox"
                    class="pick"
                    aria-label={`Select job ${j.id}`}
                    checked={selected.all || selected.ids.has(j.id)}
                    disabled={selected.all}
                    onChange={(e) => select([j.id], e.currentTarget.checked)}
                  />
                  <JobLink id={j.id} />
                </td>
                <td>{j.jobName}</td>
                <td>
                  <GroupLink group={j.jobGroup} />
                </td>
                <td class={`status-${j.status}`}>{j.status}</td>
                <td>{j.minorStatus}</td>
                <td>{j.applicationStatus}</td>
                <td>
                  <SiteLink site={j.site} />
                </td>
                <td>{j.owner}</td>
                <td>
                  <Time iso={j.submittedAt} />
                </td>
                <td>
                  <Time iso={j.startExecAt} />
                </td>
                <td>
                  <Time iso={j.lastUpdateAt} />
                </td>
                <td>{runTime(j)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {!problem && list.data && total === 0 && <p>{filtered ? 'No jobs match these filters.' : 'No jobs.'}</p>}
      <nav class="pager">
        <button type="button" disabled={offset === 0} onClick={() => navigate(jobsPath(f, v, Math.max(0, offset - pageSize)))}>
          Previous
        </button>
        <span>
          {total === 0 ? '0' : `${offset + 1}–${Math.min(offset + pageSize, total)}`} of {total}
        </span>
        <button type="button" disabled={offset + pageSize >= total} onClick={() => navigate(jobsPath(f, v, offset + pageSize))}>
          Next
        </button>
        <label>
          Per page{' '}
          <select value={String(size)} onChange={(e) => setSize(e.currentTarget.value)}>
            {PAGE_SIZES.map((n) => (
              <option key={n} value={String(n)}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <button type="button" disabled={exporting !== null || problem !== null || total === 0} onClick={() => exportAs('csv')}>
          Export CSV
        </button>
        <button type="button" disabled={exporting !== null || problem !== null || total === 0} onClick={() => exportAs('json')}>
          Export JSON
        </button>
        {(exporting ?? exportNote) && (
          <span role="status" data-testid="export-note">
            {exporting ?? exportNote}
          </span>
        )}
      </nav>
    </section>
  );
}
