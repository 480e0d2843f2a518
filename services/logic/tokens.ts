/**
 * Tokens (routes: `services/plugins/tokens.ts`). Admins issue tokens to people (user, admin,
 * site-admin) and to pilots (`POST /api/tokens`, what `wms token issue` calls); anyone
 * authenticated can ask who they are (`GET /api/tokens/self`). Job tokens are minted only by the
 * matcher. A site-admin token names the sites it administers (`sites`, required, never the local
 * site).
 *
 * Revocation (admins): `POST /api/tokens/revocations` revokes one token (the token itself, or
 * its jti and expiry) or every token of a subject issued until now (`vo` + `user`, or `pilotId`
 * for a pilot's tokens in any VO); `GET /api/tokens/revocations` lists those still in force.
 * The row is read by every replica within `tokens.revocationPoll` (2 s); this one applies it at
 * once. Tokens issued to the same subject afterwards work.
 */
import type { Logger } from 'pino';
import type { TokenConfig } from '../../core/config.js';
import { WmsError } from '../../core/errors.js';
import { isValidName, siteAdminSitesProblem, type Principal } from '../../core/identity.js';
import { insertRevocation, listRevocations as listRevocationRows, type NewRevocation, type RevocationRow } from '../../db/index.js';
import type { IssuedToken, IssueTokenRequest, Revocation, RevocationAnswer, RevocationList, RevokeTokenRequest } from '../../api/index.js';
import type { ServiceContext } from '../context.js';

function revocationView(r: RevocationRow): Revocation {
  return { ...r, revokedAt: r.revokedAt.toISOString(), expiresAt: r.expiresAt.toISOString() };
}

/** The longest any token can live: a subject revocation is kept that long. */
function longestTtlSeconds(t: TokenConfig): number {
  return Math.max(t.maxTtlSeconds, t.adminTtlSeconds, t.userTtlSeconds, t.pilotTtlSeconds, t.jobTtlSeconds, t.pilotSessionTtlSeconds);
}

/** Who the token stands for and how long it lives; 400 for an incomplete or inconsistent request. */
function tokenSubject(t: TokenConfig, b: IssueTokenRequest): { principal: Principal; ttl: number } {
  const role = b.role ?? 'user';
  if (b.sites !== undefined && role !== 'site-admin') {
    throw new WmsError('WMS_VALIDATION', `sites is only for site-admin tokens (not ${role})`);
  }
  if (role === 'site-admin') {
    const problem = siteAdminSitesProblem(b.sites ?? []);
    if (problem) throw new WmsError('WMS_VALIDATION', problem);
  }
  if (role === 'pilot') {
    if (b.pilotId === undefined) throw new WmsError('WMS_VALIDATION', 'a pilot token needs pilotId');
    return { principal: { role, user: `pilot:${b.pilotId}`, vo: b.vo, pilotId: b.pilotId }, ttl: b.ttlSeconds ?? t.pilotTtlSeconds };
  }
  if (!b.user || !b.group || !isValidName(b.user) || !isValidName(b.group)) {
    throw new WmsError('WMS_VALIDATION', `a ${role} token needs user and group`);
  }
  return {
    principal: { role, user: b.user, vo: b.vo, group: b.group, ...(role === 'site-admin' ? { sites: [...new Set(b.sites)] } : {}) },
    ttl: b.ttlSeconds ?? t.userTtlSeconds,
  };
}

/** Issues a token to a person or a pilot (admins); 400 when the lifetime is above the maximum. */
export async function issueToken(
  ctx: ServiceContext,
  who: Principal,
  b: IssueTokenRequest,
  log?: Pick<Logger, 'info'>,
): Promise<IssuedToken> {
  const t = ctx.config.tokens;
  const { principal, ttl } = tokenSubject(t, b);
  if (ttl > t.maxTtlSeconds) {
    throw new WmsError('WMS_VALIDATION', `ttlSeconds above the maximum of ${t.maxTtlSeconds}`);
  }
  const { token, expiresAt } = await (await ctx.signer()).sign(principal, ttl);
  log?.info({ by: who.user, role: principal.role, user: principal.user, ...(b.sites ? { sites: b.sites } : {}) }, 'token issued');
  return { token, expiresAt: expiresAt.toISOString(), identity: principal };
}

/** The revocation row a request asks for; 400 unless it names exactly one thing to revoke. */
async function revocationOf(ctx: ServiceContext, who: Principal, b: RevokeTokenRequest): Promise<NewRevocation> {
  const now = ctx.clock();
  const forms = [b.token !== undefined, b.jti !== undefined, b.vo !== undefined || b.user !== undefined, b.pilotId !== undefined];
  if (forms.filter(Boolean).length !== 1) {
    throw new WmsError('WMS_VALIDATION', 'name one thing to revoke: token, or jti with expiresAt, or vo with user, or pilotId');
  }
  const common = { revokedAt: now, reason: b.reason ?? '', revokedBy: `${who.vo}/${who.user}` };
  const keptUntil = new Date(now.getTime() + longestTtlSeconds(ctx.config.tokens) * 1000);
  if (b.token !== undefined) {
    const facts = await (await ctx.signer()).facts(b.token);
    if (facts.jti === null) {
      throw new WmsError(
        'WMS_VALIDATION',
        `this token has no id (jti): revoke every token of its subject instead (vo ${facts.vo}, user ${facts.subject})`,
      );
    }
    return { ...common, jti: facts.jti, expiresAt: facts.expiresAt };
  }
  if (b.jti !== undefined) {
    if (b.expiresAt === undefined) throw new WmsError('WMS_VALIDATION', 'a jti needs expiresAt (when that token expires)');
    const expiresAt = new Date(b.expiresAt);
    if (Number.isNaN(expiresAt.getTime())) throw new WmsError('WMS_VALIDATION', `expiresAt "${b.expiresAt}" is not a date`);
    return { ...common, jti: b.jti, expiresAt };
  }
  if (b.pilotId !== undefined) return { ...common, vo: null, subject: `pilot:${b.pilotId}`, expiresAt: keptUntil };
  if (b.vo === undefined || b.user === undefined) throw new WmsError('WMS_VALIDATION', "a subject's revocation needs both vo and user");
  return { ...common, vo: b.vo, subject: b.user, expiresAt: keptUntil };
}

/** Revokes a token or every token of a subject (admins); this replica applies it at once. */
export async function revokeTokens(
  ctx: ServiceContext,
  who: Principal,
  b: RevokeTokenRequest,
  log?: Pick<Logger, 'info'>,
): Promise<RevocationAnswer> {
  const row = await revocationOf(ctx, who, b);
  const saved = await insertRevocation(ctx.handle, row);
  (await ctx.signer()).noteRevocation(saved);
  log?.info({ by: who.user, jti: saved.jti, vo: saved.vo, subject: saved.subject }, 'token revoked');
  return { revocation: revocationView(saved) };
}

/** The revocations still in force, newest first (admins). */
export async function listRevocations(ctx: ServiceContext, input: { limit?: number }): Promise<RevocationList> {
  const rows = await listRevocationRows(ctx.handle, { now: ctx.clock(), limit: input.limit ?? 100 });
  return { revocations: rows.map(revocationView) };
}
