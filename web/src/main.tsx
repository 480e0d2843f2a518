/**
 * The dashboard: sign in with a token, then Jobs (list, detail) and Submit. Client routes:
 * `/` (the role's first page), `/jobs` (the list), `/jobs/:id`, `/submit`, `/sites`, `/pilots`,
 * `/pilots/:ref`, `/usage`. The header lists the pages the signed-in role may use; another page
 * says who may use it and links those (roles.tsx).
 */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Identity } from '../../api/index.js';
import { api, getToken, isDatabaseUp, setDatabaseUp, setToken } from './api.js';
import { onLinkClick, redirect, useLocation } from './router.js';
import { homeOf, MeContext, mayUse, NotForRole, pageOf, PAGES } from './roles.js';
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

/** How often the identity of the token is asked again while it cannot be read. */
const IDENTITY_RETRY_MS = 2000;

/** Who `token` stands for (`/api/tokens/self`), asked again until it answers; null meanwhile. */
function useIdentity(token: string | null): Identity | null {
  const [me, setMe] = useState<Identity | null>(null);
  useEffect(() => {
    setMe(null);
    if (!token) return;
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = () =>
      api<Identity>('GET', '/api/tokens/self').then(
        (m) => {
          if (live) setMe(m);
        },
        () => {
          if (live) timer = setTimeout(load, IDENTITY_RETRY_MS);
        },
      );
    void load();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [token]);
  return me;
}

/**
 * Where `me` lands when its identity is first known: its role's first page at `/`, and right
 * after signing in on a page its role may not use (a site admin signing in on Jobs goes to
 * Sites); null to stay. Elsewhere such a page explains itself (NotForRole), as when a link leads
 * there.
 */
function landingOf(me: Identity, path: string, signedInHere: boolean): string | null {
  const page = pageOf(path);
  return path === '/' || (signedInHere && page && !mayUse(me.role, page)) ? homeOf(me.role) : null;
}

/** Goes where `me` lands (landingOf) once per identity; true until it has gone there. */
function useLanding(token: string | null, me: Identity | null, path: string): boolean {
  // The token this tab had when the page loaded: any other was signed in with here.
  const loadedWith = useRef(token);
  if (token === null) loadedWith.current = null;
  const landed = useRef<Identity | null>(null);
  const target = me && landed.current !== me ? landingOf(me, path, token !== loadedWith.current) : null;
  useEffect(() => {
    if (!me || landed.current === me) return;
    landed.current = me;
    if (target) redirect(target);
  }, [me]);
  return target !== null;
}

function App() {
  const token = useToken();
  const url = useLocation();
  const me = useIdentity(token);
  const path = url.pathname;
  const landing = useLanding(token, me, path);

  if (!token) return <SignIn />;
  const job = /^\/jobs\/(\d+)$/.exec(path);
  const pilot = /^\/pilots\/([^/]+)$/.exec(path);
  const known = pageOf(path);
  let page;
  if (!me || landing) page = <p>Loading…</p>;
  else if (known && !mayUse(me.role, known)) page = <NotForRole page={known} me={me} />;
  else if (path === '/' || path === '/jobs') page = <JobsPage url={url} me={me} />;
  else if (job) page = <JobPage id={Number(job[1])} />;
  else if (path === '/submit') page = <SubmitPage />;
  else if (path === '/sites') page = <SitesPage me={me} url={url} />;
  else if (path === '/pilots') page = <PilotsPage url={url} />;
  else if (pilot) page = <PilotPage pilotRef={decodeURIComponent(pilot[1]!)} />;
  else if (path === '/usage') page = <UsagePage me={me} />;
  else page = <p class="error">No page at {path}.</p>;
  return (
    <MeContext.Provider value={me}>
      <header>
        <strong>pilot-wms</strong>
        <nav>
          {PAGES.filter((p) => me && mayUse(me.role, p)).map((p) => (
            <a key={p.path} href={p.path} class={known === p ? 'active' : ''} onClick={onLinkClick}>
              {p.label}
            </a>
          ))}
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
    </MeContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
