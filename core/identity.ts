/**
 * Who calls the services: roles, the claims carried by a token, and the principal a verified
 * token becomes. Pure: signing and verifying live in `services/token-signer.ts`.
 *
 * | role | bound to | may |
 * | --- | --- | --- |
 * | `user` | a user of a VO group | submit; read and act on their own jobs and sandboxes |
 * | `admin` | — | everything, on every user's jobs; issue tokens |
 * | `site-admin` | the sites of its `sites` claim | explain matching; apply, ban and allow its sites, their CEs and queues; read their pilots (never the local site: admins only) |
 * | `pilot` | one pilot record (its site, CE and queue, never the request's) | ask the matcher for work; explain its resource; report, log, renew; dead once the pilot is final |
 * | `job` | one job id and its pilot | read that job; read the sandboxes it references; upload its outputs; dead once the job is Done, Failed, Killed or Deleted |
 *
 * Token claims (JWT, EdDSA; job tokens HS256 under a key derived from the EdDSA one): `sub` (user name, or `pilot:<id>`), `role`, `vo`, `group`,
 * `job` (job id, job tokens), `pilot` (pilot id, pilot and job tokens), `sites` (site-admin
 * tokens: the sites administered; a site-admin token without it administers no site), and
 * the registered `iat`, `exp` and `jti` (revocation names a jti, or a (`vo`, `sub`) pair).
 */
import { WmsError } from './errors.js';
import { LOCAL_SITE } from './local-site.js';
import type { Identity } from './job-model.js';

export const ROLES = ['user', 'admin', 'site-admin', 'pilot', 'job'] as const;
export type Role = (typeof ROLES)[number];

/** Roles that `wms token issue` and `POST /api/tokens` hand out to people. */
export const PERSON_ROLES = ['user', 'admin', 'site-admin'] as const;
export type PersonRole = (typeof PERSON_ROLES)[number];

export function isRole(s: unknown): s is Role {
  return typeof s === 'string' && (ROLES as readonly string[]).includes(s);
}

/** A person: a user, an admin or a site admin, always with a VO and a group. */
export interface PersonPrincipal {
  role: PersonRole;
  user: string;
  vo: string;
  group: string;
  /** Site admins: the sites they administer (absent or empty: none). Other roles: absent. */
  sites?: string[];
}

/** The VO of a pilot sent to a queue open to every VO: it may take any VO's jobs. */
export const ANY_VO = '*';

/** A pilot: may match jobs of its VO (or of any, with ANY_VO) for itself only. */
export interface PilotPrincipal {
  role: 'pilot';
  /** `pilot:<id>`. */
  user: string;
  pilotId: number;
  vo: string;
}

/** A running job: acts for its owner, on that one job only. */
export interface JobPrincipal {
  role: 'job';
  /** The job's owner. */
  user: string;
  vo: string;
  group: string;
  jobId: number;
  pilotId: number | null;
}

export type Principal = PersonPrincipal | PilotPrincipal | JobPrincipal;

/** The claims this system puts in a token, besides the registered ones (iat, exp, iss, aud). */
export interface TokenClaims {
  sub: string;
  role: Role;
  vo: string;
  group?: string;
  job?: number;
  pilot?: number;
  /** Site-admin tokens: the sites administered. */
  sites?: string[];
}

/** The claims that represent `p`. */
export function claimsOf(p: Principal): TokenClaims {
  switch (p.role) {
    case 'pilot':
      return { sub: p.user, role: p.role, vo: p.vo, pilot: p.pilotId };
    case 'job': {
      const c: TokenClaims = { sub: p.user, role: p.role, vo: p.vo, group: p.group, job: p.jobId };
      if (p.pilotId !== null) c.pilot = p.pilotId;
      return c;
    }
    default: {
      const c: TokenClaims = { sub: p.user, role: p.role, vo: p.vo, group: p.group };
      if (p.role === 'site-admin' && p.sites !== undefined) c.sites = [...p.sites];
      return c;
    }
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

/** True for a user, VO or group name this system accepts (letters, digits, `._@-`). */
export function isValidName(s: string): boolean {
  return NAME.test(s);
}

function str(payload: Record<string, unknown>, key: string): string {
  const v = payload[key];
  if (typeof v !== 'string' || v === '') throw invalid(`claim "${key}" missing`);
  return v;
}

function posInt(payload: Record<string, unknown>, key: string): number {
  const v = payload[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw invalid(`claim "${key}" missing`);
  }
  return v;
}

function invalid(message: string): WmsError {
  return new WmsError('WMS_AUTH_INVALID', `invalid token: ${message}`);
}

/**
 * The principal a verified token's payload stands for. Throws WMS_AUTH_INVALID when a claim
 * the role needs is missing or of the wrong type (a token signed by us but of another shape).
 */
export function principalFromClaims(payload: Record<string, unknown>): Principal {
  const role = payload['role'];
  if (!isRole(role)) throw invalid('unknown role');
  const user = str(payload, 'sub');
  const vo = str(payload, 'vo');
  switch (role) {
    case 'pilot':
      return { role, user, vo, pilotId: posInt(payload, 'pilot') };
    case 'job': {
      const pilot = payload['pilot'];
      return {
        role,
        user,
        vo,
        group: str(payload, 'group'),
        jobId: posInt(payload, 'job'),
        pilotId: typeof pilot === 'number' && Number.isSafeInteger(pilot) ? pilot : null,
      };
    }
    default: {
      const p: PersonPrincipal = { role, user, vo, group: str(payload, 'group') };
      if (role === 'site-admin' && payload['sites'] !== undefined) p.sites = sitesClaim(payload['sites']);
      return p;
    }
  }
}

/** At most this many sites in one site-admin token. */
export const MAX_TOKEN_SITES = 100;

function sitesClaim(v: unknown): string[] {
  if (!Array.isArray(v) || v.length > MAX_TOKEN_SITES || !v.every((s) => typeof s === 'string' && isValidName(s))) {
    throw invalid('claim "sites" is not a list of site names');
  }
  return [...(v as string[])];
}

/**
 * The problem with the sites asked for a site-admin token (null: fine): at least one, each a
 * valid name, no more than MAX_TOKEN_SITES, and never the local site, which only admins manage
 * (its pilots run on the server's own machine).
 */
export function siteAdminSitesProblem(sites: readonly string[]): string | null {
  if (sites.length === 0) return 'a site-admin token needs the sites it administers (at least one)';
  if (sites.length > MAX_TOKEN_SITES) return `a site-admin token administers at most ${MAX_TOKEN_SITES} sites`;
  const bad = sites.filter((s) => !isValidName(s));
  if (bad.length > 0) return `not a site name: ${bad.map((s) => JSON.stringify(s)).join(', ')} (letters, digits, . _ @ -)`;
  if (sites.includes(LOCAL_SITE.site))
    return `the local site ${LOCAL_SITE.site} is managed by admins only: it cannot be given to a site admin`;
  return null;
}

/**
 * Why `p` may not manage `site` (change it, its computing elements or queues, ban or allow them,
 * read its pilots); null when it may. Admins manage every site; site admins only the sites of
 * their token, and never the local site (it runs pilots on the server's machine); nobody else.
 */
export function siteRefusal(p: Principal, site: string): string | null {
  if (p.role === 'admin') return null;
  if (p.role !== 'site-admin') return `role ${p.role} manages no site`;
  if (site === LOCAL_SITE.site) return `only admins manage the local site ${site} (its pilots run on the server's own machine)`;
  if (!(p.sites ?? []).includes(site)) {
    const mine = p.sites?.length ? `it administers ${p.sites.join(', ')}` : 'it administers no site';
    return `this site-admin token does not administer site ${site} (${mine}; an admin issues one with wms token issue --role site-admin --site ${site})`;
  }
  return null;
}

/** True when `p` may manage `site` (see siteRefusal). */
export function managesSite(p: Principal, site: string): boolean {
  return siteRefusal(p, site) === null;
}

/** The submitter identity of a person (jobs are always owned by the token's subject). */
export function submitterOf(p: PersonPrincipal): Identity {
  return { owner: p.user, ownerGroup: p.group, vo: p.vo };
}

/**
 * An owner restriction: the jobs and sandboxes of one user, who is the pair (VO, name).
 * Empty = unrestricted (admins). Both keys are always set together by `ownerScope`.
 */
export interface OwnerScope {
  owner?: string;
  vo?: string;
}

/**
 * The owner restriction for database reads and actions: admins see every job (no scope),
 * users and job tokens only their owner's, in their VO (`alice` of atlas is not `alice` of
 * lhcb; job tokens are further bound to one job id by the routes). Site admins and pilots own
 * no jobs: they get a scope that matches nobody.
 */
export function ownerScope(p: Principal): OwnerScope {
  if (p.role === 'admin') return {};
  if (p.role === 'user' || p.role === 'job') return { owner: p.user, vo: p.vo };
  // No real user is called "pilot:..." or "site-admin:..." (names cannot contain ':').
  return { owner: `${p.role}:${p.user}`, vo: p.vo };
}

/** Does `scope` admit something owned by (vo, owner)? */
export function inScope(scope: OwnerScope, item: { owner: string; vo: string }): boolean {
  return (scope.owner === undefined || scope.owner === item.owner) && (scope.vo === undefined || scope.vo === item.vo);
}
