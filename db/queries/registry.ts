/**
 * The minimal registry the matcher reads: sites and computing elements (with their bans) and
 * the queues of each CE (what a pilot there offers; read by explainJob). Typed drizzle builders.
 */
import { asc, eq, inArray, sql } from 'drizzle-orm';
import { dbOf, type DbOrHandle } from '../open-db.js';
import { ceQueues, computingElements, sites } from '../schema/index.js';

/** Creates a site or updates its description. */
export async function upsertSite(db: DbOrHandle, site: { name: string; description?: string }): Promise<void> {
  await dbOf(db)
    .insert(sites)
    .values({ name: site.name, description: site.description ?? '' })
    .onConflictDoUpdate({
      target: sites.name,
      set: { description: sql`coalesce(${site.description ?? null}, ${sites.description})`, updatedAt: sql`now()` },
    });
}

/** Bans or allows a site (creating it when unknown). A banned site gets no match. */
export async function setSiteBanned(db: DbOrHandle, name: string, banned: boolean, reason?: string): Promise<void> {
  const banReason = banned ? (reason ?? null) : null;
  await dbOf(db)
    .insert(sites)
    .values({ name, banned, banReason })
    .onConflictDoUpdate({ target: sites.name, set: { banned, banReason, updatedAt: sql`now()` } });
}

export interface ComputingElementInput {
  site: string;
  name: string;
  type: string;
  settings?: Record<string, unknown>;
}

/** Creates or updates a computing element (and its site when unknown); answers its id. */
export async function upsertComputingElement(db: DbOrHandle, ce: ComputingElementInput): Promise<number> {
  await dbOf(db).insert(sites).values({ name: ce.site }).onConflictDoNothing();
  const [row] = await dbOf(db)
    .insert(computingElements)
    .values({ site: ce.site, name: ce.name, type: ce.type, settings: ce.settings ?? {} })
    .onConflictDoUpdate({
      target: computingElements.name,
      set: { site: ce.site, type: ce.type, settings: ce.settings ?? {}, updatedAt: sql`now()` },
    })
    .returning({ id: computingElements.id });
  return row!.id;
}

/** The site of each named computing element that exists (name -> site). */
export async function computingElementSites(db: DbOrHandle, names: readonly string[]): Promise<Map<string, string>> {
  if (names.length === 0) return new Map();
  const r = await dbOf(db)
    .select({ name: computingElements.name, site: computingElements.site })
    .from(computingElements)
    .where(inArray(computingElements.name, [...names]));
  return new Map(r.map((x) => [x.name, x.site]));
}

/** Bans or allows a computing element by name; false when there is no such CE. */
export async function setComputingElementBanned(db: DbOrHandle, name: string, banned: boolean, reason?: string): Promise<boolean> {
  const r = await dbOf(db)
    .update(computingElements)
    .set({ banned, banReason: banned ? (reason ?? null) : null, updatedAt: sql`now()` })
    .where(eq(computingElements.name, name))
    .returning({ id: computingElements.id });
  return r.length > 0;
}

export interface CeQueueInput {
  /** The computing element's name. */
  ce: string;
  name: string;
  cpuTime?: number;
  processors?: number;
  ramMb?: number;
  gpus?: number;
  platform?: string | null;
  tags?: string[];
  allowedVos?: string[];
  maxWaitingPilots?: number;
  maxTotalPilots?: number;
  maxPilotsPerCycle?: number;
  nodePath?: string | null;
  settings?: Record<string, unknown>;
}

/** Creates or replaces a queue of an existing computing element; answers its id. */
export async function upsertCeQueue(db: DbOrHandle, q: CeQueueInput): Promise<number> {
  const [ce] = await dbOf(db).select({ id: computingElements.id }).from(computingElements).where(eq(computingElements.name, q.ce));
  if (!ce) throw new Error(`no computing element named ${q.ce}`);
  const values = {
    ceId: ce.id,
    name: q.name,
    cpuTime: q.cpuTime ?? 86400,
    processors: q.processors ?? 1,
    ramMb: q.ramMb ?? 2048,
    gpus: q.gpus ?? 0,
    platform: q.platform ?? null,
    tags: q.tags ?? [],
    allowedVos: q.allowedVos ?? [],
    maxWaitingPilots: q.maxWaitingPilots ?? 10,
    maxTotalPilots: q.maxTotalPilots ?? 100,
    maxPilotsPerCycle: q.maxPilotsPerCycle ?? 10,
    nodePath: q.nodePath ?? null,
    settings: q.settings ?? {},
  };
  const { ceId: _ceId, name: _name, ...set } = values;
  const [row] = await dbOf(db)
    .insert(ceQueues)
    .values(values)
    .onConflictDoUpdate({ target: [ceQueues.ceId, ceQueues.name], set: { ...set, updatedAt: sql`now()` } })
    .returning({ id: ceQueues.id });
  return row!.id;
}

/** A CE queue with its CE and site, bans included. */
export interface CeQueueView {
  queueId: number;
  queue: string;
  ce: string;
  ceType: string;
  site: string;
  cpuTime: number;
  processors: number;
  ramMb: number;
  gpus: number;
  platform: string | null;
  tags: string[];
  allowedVos: string[];
  siteBanned: boolean;
  siteBanReason: string | null;
  ceBanned: boolean;
  ceBanReason: string | null;
  maxWaitingPilots: number;
  maxTotalPilots: number;
  maxPilotsPerCycle: number;
  nodePath: string | null;
  /** Queue settings: `timeLimitSeconds`, `environment` (exported by the wrapper), `workDirs`, ... */
  settings: Record<string, unknown>;
  /** Backend settings of the CE. */
  ceSettings: Record<string, unknown>;
  /** CE health: no pilots before this time, and why (null when not paused). */
  pausedUntil: Date | null;
  pauseReason: string | null;
  pauseCount: number;
}

/** Every registered queue, by site, CE and queue name. */
export async function listCeQueues(db: DbOrHandle): Promise<CeQueueView[]> {
  const r = await dbOf(db)
    .select({
      queueId: ceQueues.id,
      queue: ceQueues.name,
      ce: computingElements.name,
      ceType: computingElements.type,
      site: sites.name,
      cpuTime: ceQueues.cpuTime,
      processors: ceQueues.processors,
      ramMb: ceQueues.ramMb,
      gpus: ceQueues.gpus,
      platform: ceQueues.platform,
      tags: ceQueues.tags,
      allowedVos: ceQueues.allowedVos,
      siteBanned: sites.banned,
      siteBanReason: sites.banReason,
      ceBanned: computingElements.banned,
      ceBanReason: computingElements.banReason,
      maxWaitingPilots: ceQueues.maxWaitingPilots,
      maxTotalPilots: ceQueues.maxTotalPilots,
      maxPilotsPerCycle: ceQueues.maxPilotsPerCycle,
      nodePath: ceQueues.nodePath,
      settings: ceQueues.settings,
      ceSettings: computingElements.settings,
      pausedUntil: ceQueues.pausedUntil,
      pauseReason: ceQueues.pauseReason,
      pauseCount: ceQueues.pauseCount,
    })
    .from(ceQueues)
    .innerJoin(computingElements, eq(computingElements.id, ceQueues.ceId))
    .innerJoin(sites, eq(sites.name, computingElements.site))
    .orderBy(asc(sites.name), asc(computingElements.name), asc(ceQueues.name));
  return r.map((x) => ({
    ...x,
    settings: x.settings as Record<string, unknown>,
    ceSettings: x.ceSettings as Record<string, unknown>,
  }));
}

/** One registered queue by id, or null. */
export async function getCeQueue(db: DbOrHandle, queueId: number): Promise<CeQueueView | null> {
  return (await listCeQueues(db)).find((q) => q.queueId === queueId) ?? null;
}

/** The ban state of a site and of a CE (null when not registered). */
export async function getBans(
  db: DbOrHandle,
  site: string,
  ce: string | undefined,
): Promise<{
  site: { banned: boolean; reason: string | null } | null;
  ce: { banned: boolean; reason: string | null; site: string } | null;
}> {
  const [s] = await dbOf(db).select({ banned: sites.banned, reason: sites.banReason }).from(sites).where(eq(sites.name, site));
  let c: { banned: boolean; reason: string | null; site: string } | undefined;
  if (ce !== undefined) {
    [c] = await dbOf(db)
      .select({ banned: computingElements.banned, reason: computingElements.banReason, site: computingElements.site })
      .from(computingElements)
      .where(eq(computingElements.name, ce));
  }
  return { site: s ?? null, ce: c ?? null };
}

/**
 * The names of every registered site (the site registry's `sites` table: what `wms site apply`,
 * the local site and `wms site ban` create; banned sites included, as DIRAC's configuration
 * still lists a banned site), sorted by code point. Read per submission, not cached: one scan
 * of a table of tens to hundreds of rows costs far less than the submission's own transaction,
 * and a site registered through any replica is known to every replica at once. Sites are never
 * removed, so a name read here is still registered when the jobs are stored.
 */
export async function registeredSiteNames(db: DbOrHandle): Promise<string[]> {
  const r = await dbOf(db).select({ name: sites.name }).from(sites);
  // Sorted here, by code point: the same order on every driver and collation.
  return r.map((x) => x.name).sort();
}
