import type { PilotDetail, PilotLog } from '../../../api/index.js';
import { api } from '../api.js';
import { useEvents, useThrottled, LIVE_POLL_MS } from '../events.js';
import { usePolled } from '../hooks.js';
import { onLinkClick } from '../router.js';
import { isPilotFinal } from '../../../core/pilot-states.js';

function text(v: unknown): string {
  if (v === undefined || v === null || v === '') return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function mb(v: unknown): string {
  return typeof v === 'number' ? `${Math.round(v).toLocaleString()} MB` : text(v);
}

/**
 * One pilot (by id, stamp or CE reference): status and reason, the environment report it
 * registered with (OS, CPU, cores, memory, work dir and its file system, disk free, node,
 * batch system), clock offset, DB12, jobs run, and its remote log. Live while not final.
 */
export function PilotPage({ pilotRef }: { pilotRef: string }) {
  const stream = useEvents({ pilots: true }, (e) => {
    if (e.type === 'pilot' && String(e.id) === pilotRef) reload();
  });
  const pilot = usePolled(
    () => api<PilotDetail>('GET', `/api/pilots/${encodeURIComponent(pilotRef)}`),
    [pilotRef],
    stream === 'live' ? LIVE_POLL_MS : 2000,
  );
  const final = pilot.data ? isPilotFinal(pilot.data.status) : false;
  const logs = usePolled(
    () => api<PilotLog>('GET', `/api/pilots/${encodeURIComponent(pilotRef)}/logs?limit=5000`),
    [pilotRef],
    final ? null : 2000,
  );
  const reload = useThrottled(() => {
    pilot.reload();
    logs.reload();
  }, 500);

  if (pilot.error && !pilot.data)
    return (
      <p class="error" role="alert">
        Pilot {pilotRef}: {pilot.error.message}
      </p>
    );
  const p = pilot.data;
  if (!p) return <p>Loading pilot {pilotRef}…</p>;
  const env = p.environment;
  const db12 = env.db12 as { value?: number } | undefined;
  return (
    <section>
      <p>
        <a href="/pilots" onClick={onLinkClick}>
          ← Pilots
        </a>
      </p>
      <h1>
        Pilot {p.id}{' '}
        <span class={`badge pilot-${p.status}`} data-testid="pilot-status">
          {p.status}
        </span>
      </h1>
      <p class="minor" data-testid="pilot-reason">
        {p.statusReason}
      </p>
      <dl class="facts" data-testid="pilot-facts">
        <dt>Site</dt>
        <dd>{p.site}</dd>
        <dt>CE / queue</dt>
        <dd>
          {p.ce} ({p.ceType}) / {p.queue}
        </dd>
        <dt>VO</dt>
        <dd>{p.vo}</dd>
        <dt>Stamp</dt>
        <dd>{p.stamp}</dd>
        <dt>CE reference</dt>
        <dd>{p.reference ?? '—'}</dd>
        <dt>Jobs run</dt>
        <dd data-testid="jobs-run">{p.jobsRun}</dd>
        <dt>Current job</dt>
        <dd>
          {p.currentJobId ? (
            <a href={`/jobs/${p.currentJobId}`} onClick={onLinkClick}>
              {p.currentJobId}
            </a>
          ) : (
            '—'
          )}
        </dd>
        <dt>Exit code</dt>
        <dd>{p.exitCode ?? '—'}</dd>
        <dt>Created</dt>
        <dd>{new Date(p.createdAt).toLocaleString()}</dd>
        <dt>Last update</dt>
        <dd>{new Date(p.lastUpdateAt).toLocaleString()}</dd>
      </dl>
      <h2>Environment</h2>
      {Object.keys(env).length === 0 ? (
        <p>Not registered yet.</p>
      ) : (
        <dl class="facts" data-testid="environment">
          <dt>Host</dt>
          <dd>{text(env.hostname)}</dd>
          <dt>OS</dt>
          <dd>
            {text(env.os)} (kernel {text(env.kernel)})
          </dd>
          <dt>CPU</dt>
          <dd>{text(env.cpuModel)}</dd>
          <dt>Cores</dt>
          <dd>{text(env.cores)}</dd>
          <dt>Memory</dt>
          <dd>{mb(env.memoryMb)}</dd>
          <dt>Work dir</dt>
          <dd>{text(env.workDir ?? p.workDir)}</dd>
          <dt>File system</dt>
          <dd>{text(env.fsType ?? p.fsType)}</dd>
          <dt>Disk free</dt>
          <dd>{mb(env.diskFreeMb)}</dd>
          <dt>GPUs</dt>
          <dd>{Array.isArray(env.gpus) && env.gpus.length ? env.gpus.join(', ') : 'none'}</dd>
          <dt>Clock offset</dt>
          <dd>{p.clockOffsetSeconds === null ? '—' : `${p.clockOffsetSeconds.toFixed(3)} s`}</dd>
          <dt>DB12</dt>
          <dd>
            {p.benchmark === null ? '—' : p.benchmark.toFixed(2)}
            {db12 && typeof db12 === 'object' ? <small> {JSON.stringify(db12)}</small> : null}
          </dd>
          <dt>Node</dt>
          <dd>{text(env.nodeVersion)}</dd>
          <dt>Batch system</dt>
          <dd>
            {text(env.batchSystem)}
            {env.batchJobId ? ` (job ${text(env.batchJobId)})` : ''}
          </dd>
        </dl>
      )}
      <h2>Remote log</h2>
      {logs.error && !logs.data && <p class="error">{logs.error.message}</p>}
      <pre class="log" data-testid="pilot-log">
        {/* Each line starts with the pilot's own UTC timestamp. */}
        {(logs.data?.lines ?? []).map((l) => `${l.line}\n`).join('') || 'No log lines yet.'}
      </pre>
    </section>
  );
}
