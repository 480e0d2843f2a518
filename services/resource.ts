/**
 * From the body of `POST /api/match` (and explain) to a `ResourceDescription`: defaults filled
 * in, a pilot held to its own VO and to the site, CE and queue of its record, required tags
 * checked. Pure.
 *
 * A pilot token's body may name a site, CE or queue (pilots send their own): whatever it names,
 * the pilot's record decides (`bound`), so a stolen token cannot pose as another site. Admins
 * calling the matcher for debugging name any site.
 */
import { WmsError } from '../core/errors.js';
import { ANY_VO, type Principal } from '../core/identity.js';
import type { ResourceDescription } from '../core/matching.js';
import type { Resource as ResourceBody } from '../api/index.js';

/** Where a pilot runs, from its record (never from its request). */
export interface PilotPlace {
  site: string;
  ce: string;
  queue: string;
}

/** The resource with defaults filled in; a pilot is held to its own VO and to `bound`. */
export function resourceOf(body: ResourceBody, p: Principal, bound?: PilotPlace): ResourceDescription {
  if (p.role === 'pilot' && bound === undefined) {
    throw new WmsError('WMS_FORBIDDEN', `pilot ${p.pilotId} has no record: its token no longer works`);
  }
  const r: ResourceDescription = {
    site: body.site,
    tags: body.tags ?? [],
    requiredTags: body.requiredTags ?? [],
    processors: body.processors ?? 1,
    ramMb: body.ramMb ?? 0,
    gpus: body.gpus ?? 0,
    cpuWork: body.cpuWork,
  };
  if (body.ce !== undefined) r.ce = body.ce;
  if (body.queue !== undefined) r.queue = body.queue;
  if (body.platform !== undefined) r.platform = body.platform;
  if (body.ownerGroups !== undefined) r.ownerGroups = body.ownerGroups;
  if (body.jobTypes !== undefined) r.jobTypes = body.jobTypes;
  if (p.role === 'pilot' && bound !== undefined) {
    r.site = bound.site;
    r.ce = bound.ce;
    r.queue = bound.queue;
  }
  if (p.role === 'pilot' && p.vo === ANY_VO) {
    // A pilot of a queue open to every VO: it may ask for one, or take any.
    if (body.vo !== undefined) r.vo = body.vo;
  } else if (p.role === 'pilot') {
    if (body.vo !== undefined && body.vo !== p.vo) {
      throw new WmsError('WMS_FORBIDDEN', `this pilot serves VO ${p.vo}, not ${body.vo}`);
    }
    r.vo = p.vo;
  } else if (body.vo !== undefined) {
    r.vo = body.vo;
  }
  const missing = r.requiredTags.filter((t) => !r.tags.includes(t));
  if (missing.length > 0) {
    throw new WmsError('WMS_VALIDATION', `required tags must also be offered: ${missing.join(', ')}`, {
      details: { problems: [{ message: `not in tags: ${missing.join(', ')}`, path: 'body/requiredTags' }] },
    });
  }
  return r;
}
