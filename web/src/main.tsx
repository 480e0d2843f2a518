/**
 * The dashboard: sign in with a token, then Jobs (list, detail) and Submit. Client routes:
 * `/` and `/jobs` (the list), `/jobs/:id`, `/submit`, `/sites`, `/pilots`, `/pilots/:ref`, `/usage`.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Identity } from '../../api/index.js';
import { api, getToken, isDatabaseUp, setDatabaseUp, setToken } from './api.js';
import { onLinkClick, useLocation } from './router.js';
import { SignIn } from './pages/sign-in.js';
import { JobsPage } from './pages/jobs.js';
import { JobPage } from './pages/job.js';
import { SubmitPage } from './pages/submit.js';
import { SitesPage } from './pages/sites.js';
import { PilotsPage } from './pages/pilots.js';
import { PilotPage } from './pages/pilot.js';
import { UsagePage } from './pages/usage.js';
import './styles.css';

function useToken(): string | null {
  const [token, set] = useState(getToken);
  useEffect(() => {
    const update = () => set(getToken());
    window.addEventListener('wms-auth', update);
    return () => window.removeEventListener('wms-auth', update);
  }, []);
  return token;
}

/** How often the banner asks `/api/health` while the database is away. */
const HEALTH_POLL_MS = 3000;

function useDatabaseUp(): boolean {
  const [up, set] = useState(isDatabaseUp);
  useEffect(() => {
    const update = () => set(isDatabaseUp());
    window.addEventListener('wms-db', update);
    return () => window.removeEventListener('wms-db', update);
  }, []);
  return up;
}

/**
 * Shown while the services answer 503 WMS_DB_UNAVAILABLE: the pages keep their last data and
 * keep polling; this asks `/api/health` (no token) every few seconds and goes away on its 200,
 * or on any answer that works.
 */
function DatabaseBanner() {
  const up = useDatabaseUp();
  useEffect(() => {
    if (up) return;
    const timer = setInterval(() => {
      fetch('/api/health').then(
        (r) => {
          if (r.ok) setDatabaseUp(true);
        },
        () => undefined,
      );
    }, HEALTH_POLL_MS);
    return () => clearInterval(timer);
  }, [up]);
  if (up) return null;
  return (
    <div class="db-banner" role="alert" data-testid="db-banner">
      database unavailable, retrying: the services are up but their database does not answer; pages show their last data and update when it
      is back
    </div>
  );
}

function App() {
  const token = useToken();
  const url = useLocation();
  const [me, setMe] = useState<Identity | null>(null);
  useEffect(() => {
    setMe(null);
    if (token) api<Identity>('GET', '/api/tokens/self').then(setMe, () => undefined);
  }, [token]);

  if (!token) return <SignIn />;
  const path = url.pathname;
  const job = /^\/jobs\/(\d+)$/.exec(path);
  const pilot = /^\/pilots\/([^/]+)$/.exec(path);
  let page;
  if (path === '/' || path === '/jobs') page = <JobsPage url={url} me={me} />;
  else if (job) page = <JobPage id={Number(job[1])} />;
  else if (path === '/submit') page = <SubmitPage />;
  else if (path === '/sites') page = <SitesPage me={me} />;
  else if (path === '/pilots') page = <PilotsPage url={url} />;
  else if (pilot) page = <PilotPage pilotRef={decodeURIComponent(pilot[1]!)} />;
  else if (path === '/usage') page = <UsagePage me={me} />;
  else page = <p class="error">No page at {path}.</p>;
  const active = (p: string) => (path === p || (p === '/jobs' && (path === '/' || path.startsWith('/jobs/'))) ? 'active' : '');
  return (
    <>
      <header>
        <strong>pilot-wms</strong>
        <nav>
          <a href="/jobs" class={active('/jobs')} onClick={onLinkClick}>
            Jobs
          </a>
          <a href="/submit" class={active('/submit')} onClick={onLinkClick}>
            Submit
          </a>
          <a href="/sites" class={active('/sites')} onClick={onLinkClick}>
            Sites
          </a>
          {me && me.role !== 'user' && (
            <a href="/pilots" class={path.startsWith('/pilots') ? 'active' : ''} onClick={onLinkClick}>
              Pilots
            </a>
          )}
          <a href="/usage" class={active('/usage')} onClick={onLinkClick}>
            Usage
          </a>
        </nav>
        <span class="who" data-testid="identity">
          {me ? `${me.user} (${me.role}${me.group ? `, ${me.group}` : ''})` : ''}
        </span>
        <button type="button" onClick={() => setToken(null)}>
          Sign out
        </button>
      </header>
      <DatabaseBanner />
      <main>{page}</main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
