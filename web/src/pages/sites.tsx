import { useEffect, useState } from 'preact/hooks';
import { managesSite, type Principal } from '../../../core/identity.js';
import type { Identity, Queue, QueueList, SiteStatus as SiteStatusAnswer } from '../../../api/index.js';
import { api } from '../api.js';
import { streamLabel, useEvents, useThrottled, LIVE_POLL_MS } from '../events.js';
import { usePolled } from '../hooks.js';
import { isRefusal, Refused } from '../roles.js';
import { duration, fromNow, localTime, Time, utcTime } from '../time.js';
import { anchorOf, jobsHref, Link, pilotsHref, PilotLink, useMayOpen } from '../links.js';

/** A site as the page shows it: its queues (GET /api/sites) grouped by site and CE. */
interface Site {
  name: string;
  banned: boolean;
  banReason: string | null;
  ces: { name: string; type: string; banned: boolean; banReason: string | null; queues: Queue[] }[];
}

function groupSites(queues: Queue[]): Site[] {
  const sites = new Map<string, Site>();
  for (const q of queues) {
    let s = sites.get(q.site);
    if (!s) sites.set(q.site, (s = { name: q.site, banned: q.siteBanned, banReason: q.siteBanReason, ces: [] }));
    let ce = s.ces.find((c) => c.name === q.ce);
    if (!ce) s.ces.push((ce = { name: q.ce, type: q.ceType, banned: q.ceBanned, banReason: q.ceBanReason, queues: [] }));
    ce.queues.push(q);
  }
  return [...sites.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** How a badge looks: green (ok), amber (some or all queues paused), red (banned). */
type Tone = 'ok' | 'partial' | 'paused' | 'banned';

function Badge({ tone, text, testId, title }: { tone: Tone; text: string; testId?: string; title?: string }) {
  return (
    <span class={`state ${tone}`} data-testid={testId} title={title}>
      {text}
    </span>
  );
}

const because = (reason: string | null) => (reason ? `: ${reason}` : '');

interface Closure {
  cause: 'site' | 'ce' | 'paused';
  tone: 'paused' | 'banned';
  text: string;
  title?: string;
}

/**
 * Why a queue gets no pilots now, or null when it is open: its site banned, its CE banned, or
 * a pause (CE health: until when, and why). The first that applies, as the queue's badge says it.
 */
function closure(q: Queue): Closure | null {
  if (q.siteBanned) return { cause: 'site', tone: 'banned', text: `site banned${because(q.siteBanReason)}` };
  if (q.ceBanned) return { cause: 'ce', tone: 'banned', text: `CE banned${because(q.ceBanReason)}` };
  if (q.pausedUntil) {
    return {
      cause: 'paused',
      tone: 'paused',
      text: `paused until ${localTime(q.pausedUntil)} (${fromNow(q.pausedUntil)})${because(q.pauseReason)}`,
      title: utcTime(q.pausedUntil),
    };
  }
  return null;
}

function QueueState({ q }: { q: Queue }) {
  const c = closure(q);
  return c ? (
    <Badge tone={c.tone} text={c.text} title={c.title} testId={`queue-state-${q.ce}/${q.queue}`} />
  ) : (
    <Badge tone="ok" text="ok" testId={`queue-state-${q.ce}/${q.queue}`} />
  );
}

const queuesText = (n: number) => `${n} queue${n === 1 ? '' : 's'}`;

/**
 * A site's or a CE's badge: banned with the reason; else what its queues say: ok when all are
 * open, amber with the counts when some are paused or on a banned CE, and "closed" (never
 * green) when none is open.
 */
function Summary({ banned, reason, queues, testId }: { banned: boolean; reason: string | null; queues: Queue[]; testId?: string }) {
  if (banned) return <Badge tone="banned" text={`banned${because(reason)}`} testId={testId} />;
  const closed = queues.map(closure).filter((c) => c !== null);
  if (closed.length === 0) return <Badge tone="ok" text="ok" testId={testId} />;
  const count = (cause: Closure['cause']) => closed.filter((c) => c.cause === cause).length;
  const paused = count('paused');
  const parts = [
    count('site') > 0 ? 'site banned' : '',
    count('ce') > 0 ? `${queuesText(count('ce'))} of a banned CE` : '',
    paused > 0 ? `${queuesText(paused)} paused` : '',
  ]
    .filter(Boolean)
    .join(', ');
  if (closed.length === queues.length) {
    return <Badge tone={paused > 0 ? 'paused' : 'banned'} text={`closed: ${parts}`} testId={testId} />;
  }
  const open = queues.length - closed.length;
  return <Badge tone="partial" text={`ok: ${open} of ${queuesText(queues.length)} open; ${parts}`} testId={testId} />;
}

/** Ban (asks a reason first) or allow a site or a CE. */
function BanControls({ kind, name, banned, onDone }: { kind: 'site' | 'ce'; name: string; banned: boolean; onDone: () => void }) {
  const [asking, setAsking] = useState(false);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | null>(null);
  const base = kind === 'site' ? '/api/sites' : '/api/computing-elements';
  const send = async (action: 'ban' | 'allow') => {
    setError(null);
    try {
      await api('POST', `${base}/${encodeURIComponent(name)}/${action}`, action === 'ban' ? { reason } : undefined);
      setAsking(false);
      setReason('');
      onDone();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const label = `${kind === 'site' ? 'site' : 'CE'} ${name}`;
  if (banned) {
    return (
      <span class="ban-controls">
        <button type="button" onClick={() => send('allow')} aria-label={`Allow ${label}`}>
          Allow
        </button>
        {error && (
          <span class="error" role="alert">
            {error}
          </span>
        )}
      </span>
    );
  }
  if (!asking) {
    return (
      <span class="ban-controls">
        <button type="button" class="danger" onClick={() => setAsking(true)} aria-label={`Ban ${label}`}>
          Ban
        </button>
      </span>
    );
  }
  return (
    <form
      class="ban-controls"
      onSubmit={(e) => {
        e.preventDefault();
        void send('ban');
      }}
    >
      <label>
        Reason for banning {label}{' '}
        <input required maxLength={500} value={reason} onInput={(e) => setReason(e.currentTarget.value)} autoFocus />
      </label>
      <button type="submit" class="danger" disabled={reason.trim() === ''}>
        Confirm ban
      </button>
      <button type="button" onClick={() => setAsking(false)}>
        Cancel
      </button>
      {error && (
        <span class="error" role="alert">
          {error}
        </span>
      )}
    </form>
  );
}

function SiteStatus({ name, live }: { name: string; live: number }) {
  const status = usePolled(() => api<SiteStatusAnswer>('GET', `/api/sites/${encodeURIComponent(name)}/status`), [name, live], LIVE_POLL_MS);
  if (status.error && !status.data)
    return isRefusal(status.error) ? <Refused what={`The status of ${name}`} /> : <p class="error">Status: {status.error.message}</p>;
  if (!status.data) return <p>Loading status…</p>;
  return (
    <div class="table-scroll">
      <table class="site-status" data-testid={`site-status-${name}`}>
        <thead>
          <tr>
            <th>CE / queue</th>
            <th>Pilots by state</th>
            <th>Last pilot failures</th>
          </tr>
        </thead>
        <tbody>
          {status.data.queues.map((q) => (
            <tr key={`${q.ce}/${q.queue}`}>
              <td>
                {q.ce} / {q.queue}
              </td>
              <td>
                {Object.keys(q.pilots).length === 0
                  ? '—'
                  : Object.entries(q.pilots).map(([s, n]) => (
                      <span key={s} class={`pill pilot-${s}`}>
                        {s} {n}
                      </span>
                    ))}
              </td>
              <td>
                {q.lastFailures.length === 0 ? (
                  '—'
                ) : (
                  <ul class="failures">
                    {q.lastFailures.map((f) => (
                      <li key={f.pilotId}>
                        pilot <PilotLink id={f.pilotId} /> {f.status}: {f.reason}{' '}
                        <small>
                          <Time iso={f.at} />
                        </small>
                      </li>
                    ))}
                  </ul>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Links to the jobs of a site and the pilots of a site or a CE, those the signed-in role may read. */
function Around({ kind, name }: { kind: 'site' | 'ce'; name: string }) {
  const jobs = jobsHref({ site: name });
  const pilots = pilotsHref(kind === 'site' ? { site: name } : { ce: name });
  // GET /api/jobs filters by site, not by CE.
  const showJobs = useMayOpen(jobs) && kind === 'site';
  const showPilots = useMayOpen(pilots);
  if (!showJobs && !showPilots) return null;
  return (
    <small class="around">
      {showJobs && (
        <Link href={jobs} testId={`site-jobs-${name}`}>
          jobs
        </Link>
      )}
      {showPilots && (
        <Link href={pilots} testId={`${kind}-pilots-${name}`}>
          pilots
        </Link>
      )}
    </small>
  );
}

/**
 * The site or CE the address points at (`/sites#site-NAME`, `/sites#ce-NAME`, as links from
 * jobs and pilots say): scrolled to once the list is there, and marked while the address says so.
 */
function useTarget(url: URL, loaded: boolean): string {
  const target = decodeURIComponent(url.hash.slice(1));
  useEffect(() => {
    if (loaded && target) document.getElementById(target)?.scrollIntoView({ block: 'start' });
  }, [target, loaded]);
  return target;
}

/**
 * Sites, their CEs and queues: state (a queue ok, paused until when and why, or closed by a ban
 * of its site or CE; a site's and a CE's badge sum up their queues), limits; for site admins and admins the pilots by state and the last pilot failures per queue,
 * and Ban / Allow; links to a site's jobs and pilots and a CE's pilots. Each site and CE has an
 * anchor (`#site-NAME`, `#ce-NAME`) that links from jobs and pilots go to. Live from the `sites`
 * event stream (polling slowly as a fallback).
 */
export function SitesPage({ me, url }: { me: Identity | null; url: URL }) {
  const [bump, setBump] = useState(0);
  const stream = useEvents({ sites: true }, () => refresh());
  const sites = usePolled(() => api<QueueList>('GET', '/api/sites'), [bump], stream === 'live' ? LIVE_POLL_MS : 3000);
  const refresh = useThrottled(() => setBump((b) => b + 1));
  const manager = me?.role === 'admin' || me?.role === 'site-admin';
  // Ban / Allow only where the services would accept it (the same rule: admins everywhere, a site
  // admin on the sites of its token, never on the local site).
  const manages = (site: string) => me !== null && managesSite(me as Principal, site);

  const list = sites.data ? groupSites(sites.data.queues) : null;
  const target = useTarget(url, list !== null);
  if (sites.error && !sites.data)
    return isRefusal(sites.error) ? (
      <Refused what="The site list" />
    ) : (
      <p class="error" role="alert">
        Sites: {sites.error.message}
      </p>
    );
  // The class of a site's or a CE's box: `base`, and `target` when the address points at it.
  const box = (base: string, id: string) => (id === target ? `${base} target` : base);
  return (
    <section>
      <h1>
        Sites{' '}
        <small class={`stream stream-${stream}`} data-testid="stream">
          {streamLabel(stream)}
        </small>
      </h1>
      {!list && <p>Loading sites…</p>}
      {list && list.length === 0 && <p>No sites registered.</p>}
      {list?.map((s) => (
        <article class={box('site', anchorOf('site', s.name))} key={s.name} id={anchorOf('site', s.name)} data-testid={`site-${s.name}`}>
          <h2>
            {s.name} <Around kind="site" name={s.name} />{' '}
            <Summary banned={s.banned} reason={s.banReason} queues={s.ces.flatMap((c) => c.queues)} testId={`site-state-${s.name}`} />
            {manages(s.name) && <BanControls kind="site" name={s.name} banned={s.banned} onDone={refresh} />}
          </h2>
          {s.ces.map((ce) => (
            <div class={box('ce', anchorOf('ce', ce.name))} key={ce.name} id={anchorOf('ce', ce.name)}>
              <h3>
                CE {ce.name} <small>({ce.type})</small> <Around kind="ce" name={ce.name} />{' '}
                <Summary banned={ce.banned} reason={ce.banReason} queues={ce.queues} testId={`ce-state-${ce.name}`} />
                {manages(s.name) && <BanControls kind="ce" name={ce.name} banned={ce.banned} onDone={refresh} />}
              </h3>
              <div class="table-scroll">
                <table>
                  <thead>
                    <tr>
                      <th>Queue</th>
                      <th>State</th>
                      <th>CPU time</th>
                      <th>Cores</th>
                      <th>RAM</th>
                      <th>GPUs</th>
                      <th>VOs</th>
                      <th>Pilots: waiting / total / per cycle</th>
                    </tr>
                  </thead>
                  <tbody>
                    {ce.queues.map((q) => (
                      <tr key={q.queue}>
                        <td>{q.queue}</td>
                        <td>
                          <QueueState q={q} />
                        </td>
                        <td>{duration(q.cpuTime)}</td>
                        <td>{q.processors}</td>
                        <td>{q.ramMb} MB</td>
                        <td>{q.gpus}</td>
                        <td>{q.allowedVos.length ? q.allowedVos.join(', ') : 'any'}</td>
                        <td>
                          {q.maxWaitingPilots} / {q.maxTotalPilots} / {q.maxPilotsPerCycle}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </div>
          ))}
          {manager && <SiteStatus name={s.name} live={bump} />}
        </article>
      ))}
    </section>
  );
}
