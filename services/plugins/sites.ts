/**
 * The site registry for site admins: apply a registry document (validated here again, every
 * problem with its path; applied in one transaction), list it, ban and allow sites and
 * computing elements, and one site's status (per queue: pilots by state, the last reasons
 * pilots failed, whether it is paused). Changes take effect on the next site-director cycle.
 *
 * Who changes what: admins every site; a site admin only the sites of its token's `sites`
 * claim (a document naming another site, or a CE that belongs to another site, is refused
 * whole with 403 naming it), and never the local site (`Local.localhost`: its pilots run on
 * the server's machine). Reading the registry and a site's status is open to every site admin
 * (nothing there is secret).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { WmsError } from '../../core/errors.js';
import { siteRefusal } from '../../core/identity.js';
import { siteRegistryProblems, type SiteRegistry } from '../../core/site-config.js';
import {
  applySiteRegistry,
  getBans,
  listCeQueues,
  setComputingElementBanned,
  setSiteBanned,
  siteStatus,
  type CeQueueView,
} from '../../db/index.js';
import type { PluginOptions } from '../context.js';
import {
  BanAnswerSchema,
  BanRequestSchema,
  QueueListSchema,
  ref,
  RegistryAppliedSchema,
  SiteStatusSchema,
  type Queue,
} from '../../api/index.js';
import { AUTH_ERRORS, errorResponses } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

function queueView(q: CeQueueView): Queue {
  return {
    queue: q.queue,
    ce: q.ce,
    ceType: q.ceType,
    site: q.site,
    cpuTime: q.cpuTime,
    processors: q.processors,
    ramMb: q.ramMb,
    gpus: q.gpus,
    platform: q.platform,
    tags: q.tags,
    allowedVos: q.allowedVos,
    maxWaitingPilots: q.maxWaitingPilots,
    maxTotalPilots: q.maxTotalPilots,
    maxPilotsPerCycle: q.maxPilotsPerCycle,
    siteBanned: q.siteBanned,
    siteBanReason: q.siteBanReason,
    ceBanned: q.ceBanned,
    ceBanReason: q.ceBanReason,
    pausedUntil: q.pausedUntil && q.pausedUntil > new Date() ? q.pausedUntil.toISOString() : null,
    pauseReason: q.pausedUntil && q.pausedUntil > new Date() ? q.pauseReason : null,
  };
}

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
    async (request) => {
      const problems = siteRegistryProblems(request.body);
      if (problems.length > 0) {
        throw new WmsError('WMS_VALIDATION', `the site registry document has ${problems.length} problem(s): ${problems[0]}`, {
          details: { problems: problems.map((message) => ({ message, path: message.split(':')[0] })) },
        });
      }
      const who = identityOf(request);
      const result = await applySiteRegistry(ctx.handle, request.body as SiteRegistry, { siteRefusal: (site) => siteRefusal(who, site) });
      request.log.info({ ...result, by: who.user, role: who.role }, 'site registry applied');
      return result;
    },
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
    async () => ({ queues: (await listCeQueues(ctx.handle)).map(queueView) }),
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
    async (request) => {
      const status = await siteStatus(ctx.handle, request.params.name);
      if (!status) throw new WmsError('WMS_NOT_FOUND', `no site ${request.params.name}`);
      return {
        site: request.params.name,
        queues: status.map((s) => ({
          ...queueView(s.queue),
          pilots: s.pilots as Record<string, number>,
          lastFailures: s.lastFailures.map((f) => ({ ...f, at: f.at.toISOString() })),
        })),
      };
    },
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
          const { name } = request.params;
          const who = identityOf(request);
          const reason = banned ? (request.body as { reason: string }).reason : undefined;
          if (kind === 'site') {
            const refusal = siteRefusal(who, name);
            if (refusal) throw new WmsError('WMS_FORBIDDEN', refusal);
            if ((await getBans(ctx.handle, name, undefined)).site === null)
              throw new WmsError('WMS_NOT_FOUND', `no site ${name} (see wms site list)`);
            await setSiteBanned(ctx.handle, name, banned, reason);
          } else {
            const ce = (await getBans(ctx.handle, '', name)).ce;
            if (ce === null) throw new WmsError('WMS_NOT_FOUND', `no computing element ${name} (see wms site list)`);
            const refusal = siteRefusal(who, ce.site);
            if (refusal) throw new WmsError('WMS_FORBIDDEN', `computing element ${name} belongs to site ${ce.site}: ${refusal}`);
            if (!(await setComputingElementBanned(ctx.handle, name, banned, reason))) {
              throw new WmsError('WMS_NOT_FOUND', `no computing element ${name} (see wms site list)`);
            }
          }
          request.log.info({ kind, name, banned, reason, by: who.user, role: who.role }, 'registry ban changed');
          return { name, banned };
        },
      );
    }
  }
};
