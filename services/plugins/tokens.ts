/**
 * Tokens: admins issue tokens to people (user, admin, site-admin) and to pilots
 * (`POST /api/tokens`, what `wms token issue` calls); anyone authenticated can ask who they are
 * (`GET /api/tokens/self`). Job tokens are minted only by the matcher.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { WmsError } from '../../core/errors.js';
import { isValidName, type Principal } from '../../core/identity.js';
import type { PluginOptions } from '../context.js';
import { AUTH_ERRORS, errorResponses, RoleSchema } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

const NamePattern = '^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$';

const IssueBody = Type.Object(
  {
    user: Type.Optional(Type.String({ pattern: NamePattern, description: 'user name (people)' })),
    vo: Type.String({ pattern: NamePattern }),
    group: Type.Optional(Type.String({ pattern: NamePattern, description: 'group (people)' })),
    role: Type.Optional(
      Type.Union([Type.Literal('user'), Type.Literal('admin'), Type.Literal('site-admin'), Type.Literal('pilot')], {
        default: 'user',
      }),
    ),
    pilotId: Type.Optional(Type.Integer({ minimum: 1, description: 'pilot tokens: the pilot bound to' })),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, description: 'lifetime; default by role' })),
  },
  { additionalProperties: false },
);

const PrincipalSchema = Type.Object({
  role: RoleSchema,
  user: Type.String(),
  vo: Type.String(),
  group: Type.Optional(Type.String()),
  jobId: Type.Optional(Type.Integer()),
  pilotId: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
});

const IssueAnswer = Type.Object({
  token: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
  identity: PrincipalSchema,
});

export const tokensPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const t = ctx.config.tokens;

  app.post(
    '/api/tokens',
    {
      onRequest: requireRole(ctx, 'admin'),
      schema: {
        tags: ['tokens'],
        summary: 'Issue a token (admins only): to a user, admin, site admin, or pilot',
        security: BEARER,
        body: IssueBody,
        response: { 201: IssueAnswer, ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const role = b.role ?? 'user';
      let principal: Principal;
      let ttl: number;
      if (role === 'pilot') {
        if (b.pilotId === undefined) throw new WmsError('WMS_VALIDATION', 'a pilot token needs pilotId');
        principal = { role, user: `pilot:${b.pilotId}`, vo: b.vo, pilotId: b.pilotId };
        ttl = b.ttlSeconds ?? t.pilotTtlSeconds;
      } else {
        if (!b.user || !b.group || !isValidName(b.user) || !isValidName(b.group)) {
          throw new WmsError('WMS_VALIDATION', `a ${role} token needs user and group`);
        }
        principal = { role, user: b.user, vo: b.vo, group: b.group };
        ttl = b.ttlSeconds ?? t.userTtlSeconds;
      }
      if (ttl > t.maxTtlSeconds) {
        throw new WmsError('WMS_VALIDATION', `ttlSeconds above the maximum of ${t.maxTtlSeconds}`);
      }
      const { token, expiresAt } = await (await ctx.signer()).sign(principal, ttl);
      request.log.info({ by: identityOf(request).user, role, user: principal.user }, 'token issued');
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
        security: BEARER,
        response: { 200: PrincipalSchema, ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async (request) => identityOf(request),
  );
};
