/**
 * What a pilot offers (its resource description) and the match predicate between a resource
 * and a task queue. The SQL in db/queries/match.ts says the same thing for the hot path; this
 * pure version serves `explain` and the tests that keep the two in step
 * (tests/db/matching-agreement.test.ts).
 *
 * The rules (DIRAC's TaskQueueDB.__generateTQMatchSQL, with numbers instead of tag ladders):
 * - VO and owner groups: when the resource names them, the queue's must be among them.
 * - CPU time: the queue's (segmented) CPU time must fit the resource's CPU work.
 * - Sites, CEs, platforms: a queue with no list takes any; otherwise the resource's value must
 *   be in the list (a resource that names no CE or platform only takes unrestricted queues).
 *   A site in the queue's banned sites is refused.
 * - Job types: when the resource lists the types it accepts, a queue with types must share one.
 * - Tags: every tag of the queue must be offered by the resource; every tag the resource
 *   requires must be carried by the queue. Required tags count as offered, and so do the tags
 *   DIRAC's Matcher derives from the numbers (`impliedTag`): a resource with N processors offers
 *   `2Processors` .. `NProcessors` and, when N > 1, `MultiProcessor`; with R MB of memory it
 *   offers `2GB` .. `kGB`, k = R / 1000 rounded down. So a job that carries the tags DIRAC's
 *   JobScheduling derives (core/jdl/describe.ts) matches what it would match under DIRAC. The
 *   ladders stop at 1024 where DIRAC offers none at all above 1024.
 * - Processors, RAM (MB), GPUs: the queue's needs must not exceed what the resource offers
 *   (kept besides the tags: they are exact, the tags are whole GB).
 * A resource value `ANY` is not special here (DIRAC's wildcard is not supported).
 */
import type { JobRequirements } from './job-model.js';

export interface ResourceDescription {
  /** The site the pilot runs at (mandatory). */
  site: string;
  /** Computing element and queue the pilot came through. */
  ce?: string;
  queue?: string;
  platform?: string;
  /** Capabilities the resource offers; a task queue's tags must all be offered. */
  tags: string[];
  /** Tags a task queue must carry to be taken (multi-core pilots refusing single-core jobs). */
  requiredTags: string[];
  processors: number;
  ramMb: number;
  gpus: number;
  /** CPU work the pilot can still deliver: time left x DB12 score (normalized seconds). */
  cpuWork: number;
  /** Restrict to one VO (a pilot serves its VO), and optionally to some groups. */
  vo?: string;
  ownerGroups?: string[];
  /** Job types the resource accepts; absent means any (a banned site or CE gets no job at all). */
  jobTypes?: string[];
}

/** The fields of a task queue the predicate reads (JobRequirements minus owner and priority). */
export type TaskQueueRequirements = Omit<JobRequirements, 'owner' | 'priority'> & { owner?: string };

/** Why a task queue is not eligible for a resource; empty means it matches. */
export type MatchRejection = string;

function uniqueSorted(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}

/**
 * The resource as the matcher reads it: tags and required tags de-duplicated, required tags
 * added to the offered tags (a resource that requires a tag obviously offers it).
 */
export function normalizeResource(r: ResourceDescription): ResourceDescription {
  const requiredTags = uniqueSorted(r.requiredTags ?? []);
  return { ...r, tags: uniqueSorted([...(r.tags ?? []), ...requiredTags]), requiredTags };
}

/** The top of the `<n>Processors` and `<n>GB` ladders (DIRAC's Matcher: 1024). */
export const TAG_LADDER_TOP = 1024;

const PROCESSORS_TAG = /^([1-9][0-9]{0,3})Processors$/;
const GB_TAG = /^([1-9][0-9]{0,3})GB$/;

/**
 * True when the resource's numbers imply `tag`, as DIRAC's Matcher turns NumberOfProcessors and
 * MaxRAM into tags: `<n>Processors` for 2 <= n <= processors, `MultiProcessor` for more than one
 * processor, `<n>GB` for 2 <= n <= ramMb / 1000; n at most TAG_LADDER_TOP, written without
 * leading zeros. Tested tag by tag, so no ladder is ever built. The SQL twin is in
 * db/queries/match.ts (RESOURCE_CTE).
 */
export function impliedTag(r: Pick<ResourceDescription, 'processors' | 'ramMb'>, tag: string): boolean {
  const cores = Math.floor(r.processors);
  if (tag === 'MultiProcessor') return cores > 1;
  const p = PROCESSORS_TAG.exec(tag);
  if (p) return ladderHas(Number(p[1]), cores);
  const g = GB_TAG.exec(tag);
  if (g) return ladderHas(Number(g[1]), Math.floor(r.ramMb / 1000));
  return false;
}

function ladderHas(n: number, top: number): boolean {
  return n >= 2 && n <= TAG_LADDER_TOP && n <= top;
}

function set(values: readonly string[]): string {
  return `{${values.join(',')}}`;
}

/**
 * Every reason why `tq` cannot be matched by `resource`, in a fixed order; `[]` when it can.
 * Pure; mirrors the SQL predicate of the matcher exactly (apart from "has waiting jobs" and the
 * site and CE bans, which are not properties of the queue).
 */
export function rejectionsFor(tq: TaskQueueRequirements, resource: ResourceDescription): MatchRejection[] {
  const r = normalizeResource(resource);
  const out: string[] = [];
  if (r.vo !== undefined && tq.vo !== r.vo) out.push(`belongs to VO ${tq.vo}, resource serves VO ${r.vo}`);
  if (r.ownerGroups !== undefined && !r.ownerGroups.includes(tq.ownerGroup)) {
    out.push(`group ${tq.ownerGroup} is not among the resource's groups ${set(r.ownerGroups)}`);
  }
  if (tq.cpuTime > r.cpuWork) out.push(`CPU time ${tq.cpuTime} > resource CPU work ${r.cpuWork}`);
  if (tq.sites.length > 0 && !tq.sites.includes(r.site)) {
    out.push(`needs site in ${set(tq.sites)}, resource is at ${r.site}`);
  }
  if (tq.bannedSites.includes(r.site)) out.push(`bans site ${r.site}`);
  if (tq.gridCEs.length > 0 && (r.ce === undefined || !tq.gridCEs.includes(r.ce))) {
    out.push(`needs CE in ${set(tq.gridCEs)}, ${r.ce === undefined ? 'resource names no CE' : `resource CE is ${r.ce}`}`);
  }
  if (tq.platforms.length > 0 && (r.platform === undefined || !tq.platforms.includes(r.platform))) {
    out.push(
      `needs platform in ${set(tq.platforms)}, ${r.platform === undefined ? 'resource states no platform' : `resource platform is ${r.platform}`}`,
    );
  }
  if (r.jobTypes !== undefined && tq.jobTypes.length > 0 && !tq.jobTypes.some((t) => r.jobTypes!.includes(t))) {
    out.push(`job type ${set(tq.jobTypes)} not accepted, resource takes ${set(r.jobTypes)}`);
  }
  for (const tag of tq.tags) if (!r.tags.includes(tag) && !impliedTag(r, tag)) out.push(`tag ${tag} not offered`);
  for (const tag of r.requiredTags) if (!tq.tags.includes(tag)) out.push(`resource requires tag ${tag}, queue lacks it`);
  if (tq.processors > r.processors) out.push(`needs ${tq.processors} processors, resource offers ${r.processors}`);
  if (tq.ramMb > r.ramMb) out.push(`needs ${tq.ramMb} MB RAM, resource offers ${r.ramMb}`);
  if (tq.gpus > r.gpus) out.push(`needs ${tq.gpus} GPUs, resource offers ${r.gpus}`);
  return out;
}

/** True when the task queue fits the resource. */
export function matches(tq: TaskQueueRequirements, resource: ResourceDescription): boolean {
  return rejectionsFor(tq, resource).length === 0;
}

/**
 * The keys of a fair-share draw: Exp(1) / weight for each queue; the queues in increasing key
 * order are the draw. The smallest of independent Exp(w_i) is queue i with probability exactly
 * w_i / sum(w) (the exponential race; the whole order is a weighted sample without replacement,
 * Efraimidis-Spirakis), and passing over queues that turn out empty keeps the rest in
 * proportion. DIRAC's `random() / p` is not proportional: with weights 2 and 1 the first wins
 * 3/4 of the time, not 2/3. `1 - random()` lies in (0, 1].
 */
export function fairShareKeys(weights: readonly number[], random: () => number): Float64Array {
  const keys = new Float64Array(weights.length);
  for (let i = 0; i < weights.length; i++) keys[i] = -Math.log(1 - random()) / weights[i]!;
  return keys;
}

/**
 * The ids with the `count` smallest keys (all of them when `count` is absent), in key order.
 * For a small `count` this is one pass with a short sorted buffer, not a sort of every queue.
 */
export function orderByKeys(ids: readonly number[], keys: Float64Array, count = ids.length): number[] {
  if (count >= ids.length) {
    return ids
      .map((_, i) => i)
      .sort((a, b) => keys[a]! - keys[b]!)
      .map((i) => ids[i]!);
  }
  const best: number[] = []; // indices, keys increasing
  for (let i = 0; i < ids.length; i++) {
    const k = keys[i]!;
    if (best.length === count && k >= keys[best[count - 1]!]!) continue;
    let at = best.length;
    while (at > 0 && keys[best[at - 1]!]! > k) at--;
    best.splice(at, 0, i);
    if (best.length > count) best.pop();
  }
  return best.map((i) => ids[i]!);
}

/** The whole fair-share order of `ids` with `weights` (see fairShareKeys). */
export function fairShareOrder(ids: readonly number[], weights: readonly number[], random: () => number): number[] {
  return orderByKeys(ids, fairShareKeys(weights, random));
}
