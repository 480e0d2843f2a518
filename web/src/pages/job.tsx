import { useState } from 'preact/hooks';
import type {
  BulkResult,
  ExplainJob,
  HeartbeatEntry,
  JobDetail,
  JobHeartbeats,
  JobHistory,
  JobOutput,
  JobParameters,
} from '../../../api/index.js';
import { api, ApiError, downloadFile } from '../api.js';
import { LIVE_POLL_MS, streamLabel, useEvents, useThrottled } from '../events.js';
import { usePolled } from '../hooks.js';
import { navigate, onLinkClick } from '../router.js';
import { isFinal, isJobState, type JobState } from '../../../core/job-states.js';
import { isRefusal, Refused } from '../roles.js';
import { WhyWaiting } from './job-explain.js';
import { GroupLink, PilotLink, SiteLink } from '../links.js';
import { duration, Time } from '../time.js';

/**
 * How often a Waiting job's explanation is read again while the event stream is live: site
 * events (bans, pauses) reload it at once, but pilots filling or leaving a queue make none.
 */
const EXPLAIN_LIVE_MS = 5000;

/** The job parameter where the watchdog keeps the last lines of the job's stdout. */
const STDOUT_PARAMETER = 'StandardOutput';

/** A plain-SVG sparkline of `values` over `times` (ms), from 0 to the largest value. */
function Sparkline({ times, values, label, unit }: { times: number[]; values: number[]; label: string; unit: string }) {
  const w = 240;
  const h = 48;
  const pad = 3;
  const t0 = times[0] ?? 0;
  const span = Math.max(1, (times[times.length - 1] ?? 0) - t0);
  const top = Math.max(...values, 0) || 1;
  const x = (t: number) => pad + ((t - t0) / span) * (w - 2 * pad);
  const y = (v: number) => h - pad - (Math.max(0, v) / top) * (h - 2 * pad);
  const points = values.map((v, i) => `${x(times[i] ?? t0).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const last = values[values.length - 1] ?? 0;
  return (
    <svg
      class="sparkline"
      width={w}
      height={h}
      viewBox={`0 0 ${w} ${h}`}
      role="img"
      aria-label={`${label}: ${values.length} heartbeats, last ${last} ${unit}, most ${top} ${unit}`}
    >
      <title>{`${label}, 0 to ${top} ${unit}`}</title>
      {values.length > 1 && <polyline points={points} />}
      <circle cx={x(times[times.length - 1] ?? t0)} cy={y(last)} r={2.5} />
    </svg>
  );
}

function fixed(n: number | null, digits = 1): string {
  return n === null ? '—' : n.toFixed(digits);
}

/** The job's last heartbeats: the latest figures and sparklines of CPU time and memory. */
function Heartbeats({ beats }: { beats: HeartbeatEntry[] }) {
  const latest = beats[beats.length - 1];
  if (!latest) return <p data-testid="heartbeats">No heartbeats yet.</p>;
  const times = beats.map((b) => Date.parse(b.at));
  return (
    <div class="heartbeats" data-testid="heartbeats">
      <dl class="facts" data-testid="heartbeat-latest">
        <dt>Last heartbeat</dt>
        <dd>
          <Time iso={latest.at} /> ({beats.length} shown)
        </dd>
        <dt>CPU time</dt>
        <dd>{duration(latest.cpuSeconds)}</dd>
        <dt>Wall clock</dt>
        <dd>{duration(latest.wallSeconds)}</dd>
        <dt>Memory (RSS)</dt>
        <dd>{fixed(latest.rssMb)} MB</dd>
        <dt>Disk free</dt>
        <dd>{fixed(latest.diskFreeMb, 0)} MB</dd>
        <dt>Load average</dt>
        <dd>{fixed(latest.loadAverage, 2)}</dd>
      </dl>
      <div class="sparklines">
        {[
          { caption: 'CPU seconds', label: 'CPU seconds', unit: 's', values: beats.map((b) => b.cpuSeconds) },
          { caption: 'Memory (RSS MB)', label: 'Memory (RSS)', unit: 'MB', values: beats.map((b) => b.rssMb) },
        ].map((c) => (
          <figure key={c.label}>
            <figcaption>
              {c.caption} <small>0–{fixed(Math.max(...c.values, 0))}</small>
            </figcaption>
            <Sparkline times={times} values={c.values} label={c.label} unit={c.unit} />
          </figure>
        ))}
      </div>
    </div>
  );
}

/**
 * One job: its state, why it waits while it is Waiting (the explain answer: the queues, what
 * stops each, what the user can do), the status history as a timeline, its last heartbeats
 * (latest figures and sparklines), the last lines of its stdout, parameters, its JDL, and the
 * actions (with "Download output" once it has an output sandbox). Live from the event stream
 * (`/api/events`: this job, and site events for why it waits); while the stream is not open it
 * polls every second instead, so its status changes without a reload either way. Heartbeats are
 * polled every 2 s until the job is final (they make no events).
 */
export function JobPage({ id }: { id: number }) {
  // Site events too: a ban or a pause changes why a Waiting job waits.
  const stream = useEvents({ jobs: [id], sites: true }, (e) => {
    if (e.type === 'job' && e.id === id) refresh();
    else if (e.type === 'site') refreshExplain();
  });
  const live = stream === 'live';
  const job = usePolled(() => api<JobDetail>('GET', `/api/jobs/${id}`), [id], live ? LIVE_POLL_MS : 1000);
  const history = usePolled(() => api<JobHistory>('GET', `/api/jobs/${id}/history`), [id], live ? LIVE_POLL_MS : 1000);
  const params = usePolled(() => api<JobParameters>('GET', `/api/jobs/${id}/parameters`), [id], live ? LIVE_POLL_MS : 3000);
  const status = job.data?.status ?? '';
  const done = isJobState(status) && isFinal(status);
  const waiting = status === 'Waiting';
  const explain = usePolled(
    () => (waiting ? api<ExplainJob>('GET', `/api/jobs/${id}/explain`) : Promise.resolve(null)),
    [id, waiting],
    waiting ? (live ? EXPLAIN_LIVE_MS : 2000) : null,
  );
  const refreshExplain = useThrottled(() => explain.reload(), 500);
  const heartbeats = usePolled(() => api<JobHeartbeats>('GET', `/api/jobs/${id}/heartbeats`), [id, done], done ? null : 2000);
  // Output sandboxes are recorded before the final status: read again when the status changes.
  const output = usePolled(() => api<JobOutput>('GET', `/api/jobs/${id}/output`), [id, status]);
  const [downloading, setDownloading] = useState(false);
  const refresh = useThrottled(() => {
    job.reload();
    history.reload();
    params.reload();
    explain.reload();
  }, 200);
  const [message, setMessage] = useState<string | null>(null);

  const act = async (action: 'kill' | 'reschedule' | 'delete') => {
    // Delete cannot be undone; a reschedule counts against MaxRescheduling and restarts the job.
    if (action === 'delete' && !confirm(`Delete job ${id}?`)) return;
    if (action === 'reschedule' && !confirm(`Reschedule job ${id}? It starts again from the beginning.`)) return;
    setMessage(null);
    try {
      const r = await api<BulkResult>('POST', `/api/jobs/${action}`, { ids: [id] });
      const failed = r.failed[0];
      const skippedAs = (Object.keys(r.skippedByStatus) as JobState[]).find((s) => (r.skippedByStatus as Record<string, number>)[s]! > 0);
      setMessage(
        failed
          ? `${action}: ${failed.message}`
          : r.skipped > 0
            ? `${action}: nothing to do, the job is already ${skippedAs ?? 'final'}`
            : `${action}: done`,
      );
      if (action === 'delete' && !failed) navigate('/jobs');
      job.reload();
      history.reload();
    } catch (e) {
      setMessage(`${action}: ${(e as Error).message}`);
    }
  };

  const download = async () => {
    const sandboxes = output.data?.sandboxes ?? [];
    setMessage(null);
    setDownloading(true);
    try {
      for (const [i, sb] of sandboxes.entries()) {
        await downloadFile(`/api/sandboxes/${sb.sha256}`, `job-${id}-output${i === 0 ? '' : `-${i + 1}`}.tar.gz`);
      }
    } catch (e) {
      setMessage(`download: ${(e as Error).message}`);
    } finally {
      setDownloading(false);
    }
  };

  if (job.error && !job.data) {
    if (isRefusal(job.error)) return <Refused what={`Job ${id}`} />;
    // Another user's job is a 404 like a missing one: the page does not tell them apart either.
    const notFound = job.error instanceof ApiError && job.error.status === 404;
    return (
      <p class="error" role="alert">
        Job {id}: {notFound ? 'not found' : job.error.message}
      </p>
    );
  }
  const j = job.data;
  if (!j) return <p>Loading job {id}…</p>;
  const final = isJobState(j.status) && isFinal(j.status);
  const outputs = output.data?.sandboxes ?? [];
  const { [STDOUT_PARAMETER]: stdout, ...parameters } = params.data?.parameters ?? {};
  return (
    <section>
      <p>
        <a href="/jobs" onClick={onLinkClick}>
          ← Jobs
        </a>
      </p>
      <h1>
        Job {j.id}: {j.jobName}{' '}
        <span class={`badge status-${j.status}`} data-testid="job-status">
          {j.status}
        </span>{' '}
        <small class={`stream stream-${stream}`} data-testid="stream">
          {streamLabel(stream)}
        </small>
      </h1>
      <p class="minor">
        {j.minorStatus}
        {j.applicationStatus && j.applicationStatus !== 'Unknown' ? ` · ${j.applicationStatus}` : ''}
      </p>
      <div class="actions">
        <button type="button" onClick={() => act('kill')} disabled={final}>
          Kill
        </button>
        <button type="button" onClick={() => act('reschedule')}>
          Reschedule
        </button>
        <button type="button" class="danger" onClick={() => act('delete')}>
          Delete
        </button>
        {outputs.length > 0 && (
          <button type="button" onClick={download} disabled={downloading} title={`${outputs.reduce((a, s) => a + s.size, 0)} bytes`}>
            Download output
          </button>
        )}
        {message && <span role="status">{message}</span>}
      </div>
      {j.status === 'Waiting' && (
        <>
          <h2>Why it waits</h2>
          <WhyWaiting answer={explain.data} error={explain.error} />
        </>
      )}
      <dl class="facts">
        <dt>Owner</dt>
        <dd>
          {j.owner} ({j.ownerGroup}, {j.vo})
        </dd>
        <dt>Site</dt>
        <dd>
          <SiteLink site={j.site} testId="job-site" />
        </dd>
        <dt>Group</dt>
        <dd>
          <GroupLink group={j.jobGroup} testId="job-group" />
        </dd>
        <dt>Pilot</dt>
        <dd>{j.pilotId === null ? '—' : <PilotLink id={j.pilotId} testId="job-pilot" />}</dd>
        <dt>CPU time asked</dt>
        <dd>{duration(j.cpuTime)}</dd>
        <dt>Reschedules</dt>
        <dd>{j.rescheduleCounter}</dd>
        <dt>Submitted</dt>
        <dd data-testid="job-submitted">
          <Time iso={j.submittedAt} />
        </dd>
        <dt>Started</dt>
        <dd>
          <Time iso={j.startExecAt} />
        </dd>
        <dt>Ended</dt>
        <dd>
          <Time iso={j.endExecAt} />
        </dd>
        {j.startExecAt && j.endExecAt && (
          <>
            <dt>Ran for</dt>
            <dd>{duration((Date.parse(j.endExecAt) - Date.parse(j.startExecAt)) / 1000)}</dd>
          </>
        )}
        <dt>Last update</dt>
        <dd>
          <Time iso={j.lastUpdateAt} />
        </dd>
      </dl>
      <h2>History</h2>
      <ol class="timeline" data-testid="history">
        {(history.data?.history ?? []).map((h, i) => (
          <li key={i}>
            <Time iso={h.at} />
            <b class={`status-${h.status}`}>{h.status}</b> {h.minorStatus}
            {h.applicationStatus && h.applicationStatus !== 'Unknown' ? ` · ${h.applicationStatus}` : ''}
            <small> ({h.source})</small>
          </li>
        ))}
      </ol>
      <h2>Heartbeats</h2>
      {heartbeats.data ? (
        <Heartbeats beats={heartbeats.data.heartbeats} />
      ) : heartbeats.error ? (
        <p class="error">{heartbeats.error.message}</p>
      ) : (
        <p>Loading…</p>
      )}
      <h2>Standard output (last lines)</h2>
      {stdout !== undefined ? (
        <pre class="log" data-testid="stdout">
          {stdout}
        </pre>
      ) : (
        <p data-testid="stdout">None reported yet.</p>
      )}
      <h2>Parameters</h2>
      {Object.keys(parameters).length > 0 ? (
        <dl class="facts" data-testid="parameters">
          {Object.entries(parameters).map(([k, v]) => [<dt key={`k${k}`}>{k}</dt>, <dd key={`v${k}`}>{v}</dd>])}
        </dl>
      ) : (
        <p>None reported yet.</p>
      )}
      <h2>JDL</h2>
      <pre class="jdl" data-testid="jdl">
        {j.jdl}
      </pre>
    </section>
  );
}
