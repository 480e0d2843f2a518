/**
 * The site registry (routes: `services/plugins/sites.ts`): apply a registry document (validated
 * here again, every problem with its path; applied in one transaction), list it, ban and allow
 * sites and computing elements, and one site's status (per queue: pilots by state, the last
 * reasons pilots failed, whether it is paused). Changes take effect on the next site-director
 * cycle.
 *
 * Who changes what: admins every site; a site admin only the sites of its token's `sites`
 * claim (a document naming another site, or a CE that belongs to another site, is refused
 * whole with 403 naming it), and never the local site (`Local.localhost`: its pilots run on
 * the server's machine). Reading the registry and a site's status is open to every site admin
 * (nothing there is secret); the list of queues to users too.
 */
import type { Logger } from 'pino';
import { WmsError } from '../../core/errors.js';
import { siteRefusal, type Principal } from '../../core/identity.js';
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
import type { BanAnswer, Queue, QueueList, RegistryApplied, SiteStatus } from '../../api/index.js';
import type { ServiceContext } from '../context.js';

/** A ban or its lifting: of a site, or of a computing element (by name). */
export interface BanChange {
  kind: 'site' | 'computing element';
  name: string;
  banned: boolean;
  /** Why (bans only). */
  reason?: string;
}

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

/** Applies a registry document: 400 with every problem, 403 (nothing applied) naming a site the caller may not change. */
export async function applySites(
  ctx: ServiceContext,
  who: Principal,
  document: unknown,
  log?: Pick<Logger, 'info'>,
): Promise<RegistryApplied> {
  const problems = siteRegistryProblems(document);
  if (problems.length > 0) {
    throw new WmsError('WMS_VALIDATION', `the site registry document has ${problems.length} problem(s): ${problems[0]}`, {
      details: { problems: problems.map((message) => ({ message, path: message.split(':')[0] })) },
    });
  }
  const result = await applySiteRegistry(ctx.handle, document as SiteRegistry, { siteRefusal: (site) => siteRefusal(who, site) });
  log?.info({ ...result, by: who.user, role: who.role }, 'site registry applied');
  await ctx.notices.publish({ kind: 'sites-changed' }); // every replica's event stream reads at once
  return result;
}

/** Every registered queue with its CE and site, bans and pauses. */
export async function listSites(ctx: ServiceContext): Promise<QueueList> {
  return { queues: (await listCeQueues(ctx.handle)).map(queueView) };
}

/** A site's queues: pilots by state, the last reasons pilots failed, paused or not (404: no such site). */
export async function getSiteStatus(ctx: ServiceContext, input: { name: string }): Promise<SiteStatus> {
  const status = await siteStatus(ctx.handle, input.name);
  if (!status) throw new WmsError('WMS_NOT_FOUND', `no site ${input.name}`);
  return {
    site: input.name,
    queues: status.map((s) => ({
      ...queueView(s.queue),
      pilots: s.pilots as Record<string, number>,
      lastFailures: s.lastFailures.map((f) => ({ ...f, at: f.at.toISOString() })),
    })),
  };
}

/** Bans or allows a site or a computing element the caller administers (403 otherwise, 404 when there is none). */
export async function changeBan(ctx: ServiceContext, who: Principal, input: BanChange, log?: Pick<Logger, 'info'>): Promise<BanAnswer> {
  const { kind, name, banned, reason } = input;
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
  log?.info({ kind, name, banned, reason, by: who.user, role: who.role }, 'registry ban changed');
  await ctx.notices.publish({ kind: 'sites-changed' }); // every replica's event stream reads at once
  return { name, banned };
}
