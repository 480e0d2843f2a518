/**
 * Who calls the services: roles, the claims carried by a token, and the principal a verified
 * token becomes. Pure: signing and verifying live in `services/token-signer.ts`.
 *
 * | role | bound to | may |
 * | --- | --- | --- |
 * | `user` | a user of a VO group | submit; read and act on their own jobs and sandboxes |
 * | `admin` | — | everything, on every user's jobs; issue tokens |
 * | `site-admin` | — | explain matching (resources, any job) |
 * | `pilot` | one pilot id | ask the matcher for work; explain its resource |
 * | `job` | one job id | read that job; read the sandboxes it references; upload its outputs |
 *
 * Token claims (JWT, EdDSA): `sub` (user name, or `pilot:<id>`), `role`, `vo`, `group`,
 * `job` (job id, job tokens), `pilot` (pilot id, pilot and job tokens).
 */
import { WmsError } from './errors.js';
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
    default:
      return { sub: p.user, role: p.role, vo: p.vo, group: p.group };
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
    default:
      return { role, user, vo, group: str(payload, 'group') };
  }
}

/** The submitter identity of a person (jobs are always owned by the token's subject). */
export function submitterOf(p: PersonPrincipal): Identity {
  return { owner: p.user, ownerGroup: p.group, vo: p.vo };
}

/**
 * The owner restriction for database reads and actions: admins see every job (no scope),
 * users and job tokens only their owner's (job tokens are further bound to one job id by the
 * routes). Site admins and pilots own no jobs: they get a scope that matches nobody.
 */
export function ownerScope(p: Principal): { owner?: string } {
  if (p.role === 'admin') return {};
  if (p.role === 'user' || p.role === 'job') return { owner: p.user };
  // No real user is called "pilot:..." or "site-admin:..." (names cannot contain ':').
  return { owner: `${p.role}:${p.user}` };
}
