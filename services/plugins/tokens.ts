/**
 * Tokens: issuing (admins), who a token stands for (anyone authenticated), and revocation
 * (admins; polled by every replica). Who may do what: `services/logic/tokens.ts`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { DbOutageLog } from '../../db/index.js';
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
import { issueToken, listRevocations, revokeTokens } from '../logic/tokens.js';
import { AUTH_ERRORS, errorResponses } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

export const tokensPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
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
      const issued = await issueToken(ctx, identityOf(request), request.body, request.log);
      return reply.code(201).send(issued);
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

/** Revocation (admins), and this replica's polling of the revocations made by others. */
export const revocationsPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const adminOnly = requireRole(ctx, 'admin');

  let polling: Promise<TokenSigner> | null = null;
  app.addHook('onReady', async () => {
    polling = ctx.signer();
    // An outage is logged once when it starts and once when it ends, not every poll.
    const outage = new DbOutageLog('token revocations', { warn: (m) => app.log.warn(m), info: (m) => app.log.info(m) });
    (await polling).startPolling(
      ctx.config.tokens.revocationPollSeconds,
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
      const answer = await revokeTokens(ctx, identityOf(request), request.body, request.log);
      return reply.code(201).send(answer);
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
    async (request) => listRevocations(ctx, request.query),
  );
};
