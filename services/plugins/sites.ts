/**
 * The site registry for site admins: apply a registry document, list it, ban and allow sites
 * and computing elements, one site's status. Who may do what: `services/logic/sites.ts`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { PluginOptions } from '../context.js';
import { BanAnswerSchema, BanRequestSchema, QueueListSchema, ref, RegistryAppliedSchema, SiteStatusSchema } from '../../api/index.js';
import { applySites, changeBan, getSiteStatus, listSites } from '../logic/sites.js';
import { AUTH_ERRORS, errorResponses } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 256 }) });

export const sitesPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const siteAdmins = requireRole(ctx, 'admin', 'site-admin');

  app.put(
    '/api/sites',
    {
      onRequest: siteAdmins,
      schema: {
        tags: ['sites'],
        summary: 'Create or update the sites, computing elements and queues of a registry document',
        description:
          'Body: `{ sites: [...] }` as in site-configs/*.yaml. Secrets only as { env } or { file }; queue environment ' +
          'variables that hook into loaders and shells (LD_*, NODE_OPTIONS, BASH_ENV, ...) are refused (400). ' +
          'A site admin may only name the sites of its token, never the local site (403, nothing applied).',
        operationId: 'applySites',
        security: BEARER,
        body: Type.Unknown({ description: 'a site registry document `{ sites: [...] }` (core/site-config.ts)' }),
        response: { 200: ref(RegistryAppliedSchema), ...errorResponses(400, ...AUTH_ERRORS) },
      },
    },
    async (request) => applySites(ctx, identityOf(request), request.body, request.log),
  );

  app.get(
    '/api/sites',
    {
      onRequest: requireRole(ctx, 'admin', 'site-admin', 'user'),
      schema: {
        tags: ['sites'],
        summary: 'Every registered queue with its CE and site, bans and pauses',
        operationId: 'listSites',
        security: BEARER,
        response: { 200: ref(QueueListSchema), ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async () => listSites(ctx),
  );

  app.get(
    '/api/sites/:name/status',
    {
      onRequest: siteAdmins,
      schema: {
        tags: ['sites'],
        summary: "A site's queues: pilots by state, the last reasons pilots failed, paused or not",
        operationId: 'getSiteStatus',
        security: BEARER,
        params: NameParams,
        response: { 200: ref(SiteStatusSchema), ...errorResponses(...AUTH_ERRORS, 404) },
      },
    },
    async (request) => getSiteStatus(ctx, request.params),
  );

  for (const [kind, path, noun] of [
    ['site', '/api/sites/:name', 'Site'],
    ['computing element', '/api/computing-elements/:name', 'ComputingElement'],
  ] as const) {
    for (const banned of [true, false]) {
      app.post(
        `${path}/${banned ? 'ban' : 'allow'}`,
        {
          onRequest: siteAdmins,
          schema: {
            tags: ['sites'],
            summary: `${banned ? 'Ban' : 'Allow'} a ${kind}${banned ? ' (with a reason): it gets no pilots and no jobs' : ''}`,
            operationId: `${banned ? 'ban' : 'allow'}${noun}`,
            security: BEARER,
            params: NameParams,
            ...(banned ? { body: ref(BanRequestSchema) } : {}),
            response: { 200: ref(BanAnswerSchema), ...errorResponses(400, ...AUTH_ERRORS, 404) },
          },
        },
        async (request) => {
          const reason = banned ? (request.body as { reason: string }).reason : undefined;
          return changeBan(ctx, identityOf(request), { kind, name: request.params.name, banned, reason }, request.log);
        },
      );
    }
  }
};
