/**
 * The matcher (routes: `services/plugins/matcher.ts`): a pilot sends its resource description
 * and gets one job (its JDL and a freshly minted job token bound to that job) or
 * `{ match: null }`. "No match" is a normal answer for a pilot, not an error: it is a 200 so that
 * pilots and proxies never log it as a failure.
 *
 * Explain calls say why work does or does not flow: for a resource, every task queue
 * considered and why each was rejected; for a job, which registered queues could run it and
 * what stops it.
 *
 * Who: matching pilots and admins (for debugging); resource explain pilots, admins and site
 * admins; job explain the owner, admins, site admins.
 *
 * A pilot token is bound to its pilot record: the site, CE and queue matched are the record's,
 * whatever the body says (services/resource.ts), and the VO the token's. A pilot without a record
 * or in a final state (Done, Failed, Aborted, Deleted) gets 403 and nothing: that check runs
 * inside the claim statement, and the record's place (which never changes) is read once per
 * pilot and kept in memory, so the hot path pays no extra round trip.
 *
 * A pilot's body may carry `claimId`, its id of this match attempt: when an answer is lost the
 * pilot asks again with the same id and gets the job that attempt claimed (a fresh job token),
 * never a second one (db/queries/match.ts). Admins' claim ids are ignored.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { ownerScope, type JobPrincipal, type PilotPrincipal, type Principal } from '../../core/identity.js';
import { explainJob as explainJobRows, explainResource as explainResourceRows, matchJob as claimJob } from '../../db/index.js';
import type { ExplainJob, ExplainResource, MatchAnswer, Resource } from '../../api/index.js';
import type { ServiceContext } from '../context.js';
import { explainJobView, explainResourceView } from '../explain-view.js';
import { resourceOf, type PilotPlace } from '../resource.js';
import { requireLivePilot } from './pilots.js';

/** Where the token's pilot runs, read from its record; 403 when it has none or it is final. */
async function livePlace(ctx: ServiceContext, p: PilotPrincipal): Promise<PilotPlace> {
  const { site, ce, queue } = await requireLivePilot(ctx, p);
  return { site, ce, queue };
}

/** Pilot places remembered per process; beyond this the oldest is forgotten. */
const PLACE_CACHE_SIZE = 20_000;

/** The places of the pilots that matched through this process (a record's place never changes). */
class PilotPlaces {
  private readonly places = new Map<number, PilotPlace>();

  constructor(private readonly ctx: ServiceContext) {}

  /** The place of the token's pilot; 403 when it has no record or is final. */
  async of(p: PilotPrincipal): Promise<PilotPlace> {
    const known = this.places.get(p.pilotId);
    if (known) return known;
    const place = await livePlace(this.ctx, p);
    if (this.places.size >= PLACE_CACHE_SIZE) this.places.delete(this.places.keys().next().value as number);
    this.places.set(p.pilotId, place);
    return place;
  }
}

/** The pilot places of each service context (one per app). */
const placesByContext = new WeakMap<ServiceContext, PilotPlaces>();

function placesOf(ctx: ServiceContext): PilotPlaces {
  let places = placesByContext.get(ctx);
  if (!places) {
    places = new PilotPlaces(ctx);
    placesByContext.set(ctx, places);
  }
  return places;
}

/** A short-lived token for the matched job, bound to it and to the pilot that took it (admins: none). */
async function jobTokenOf(ctx: ServiceContext, job: JobPrincipal): Promise<{ token: string; tokenExpiresAt: string }> {
  const signer = await ctx.signer();
  const { token, expiresAt } = await signer.sign(job, ctx.config.tokens.jobTtlSeconds);
  return { token, tokenExpiresAt: expiresAt.toISOString() };
}

/** Claims one job for the resource (a pilot: at its record's place), with a job token; `{ match: null }` when none fits. */
export async function matchJob(ctx: ServiceContext, p: Principal, input: Resource, log?: Pick<Logger, 'debug'>): Promise<MatchAnswer> {
  const place = p.role === 'pilot' ? await placesOf(ctx).of(p) : undefined;
  const resource = resourceOf(input, p, place);
  const claimId = input.claimId;
  const pilot =
    p.role === 'pilot'
      ? { pilotId: p.pilotId, source: 'Matcher', livePilot: true, ...(claimId !== undefined ? { claimId } : {}) }
      : { source: 'Matcher' };
  const t0 = performance.now();
  const matched = await claimJob(ctx.handle, resource, pilot);
  if (!matched) {
    ctx.metrics.observeMatch(false, (performance.now() - t0) / 1000);
    return { match: null };
  }
  const jobPrincipal: JobPrincipal = {
    role: 'job',
    user: matched.owner,
    vo: matched.vo,
    group: matched.ownerGroup,
    jobId: Number(matched.id),
    pilotId: p.role === 'pilot' ? p.pilotId : null,
  };
  const { token, tokenExpiresAt } = await jobTokenOf(ctx, jobPrincipal);
  ctx.metrics.observeMatch(true, (performance.now() - t0) / 1000);
  log?.debug({ jobId: jobPrincipal.jobId, site: resource.site }, 'job matched');
  return {
    match: {
      jobId: jobPrincipal.jobId,
      jdl: matched.jdl,
      owner: matched.owner,
      ownerGroup: matched.ownerGroup,
      vo: matched.vo,
      token,
      tokenExpiresAt,
    },
  };
}

/** Each task queue considered for the resource (a pilot: at its record's place) and why it was rejected. */
export async function explainResource(ctx: ServiceContext, p: Principal, input: Resource): Promise<ExplainResource> {
  // Not the hot path: the record is read afresh, state included.
  const place = p.role === 'pilot' ? await livePlace(ctx, p) : undefined;
  const resource = resourceOf(input, p, place);
  return explainResourceView(await explainResourceRows(ctx.handle, resource));
}

/**
 * Which registered queues could run the job, and what stops it (the site director's rules at the
 * service's clock, and the matcher's); site admins see any job, users their own.
 */
export async function explainJob(ctx: ServiceContext, p: Principal, input: { id: number }): Promise<ExplainJob> {
  const scope = p.role === 'site-admin' ? {} : ownerScope(p);
  return explainJobView(await explainJobRows(ctx.handle, input.id, scope, ctx.clock()));
}
