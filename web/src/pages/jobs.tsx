import { api, type Identity, type JobList } from '../api.js';
import { LIVE_POLL_MS, streamLabel, useEvents, useThrottled } from '../events.js';
import { usePolled } from '../hooks.js';
import { navigate, onLinkClick } from '../router.js';
import { JOB_STATES } from '../../../core/job-states.js';

const PAGE = 25;

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * The jobs table: counts by status, a status filter and paging, kept in the address. Live from
 * the event stream (the caller's jobs, every job for admins); polls every 2 s without it.
 */
export function JobsPage({ url, me = null }: { url: URL; me?: Identity | null }) {
  const status = url.searchParams.get('status') ?? '';
  const offset = Math.max(0, Number(url.searchParams.get('offset') ?? 0) || 0);
  const go = (over: { status?: string; offset?: number }) =>
    navigate(`/jobs${query({ status: over.status ?? status, offset: (over.offset ?? offset) || undefined })}`);

  const stream = useEvents(me ? { jobs: me.role === 'admin' ? 'all' : 'mine' } : null, () => refresh());
  const every = stream === 'live' ? LIVE_POLL_MS : 2000;
  const summary = usePolled(() => api<{ counts: Record<string, number>; total: number }>('GET', '/api/jobs/summary'), [], every);
  const list = usePolled(
    () => api<JobList>('GET', `/api/jobs${query({ status: status || undefined, limit: PAGE, offset })}`),
    [status, offset],
    every,
  );
  const refresh = useThrottled(() => {
    summary.reload();
    list.reload();
  }, 500);
  const total = list.data?.total ?? 0;
  return (
    <section>
      <h1>Jobs <small class={`stream stream-${stream}`} data-testid="stream">{streamLabel(stream)}</small></h1>
      <ul class="counts" data-testid="counts">
        <li><a href="/jobs" onClick={onLinkClick}>All <b>{summary.data?.total ?? '…'}</b></a></li>
        {Object.entries(summary.data?.counts ?? {}).map(([s, n]) => (
          <li key={s}><a href={`/jobs?status=${s}`} onClick={onLinkClick} class={`status-${s}`}>{s} <b>{n}</b></a></li>
        ))}
      </ul>
      <label>
        Status{' '}
        <select value={status} onChange={(e) => go({ status: e.currentTarget.value, offset: 0 })} name="status">
          <option value="">any</option>
          {JOB_STATES.map((s) => <option key={s} value={s}>{s}</option>)}
        </select>
      </label>
      {list.error && <p class="error" role="alert">{list.error.message}</p>}
      <table data-testid="jobs">
        <thead>
          <tr><th>Id</th><th>Name</th><th>Status</th><th>Minor status</th><th>Site</th><th>Owner</th><th>Submitted</th></tr>
        </thead>
        <tbody>
          {(list.data?.jobs ?? []).map((j) => (
            <tr key={j.id}>
              <td><a href={`/jobs/${j.id}`} onClick={onLinkClick}>{j.id}</a></td>
              <td>{j.jobName}</td>
              <td class={`status-${j.status}`}>{j.status}</td>
              <td>{j.minorStatus}</td>
              <td>{j.site}</td>
              <td>{j.owner}</td>
              <td>{new Date(j.submittedAt).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data && total === 0 && <p>No jobs.</p>}
      <nav class="pager">
        <button type="button" disabled={offset === 0} onClick={() => go({ offset: Math.max(0, offset - PAGE) })}>Previous</button>
        <span>{total === 0 ? '0' : `${offset + 1}–${Math.min(offset + PAGE, total)}`} of {total}</span>
        <button type="button" disabled={offset + PAGE >= total} onClick={() => go({ offset: offset + PAGE })}>Next</button>
      </nav>
    </section>
  );
}
