/**
 * Links between the dashboard's pages: a job, a pilot, a site and a CE (on the Sites page, by
 * their anchors), the jobs and pilots of a site or a CE, a job group (the jobs page filtered by
 * it). A link to a page the signed-in role may not use is plain text (a user's job names its
 * pilot, but only admins and site admins read pilots), so no link leads to a refusal.
 */
import type { ComponentChildren } from 'preact';
import { useContext } from 'preact/hooks';
import { MeContext, mayUse, pageOf } from './roles.js';
import { onLinkClick } from './router.js';

/** What a job's `site` says before it is matched to one site: not a site to link. */
const NOT_A_SITE = new Set(['ANY', 'Multiple', '']);

/** `/jobs?site=S&group=G`: the jobs page with these filters (empty ones left out). */
export function jobsHref(filters: { site?: string; group?: string; status?: string }): string {
  const q = new URLSearchParams(Object.entries(filters).filter((e): e is [string, string] => Boolean(e[1])));
  const s = q.toString();
  return s ? `/jobs?${s}` : '/jobs';
}

/** `/pilots?site=S` or `/pilots?ce=C`: the pilots page with this filter. */
export function pilotsHref(filter: { site: string } | { ce: string }): string {
  return `/pilots?${new URLSearchParams(filter)}`;
}

/** The anchor of a site (`site`) or a CE (`ce`) on the Sites page. */
export function anchorOf(kind: 'site' | 'ce', name: string): string {
  return `${kind}-${name}`;
}

/** True when the signed-in role may use the page `href` leads to (or it is no known page). */
export function useMayOpen(href: string): boolean {
  const me = useContext(MeContext);
  const page = pageOf(href.replace(/[?#].*$/, ''));
  return !me || !page || mayUse(me.role, page);
}

/** A link to `href` in the dashboard, or `children` as text when the role may not use that page. */
export function Link({ href, children, testId }: { href: string; children: ComponentChildren; testId?: string }) {
  if (!useMayOpen(href)) return <span data-testid={testId}>{children}</span>;
  return (
    <a href={href} onClick={onLinkClick} data-testid={testId}>
      {children}
    </a>
  );
}

export function JobLink({ id, testId }: { id: number; testId?: string }) {
  return (
    <Link href={`/jobs/${id}`} testId={testId}>
      {id}
    </Link>
  );
}

export function PilotLink({ id, testId }: { id: number; testId?: string }) {
  return (
    <Link href={`/pilots/${id}`} testId={testId}>
      {id}
    </Link>
  );
}

/** A site on the Sites page; `ANY` and `Multiple` (a job not matched yet) as text. */
export function SiteLink({ site, testId }: { site: string; testId?: string }) {
  if (NOT_A_SITE.has(site)) return <span data-testid={testId}>{site}</span>;
  return (
    <Link href={`/sites#${encodeURIComponent(anchorOf('site', site))}`} testId={testId}>
      {site}
    </Link>
  );
}

/** A CE on the Sites page. */
export function CeLink({ ce, testId }: { ce: string; testId?: string }) {
  return (
    <Link href={`/sites#${encodeURIComponent(anchorOf('ce', ce))}`} testId={testId}>
      {ce}
    </Link>
  );
}

/** A job group: the jobs page filtered by it. */
export function GroupLink({ group, testId }: { group: string; testId?: string }) {
  return (
    <Link href={jobsHref({ group })} testId={testId}>
      {group}
    </Link>
  );
}
