import { useState } from 'preact/hooks';
import { api, ApiError, type BulkResult, type HistoryEntry, type JobDetail } from '../api.js';
import { LIVE_POLL_MS, streamLabel, useEvents, useThrottled } from '../events.js';
import { usePolled } from '../hooks.js';
import { navigate, onLinkClick } from '../router.js';
import { isFinal, isJobState } from '../../../core/job-states.js';

/**
 * One job: its state, the status history as a timeline, parameters, its JDL, and the actions.
 * Live from the event stream (`/api/events`, this job); while the stream is not open it polls
 * every second instead, so its status changes without a reload either way.
 */
export function JobPage({ id }: { id: number }) {
  const stream = useEvents({ jobs: [id] }, (e) => {
    if (e.type === 'job' && e.id === id) refresh();
  });
  const live = stream === 'live';
  const job = usePolled(() => api<JobDetail>('GET', `/api/jobs/${id}`), [id], live ? LIVE_POLL_MS : 1000);
  const history = usePolled(() => api<{ history: HistoryEntry[] }>('GET', `/api/jobs/${id}/history`), [id], live ? LIVE_POLL_MS : 1000);
  const params = usePolled(() => api<{ parameters: Record<string, string> }>('GET', `/api/jobs/${id}/parameters`), [id], live ? LIVE_POLL_MS : 3000);
  const refresh = useThrottled(() => {
    job.reload();
    history.reload();
    params.reload();
  }, 200);
  const [message, setMessage] = useState<string | null>(null);

  const act = async (action: 'kill' | 'reschedule' | 'delete') => {
    if (action === 'delete' && !confirm(`Delete job ${id}?`)) return;
    setMessage(null);
    try {
      const r = await api<BulkResult>('POST', `/api/jobs/${action}`, { ids: [id] });
      const failed = r.failed[0];
      setMessage(failed ? `${action}: ${failed.message}` : `${action}: done`);
      if (action === 'delete' && !failed) navigate('/jobs');
      job.reload();
      history.reload();
    } catch (e) {
      setMessage(`${action}: ${(e as Error).message}`);
    }
  };

  if (job.error && !job.data) {
    // Another user's job is a 404 like a missing one: the page does not tell them apart either.
    const notFound = job.error instanceof ApiError && job.error.status === 404;
    return <p class="error" role="alert">Job {id}: {notFound ? 'not found' : job.error.message}</p>;
  }
  const j = job.data;
  if (!j) return <p>Loading job {id}…</p>;
  const final = isJobState(j.status) && isFinal(j.status);
  return (
    <section>
      <p><a href="/jobs" onClick={onLinkClick}>← Jobs</a></p>
      <h1>
        Job {j.id}: {j.jobName} <span class={`badge status-${j.status}`} data-testid="job-status">{j.status}</span>{' '}
        <small class={`stream stream-${stream}`} data-testid="stream">{streamLabel(stream)}</small>
      </h1>
      <p class="minor">{j.minorStatus}{j.applicationStatus && j.applicationStatus !== 'Unknown' ? ` · ${j.applicationStatus}` : ''}</p>
      <div class="actions">
        <button type="button" onClick={() => act('kill')} disabled={final}>Kill</button>
        <button type="button" onClick={() => act('reschedule')}>Reschedule</button>
        <button type="button" class="danger" onClick={() => act('delete')}>Delete</button>
        {message && <span role="status">{message}</span>}
      </div>
      <dl class="facts">
        <dt>Owner</dt><dd>{j.owner} ({j.ownerGroup}, {j.vo})</dd>
        <dt>Site</dt><dd>{j.site}</dd>
        <dt>Group</dt><dd>{j.jobGroup}</dd>
        <dt>Pilot</dt><dd>{j.pilotId ?? '—'}</dd>
        <dt>Reschedules</dt><dd>{j.rescheduleCounter}</dd>
        <dt>Submitted</dt><dd>{new Date(j.submittedAt).toLocaleString()}</dd>
      </dl>
      <h2>History</h2>
      <ol class="timeline" data-testid="history">
        {(history.data?.history ?? []).map((h, i) => (
          <li key={i}>
            <time dateTime={h.at}>{new Date(h.at).toLocaleTimeString()}</time>
            <b class={`status-${h.status}`}>{h.status}</b> {h.minorStatus}
            {h.applicationStatus && h.applicationStatus !== 'Unknown' ? ` · ${h.applicationStatus}` : ''}
            <small> ({h.source})</small>
          </li>
        ))}
      </ol>
      <h2>Parameters</h2>
      {params.data && Object.keys(params.data.parameters).length > 0 ? (
        <dl class="facts" data-testid="parameters">
          {Object.entries(params.data.parameters).map(([k, v]) => [<dt key={`k${k}`}>{k}</dt>, <dd key={`v${k}`}>{v}</dd>])}
        </dl>
      ) : (
        <p>None reported yet.</p>
      )}
      <h2>JDL</h2>
      <pre class="jdl" data-testid="jdl">{j.jdl}</pre>
    </section>
  );
}
