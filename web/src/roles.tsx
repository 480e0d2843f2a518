/**
 * Which dashboard pages each role may use, where each role lands, and what a page says to a
 * role that may not use it: a short explanation and links to the pages it may use, never the
 * API's raw "role … may not call this route". The roles follow the routes' checks
 * (`requireRole` in services/plugins/); the services still decide every call.
 */
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Identity } from '../../api/index.js';
import type { Role } from '../../core/identity.js';
import { ApiError } from './api.js';
import { onLinkClick } from './router.js';

/** A top page of the dashboard: its path, its name in the header, who may use it, what it is for. */
export interface PageInfo {
  path: string;
  label: string;
  roles: readonly Role[];
  purpose: string;
}

/** The header's pages, in its order: the first one a role may use is where it lands. */
export const PAGES: readonly PageInfo[] = [
  { path: '/jobs', label: 'Jobs', roles: ['user', 'admin'], purpose: 'jobs, their status and why they wait' },
  { path: '/submit', label: 'Submit', roles: ['user', 'admin'], purpose: 'submit jobs' },
  { path: '/sites', label: 'Sites', roles: ['user', 'admin', 'site-admin'], purpose: 'sites, their CEs and queues, bans and pauses' },
  { path: '/pilots', label: 'Pilots', roles: ['admin', 'site-admin'], purpose: 'pilots, their environment and logs' },
  { path: '/usage', label: 'Usage', roles: ['user', 'admin', 'site-admin'], purpose: 'quotas and usage' },
];

/** The top page a client path belongs to (`/` and `/jobs/12` to Jobs), or null for no page. */
export function pageOf(path: string): PageInfo | null {
  if (path === '/') return PAGES[0]!;
  return PAGES.find((p) => path === p.path || path.startsWith(`${p.path}/`)) ?? null;
}

export function mayUse(role: Role, page: PageInfo): boolean {
  return page.roles.includes(role);
}

/** Where `role` lands: the first page it may use, or null (pilot and job tokens: no page). */
export function homeOf(role: Role): string | null {
  return PAGES.find((p) => mayUse(role, p))?.path ?? null;
}

/** Who is signed in, for the pages that explain a refusal (main.tsx provides it). */
export const MeContext = createContext<Identity | null>(null);

/** "users and admins", "admins and site admins". */
function rolesText(roles: readonly Role[]): string {
  const names = roles.map((r) => (r === 'site-admin' ? 'site admins' : `${r}s`));
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : (names[0] ?? 'nobody');
}

/** The pages `me` may use, as links with what each is for. */
function Alternatives({ me }: { me: Identity }) {
  const pages = PAGES.filter((p) => mayUse(me.role, p));
  if (pages.length === 0) {
    return (
      <p>
        A {me.role} token is for the {me.role === 'pilot' ? 'pilots' : 'jobs'} themselves, not for this dashboard: sign out and sign in with
        a user, admin or site-admin token (<code>wms token issue</code>).
      </p>
    );
  }
  return (
    <>
      <p>You can use:</p>
      <ul data-testid="role-alternatives">
        {pages.map((p) => (
          <li key={p.path}>
            <a href={p.path} onClick={onLinkClick}>
              {p.label}
            </a>
            : {p.purpose}
          </li>
        ))}
      </ul>
    </>
  );
}

function signedInAs(me: Identity): string {
  const sites = me.role === 'site-admin' ? ` of ${me.sites?.length ? me.sites.join(', ') : 'no site'}` : '';
  return `${me.user} (${me.role}${sites})`;
}

/** A page `me` may not use: what it is for, who may use it, and the pages `me` may use instead. */
export function NotForRole({ page, me }: { page: PageInfo; me: Identity }) {
  return (
    <section class="not-for-role" data-testid="not-for-role">
      <h1>{page.label}</h1>
      <p>
        {page.label} ({page.purpose}) is for {rolesText(page.roles)}; you are signed in as {signedInAs(me)}.
      </p>
      <Alternatives me={me} />
    </section>
  );
}

/** True for an answer that refuses the caller's role (403). */
export function isRefusal(e: unknown): boolean {
  return e instanceof ApiError && e.status === 403;
}

/**
 * A call the services refused to the caller's role, in words: what was refused and the pages
 * the caller may use instead. For parts of pages a role may use but not all of.
 */
export function Refused({ what }: { what: string }) {
  const me = useContext(MeContext);
  return (
    <div class="refused" role="alert" data-testid="refused">
      <p>
        {what} is not open to {me ? signedInAs(me) : 'this token'}.
      </p>
      {me && <Alternatives me={me} />}
    </div>
  );
}
