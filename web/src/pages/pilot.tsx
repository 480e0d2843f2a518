import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { JobList, PilotDetail, PilotLog, PilotLogLine } from '../../../api/index.js';
import { api } from '../api.js';
import { useEvents, useThrottled, LIVE_POLL_MS } from '../events.js';
import { usePolled } from '../hooks.js';
import { isRefusal, Refused } from '../roles.js';
import { onLinkClick } from '../router.js';
import { isPilotFinal } from '../../../core/pilot-states.js';
import { CeLink, JobLink, jobsHref, Link, pilotsHref, SiteLink, useMayOpen } from '../links.js';
import { Time } from '../time.js';

function text(v: unknown): string {
  if (v === undefined || v === null || v === '') return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function mb(v: unknown): string {
  return typeof v === 'number' ? `${Math.round(v).toLocaleString()} MB` : text(v);
}

/** The lines of the log the page keeps and shows: its end. */
const TAIL_LINES = 2000;
/** Lines per request while reading up to the end (the most the route answers). */
const LOG_PAGE = 10_000;
/** How often a live pilot's log is asked for new lines. */
const LOG_POLL_MS = 2000;

interface LogTail {
  /** The last lines read, at most TAIL_LINES. */
  lines: PilotLogLine[];
  /** Lines before them that are not shown. */
  earlier: number;
  /** Set once the log has been read to its end. */
  loaded: boolean;
  error: Error | null;
  /** Asks for new lines now (a pilot event). */
  poll: () => void;
}

/**
 * The end of a pilot's log, followed: reads the log up to its last line (the route pages forward
 * from a line id), keeps the last TAIL_LINES, then asks for the lines after the last one every
 * LOG_POLL_MS until the log answers that the pilot is final and has nothing more.
 */
function useLogTail(pilotRef: string): LogTail {
  const [state, setState] = useState<Omit<LogTail, 'poll'>>({ lines: [], earlier: 0, loaded: false, error: null });
  const pollNow = useRef<() => void>(() => undefined);
  useEffect(() => {
    let live = true;
    let busy = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let after = 0;
    let lines: PilotLogLine[] = [];
    let earlier = 0;
    const path = (from: number) => `/api/pilots/${encodeURIComponent(pilotRef)}/logs?after=${from}&limit=${LOG_PAGE}`;
    const run = async () => {
      if (busy) return;
      busy = true;
      clearTimeout(timer);
      let ended = false;
      try {
        for (;;) {
          const page = await api<PilotLog>('GET', path(after));
          if (!live) return;
          const last = page.lines[page.lines.length - 1];
          if (last) after = last.id;
          lines = lines.concat(page.lines);
          earlier += Math.max(0, lines.length - TAIL_LINES);
          lines = lines.slice(-TAIL_LINES);
          if (page.lines.length < LOG_PAGE) {
            ended = isPilotFinal(page.status);
            break;
          }
        }
        setState({ lines, earlier, loaded: true, error: null });
      } catch (e) {
        if (live) setState((s) => ({ ...s, error: e as Error }));
      } finally {
        busy = false;
      }
      if (live && !ended) timer = setTimeout(() => void run(), LOG_POLL_MS);
    };
    pollNow.current = () => void run();
    void run();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [pilotRef]);
  return { ...state, poll: () => pollNow.current() };
}

/**
 * The log as a scrolled box that shows its end and stays there as lines arrive, unless the reader
 * has scrolled up to read (then it stays where they are until they scroll back down).
 */
function LogView({ tail }: { tail: LogTail }) {
  const box = useRef<HTMLPreElement>(null);
  const following = useRef(true);
  useLayoutEffect(() => {
    const el = box.current;
    if (el && following.current) el.scrollTop = el.scrollHeight;
  }, [tail.lines]);
  const onScroll = () => {
    const el = box.current;
    if (el) following.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
  };
  return (
    <>
      {tail.error && !tail.loaded && <p class="error">{tail.error.message}</p>}
      {tail.earlier > 0 && (
        <p class="hint" data-testid="pilot-log-earlier">
          The last {tail.lines.length.toLocaleString()} lines; {tail.earlier.toLocaleString()} earlier lines are not shown.
        </p>
      )}
      <pre class="log" data-testid="pilot-log" ref={box} onScroll={onScroll}>
        {/* Each line starts with the pilot's own UTC timestamp. */}
        {tail.lines.map((l) => `${l.line}\n`).join('') || 'No log lines yet.'}
      </pre>
    </>
  );
}

/**
 * A link to the jobs of `site` (the API does not say which jobs a pilot ran: those of its site
 * are where to look), for the roles that may read jobs.
 */
function SiteJobs({ site }: { site: string }) {
  const href = jobsHref({ site });
  return useMayOpen(href) ? (
    <>
      ·{' '}
      <Link href={href} testId="pilot-site-jobs">
        jobs there
      </Link>
    </>
  ) : null;
}

/** How many of a pilot's jobs its page lists. */
const PILOT_JOBS_SHOWN = 20;

/**
 * The jobs this pilot holds or last ran (`GET /api/jobs?pilot=`; a reschedule takes a job from
 * its pilot), newest first, for the roles that may read jobs.
 */
function PilotJobs({ pilotId }: { pilotId: number }) {
  const may = useMayOpen('/jobs');
  const jobs = usePolled(
    () => (may ? api<JobList>('GET', `/api/jobs?pilot=${pilotId}&limit=${PILOT_JOBS_SHOWN}`) : Promise.resolve(null)),
    [pilotId, may],
    LIVE_POLL_MS,
  );
  if (!may || !jobs.data) return null;
  const { jobs: list, total } = jobs.data;
  return (
    <>
      <dt>Its jobs</dt>
      <dd data-testid="pilot-jobs">
        {list.length === 0
          ? 'none'
          : list.map((j, i) => (
              <span key={j.id}>
                {i > 0 ? ', ' : ''}
                <JobLink id={j.id} /> {j.status}
              </span>
            ))}
        {total > list.length ? ` (the newest ${list.length} of ${total})` : ''}
      </dd>
    </>
  );
}

/**
 * One pilot (by id, stamp or CE reference): status and reason, the environment report it
 * registered with (OS, CPU, cores, memory, work dir and its file system, disk free, node,
 * batch system), clock offset, DB12, jobs run, its job (current while it lives, its last once
 * final), links to its site, its CE and their jobs and pilots, and the end of its remote log,
 * followed while the pilot lives. Live while not final.
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
  const logs = useLogTail(pilotRef);
  const reload = useThrottled(() => {
    pilot.reload();
    logs.poll();
  }, 500);

  if (pilot.error && !pilot.data)
    return isRefusal(pilot.error) ? (
      <Refused what={`Pilot ${pilotRef}`} />
    ) : (
      <p class="error" role="alert">
        Pilot {pilotRef}: {pilot.error.message}
      </p>
    );
  const p = pilot.data;
  if (!p) return <p>Loading pilot {pilotRef}…</p>;
  const env = p.environment;
  const db12 = env.db12 as { value?: number } | undefined;
  // The pilot keeps the id of the last job it took: a current job only while it lives.
  const final = isPilotFinal(p.status);
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
        <dd>
          <SiteLink site={p.site} testId="pilot-site" /> <SiteJobs site={p.site} />
        </dd>
        <dt>CE / queue</dt>
        <dd>
          <CeLink ce={p.ce} testId="pilot-ce" /> ({p.ceType}) / {p.queue} · <Link href={pilotsHref({ ce: p.ce })}>its pilots</Link>
        </dd>
        <dt>VO</dt>
        <dd>{p.vo}</dd>
        <dt>Stamp</dt>
        <dd>{p.stamp}</dd>
        <dt>CE reference</dt>
        <dd>{p.reference ?? '—'}</dd>
        <dt>Jobs run</dt>
        <dd data-testid="jobs-run">{p.jobsRun}</dd>
        <dt>{final ? 'Last job' : 'Current job'}</dt>
        <dd data-testid="pilot-job">{p.currentJobId === null ? '—' : <JobLink id={p.currentJobId} />}</dd>
        <PilotJobs pilotId={p.id} />
        <dt>Exit code</dt>
        <dd>{p.exitCode ?? '—'}</dd>
        <dt>Created</dt>
        <dd>
          <Time iso={p.createdAt} />
        </dd>
        <dt>Last update</dt>
        <dd>
          <Time iso={p.lastUpdateAt} />
        </dd>
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
      <LogView tail={logs} />
    </section>
  );
}
