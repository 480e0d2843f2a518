/**
 * Tokens: admins issue tokens to people (user, admin, site-admin) and to pilots
 * (`POST /api/tokens`, what `wms token issue` calls); anyone authenticated can ask who they are
 * (`GET /api/tokens/self`). Job tokens are minted only by the matcher. A site-admin token
 * names the sites it administers (`sites`, required, never the local site).
 * Admins revoke tokens (`/api/tokens/revocations`, below).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { WmsError } from '../../core/errors.js';
import { isValidName, siteAdminSitesProblem, type Principal } from '../../core/identity.js';
import { DbOutageLog, insertRevocation, listRevocations, type NewRevocation, type RevocationRow } from '../../db/index.js';
import type { PluginOptions } from '../context.js';
import type { TokenSigner } from '../token-signer.js';
import {
  IdentitySchema,
  IssuedTokenSchema,
  IssueTokenRequestSchema,
  ref,
  RevocationAnswerSchema,
  RevocationListSchema,
  RevokeTokenRequestSchema,
} from '../../api/index.js';
import { AUTH_ERRORS, errorResponses } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

export const tokensPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const t = ctx.config.tokens;
  await app.register(revocationsPlugin, { ctx });

  app.post(
    '/api/tokens',
    {
      onRequest: requireRole(ctx, 'admin'),
      schema: {
        tags: ['tokens'],
        summary: 'Issue a token (admins only): to a user, admin, site admin, or pilot',
        operationId: 'issueToken',
        security: BEARER,
        body: ref(IssueTokenRequestSchema),
        response: { 201: ref(IssuedTokenSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const role = b.role ?? 'user';
      let principal: Principal;
      let ttl: number;
      if (b.sites !== undefined && role !== 'site-admin') {
        throw new WmsError('WMS_VALIDATION', `sites is only for site-admin tokens (not ${role})`);
      }
      if (role === 'site-admin') {
        const problem = siteAdminSitesProblem(b.sites ?? []);
        if (problem) throw new WmsError('WMS_VALIDATION', problem);
      }
      if (role === 'pilot') {
        if (b.pilotId === undefined) throw new WmsError('WMS_VALIDATION', 'a pilot token needs pilotId');
        principal = { role, user: `pilot:${b.pilotId}`, vo: b.vo, pilotId: b.pilotId };
        ttl = b.ttlSeconds ?? t.pilotTtlSeconds;
      } else {
        if (!b.user || !b.group || !isValidName(b.user) || !isValidName(b.group)) {
          throw new WmsError('WMS_VALIDATION', `a ${role} token needs user and group`);
        }
        principal = { role, user: b.user, vo: b.vo, group: b.group, ...(role === 'site-admin' ? { sites: [...new Set(b.sites)] } : {}) };
        ttl = b.ttlSeconds ?? t.userTtlSeconds;
      }
      if (ttl > t.maxTtlSeconds) {
        throw new WmsError('WMS_VALIDATION', `ttlSeconds above the maximum of ${t.maxTtlSeconds}`);
      }
      const { token, expiresAt } = await (await ctx.signer()).sign(principal, ttl);
      request.log.info(
        { by: identityOf(request).user, role, user: principal.user, ...(b.sites ? { sites: b.sites } : {}) },
        'token issued',
      );
      return reply.code(201).send({ token, expiresAt: expiresAt.toISOString(), identity: principal });
    },
  );

  app.get(
    '/api/tokens/self',
    {
      onRequest: requireRole(ctx, 'user', 'admin', 'site-admin', 'pilot', 'job'),
      schema: {
        tags: ['tokens'],
        summary: 'Who the bearer token stands for',
        operationId: 'getIdentity',
        security: BEARER,
        response: { 200: ref(IdentitySchema), ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async (request) => identityOf(request),
  );
};

function revocationView(r: RevocationRow) {
  return { ...r, revokedAt: r.revokedAt.toISOString(), expiresAt: r.expiresAt.toISOString() };
}

/**
 * Revocation (admins): `POST /api/tokens/revocations` revokes one token (the token itself, or
 * its jti and expiry) or every token of a subject issued until now (`vo` + `user`, or `pilotId`
 * for a pilot's tokens in any VO); `GET /api/tokens/revocations` lists those still in force.
 * The row is read by every replica within `tokens.revocationPoll` (2 s); this one applies it at
 * once. Tokens issued to the same subject afterwards work.
 */
export const revocationsPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const t = ctx.config.tokens;
  const adminOnly = requireRole(ctx, 'admin');
  /** The longest any token can live: a subject revocation is kept that long. */
  const longestTtl = Math.max(
    t.maxTtlSeconds,
    t.adminTtlSeconds,
    t.userTtlSeconds,
    t.pilotTtlSeconds,
    t.jobTtlSeconds,
    t.pilotSessionTtlSeconds,
  );

  let polling: Promise<TokenSigner> | null = null;
  app.addHook('onReady', async () => {
    polling = ctx.signer();
    // An outage is logged once when it starts and once when it ends, not every poll.
    const outage = new DbOutageLog('token revocations', { warn: (m) => app.log.warn(m), info: (m) => app.log.info(m) });
    (await polling).startPolling(
      t.revocationPollSeconds,
      (e) => {
        if (!outage.failed(e)) app.log.warn({ err: e }, 'reading token revocations failed');
      },
      () => outage.ok(),
    );
  });
  app.addHook('onClose', async () => {
    if (polling) (await polling.catch(() => null))?.close();
  });

  app.post(
    '/api/tokens/revocations',
    {
      onRequest: adminOnly,
      schema: {
        tags: ['tokens'],
        summary: 'Revoke a token (token, or jti + expiresAt) or every token of a subject (vo + user, or pilotId) (admins)',
        operationId: 'revokeTokens',
        security: BEARER,
        body: ref(RevokeTokenRequestSchema),
        response: { 201: ref(RevocationAnswerSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const who = identityOf(request);
      const signer = await ctx.signer();
      const now = ctx.clock();
      const forms = [b.token !== undefined, b.jti !== undefined, b.vo !== undefined || b.user !== undefined, b.pilotId !== undefined];
      if (forms.filter(Boolean).length !== 1) {
        throw new WmsError('WMS_VALIDATION', 'name one thing to revoke: token, or jti with expiresAt, or vo with user, or pilotId');
      }
      const common = { revokedAt: now, reason: b.reason ?? '', revokedBy: `${who.vo}/${who.user}` };
      let row: NewRevocation;
      if (b.token !== undefined) {
        const facts = await signer.facts(b.token);
        if (facts.jti === null) {
          throw new WmsError(
            'WMS_VALIDATION',
            `this token has no id (jti): revoke every token of its subject instead (vo ${facts.vo}, user ${facts.subject})`,
          );
        }
        row = { ...common, jti: facts.jti, expiresAt: facts.expiresAt };
      } else if (b.jti !== undefined) {
        if (b.expiresAt === undefined) throw new WmsError('WMS_VALIDATION', 'a jti needs expiresAt (when that token expires)');
        const expiresAt = new Date(b.expiresAt);
        if (Number.isNaN(expiresAt.getTime())) throw new WmsError('WMS_VALIDATION', `expiresAt "${b.expiresAt}" is not a date`);
        row = { ...common, jti: b.jti, expiresAt };
      } else if (b.pilotId !== undefined) {
        row = { ...common, vo: null, subject: `pilot:${b.pilotId}`, expiresAt: new Date(now.getTime() + longestTtl * 1000) };
      } else {
        if (b.vo === undefined || b.user === undefined)
          throw new WmsError('WMS_VALIDATION', "a subject's revocation needs both vo and user");
        row = { ...common, vo: b.vo, subject: b.user, expiresAt: new Date(now.getTime() + longestTtl * 1000) };
      }
      const saved = await insertRevocation(ctx.handle, row);
      signer.noteRevocation(saved);
      request.log.info({ by: who.user, jti: saved.jti, vo: saved.vo, subject: saved.subject }, 'token revoked');
      return reply.code(201).send({ revocation: revocationView(saved) });
    },
  );

  app.get(
    '/api/tokens/revocations',
    {
      onRequest: adminOnly,
      schema: {
        tags: ['tokens'],
        summary: 'Revocations still in force, newest first (admins)',
        operationId: 'listRevocations',
        security: BEARER,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) }),
        response: { 200: ref(RevocationListSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const rows = await listRevocations(ctx.handle, { now: ctx.clock(), limit: request.query.limit ?? 100 });
      return { revocations: rows.map(revocationView) };
    },
  );
};
