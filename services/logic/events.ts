/**
 * What the event websocket (`GET /api/events`, routes: `services/plugins/events.ts`) lets each
 * caller follow, and what it sends them.
 *
 * Who: people only (user, admin, site-admin): a bad token is refused with 401 before the
 * upgrade, another role with 403. `jobs: "all"` is for admins, `pilots` for admins and site
 * admins (a site admin gets the pilot and site events of the sites its token administers only).
 * A user only ever sees their own jobs, of their VO: other owners' jobs (and those of the same
 * name in another VO) are "not found". Site events (bans and pauses) go to every subscriber
 * (the registry is public), site admins those of their own sites.
 *
 * Messages: the client sends
 *   `{ "subscribe": { "jobs": [ids] | "mine" | "all", "pilots": true, "sites": true } }`
 * (each key optional; a new message replaces the previous subscription; `{}` stops). The answer
 * is the current state of each listed job the caller may see (a `job` event), then
 *   `{ "type": "subscribed", "jobs": [found ids] | "mine" | "all" | null, "notFound": [ids], "pilots", "sites" }`,
 * then every change after that state, per job in order, and `{ type: "error", code, message }`
 * for a refused or malformed message (the socket stays open).
 */
import type { Logger } from 'pino';
import { WmsError } from '../../core/errors.js';
import type { JobEvent, PilotEvent, SiteEvent } from '../../core/events.js';
import {
  inScope,
  managesSite,
  ownerScope,
  PERSON_ROLES,
  type OwnerScope,
  type PersonPrincipal,
  type PersonRole,
} from '../../core/identity.js';
import { asDbUnavailable, currentJobStates, latestJobHistoryId, type JobHistoryChange, type PilotChange } from '../../db/index.js';
import type { ServiceContext } from '../context.js';

const MAX_JOB_IDS = 10_000;

export interface Subscription {
  jobs: number[] | 'mine' | 'all' | null;
  pilots: boolean;
  sites: boolean;
}

const NOTHING: Subscription = { jobs: null, pilots: false, sites: false };

/** An error message to a subscriber (the socket stays open). */
export interface EventError {
  type: 'error';
  code: string;
  message: string;
}

/** Sent to each subscriber when the change feed cannot be read (once per outage). */
export const DB_DOWN_MESSAGE = {
  type: 'error',
  code: 'WMS_DB_UNAVAILABLE',
  message: 'database unavailable: changes are sent again once it is back',
} as const;

/** Where a subscriber is registered to receive the changes (the process's change feed). */
export interface SubscriberFeed {
  /** Registers (or re-registers) the subscriber; resolves once its changes flow. */
  add(sub: Subscriber): Promise<void>;
  remove(sub: Subscriber): void;
}

function jobEvent(c: JobHistoryChange): JobEvent {
  return {
    type: 'job',
    id: c.jobId,
    status: c.status,
    minorStatus: c.minorStatus,
    applicationStatus: c.applicationStatus,
    site: c.site,
    at: c.at.toISOString(),
  };
}

function pilotEvent(p: PilotChange): PilotEvent {
  return { type: 'pilot', id: p.id, status: p.status, statusReason: p.statusReason, site: p.site, ce: p.ce, at: p.at.toISOString() };
}

/** One websocket client: its principal, subscription and per-job cursors; it decides what reaches it. */
export class Subscriber {
  spec: Subscription = NOTHING;
  /** Per job, the newest history id delivered: nothing older or equal goes out again. */
  jobCursor = new Map<number, number>();
  /** `mine` / `all`: history ids after this one. */
  streamFrom = 0;
  /** Changes seen while the subscription's current state is being read (null: live). */
  buffer: JobHistoryChange[] | null = null;
  /** Set when its socket closed: it is never (re-)added to the feed. */
  closed = false;
  /** Which jobs it may see at all: its own (VO, name) for users, every job for admins. */
  private readonly scope: OwnerScope;

  /** `sink` sends one message to the client (nothing once its socket is no longer open). */
  constructor(
    readonly principal: PersonPrincipal,
    private readonly sink: (message: unknown) => void,
  ) {
    this.scope = ownerScope(principal);
  }

  send(message: unknown): void {
    this.sink(message);
  }

  get wantsJobs(): boolean {
    return this.spec.jobs !== null;
  }

  offerJob(c: JobHistoryChange): void {
    if (this.buffer) this.buffer.push(c);
    else this.deliverJob(c);
  }

  deliverJob(c: JobHistoryChange): void {
    const jobs = this.spec.jobs;
    if (jobs === null) return;
    // The scope first: another owner's job (or the same name's in another VO) never goes out.
    if (!inScope(this.scope, c)) return;
    const last = this.jobCursor.get(c.jobId);
    if (Array.isArray(jobs)) {
      if (last === undefined || c.historyId <= last) return;
    } else {
      if (jobs === 'mine' && (c.owner !== this.principal.user || c.vo !== this.principal.vo)) return;
      if (c.historyId <= (last ?? this.streamFrom)) return;
    }
    this.jobCursor.set(c.jobId, c.historyId);
    this.send(jobEvent(c));
  }

  offerPilot(p: PilotChange): void {
    // Site admins: only the pilots of the sites they administer.
    if (this.spec.pilots && (this.principal.role !== 'site-admin' || managesSite(this.principal, p.site))) this.send(pilotEvent(p));
  }

  offerSite(e: SiteEvent): void {
    // Users see every site's bans and pauses (the registry is public); site admins their own sites'.
    if (this.spec.sites && (this.principal.role !== 'site-admin' || managesSite(this.principal, e.site))) this.send(e);
  }
}

function isPersonRole(r: string): r is PersonRole {
  return (PERSON_ROLES as readonly string[]).includes(r);
}

/** The person behind the upgrade request's token; 401 without a valid token, 403 for another role. */
export async function authenticateFollower(ctx: ServiceContext, token: string | null): Promise<PersonPrincipal> {
  if (!token) throw new WmsError('WMS_AUTH_MISSING', 'authentication required: no bearer token (header or ?token=)');
  const principal = await (await ctx.signer()).verify(token);
  if (!isPersonRole(principal.role)) throw new WmsError('WMS_FORBIDDEN', `role ${principal.role} may not follow events`);
  return principal as PersonPrincipal;
}

/** Reads a subscription message; throws WMS_VALIDATION / WMS_FORBIDDEN. */
export function parseSubscription(message: unknown, p: PersonPrincipal): Subscription {
  const sub = (message as { subscribe?: unknown } | null)?.subscribe;
  if (typeof sub !== 'object' || sub === null || Array.isArray(sub)) {
    throw new WmsError('WMS_VALIDATION', 'expected {"subscribe": {"jobs": [ids] | "mine" | "all", "pilots": true, "sites": true}}');
  }
  const { jobs, pilots, sites, ...rest } = sub as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new WmsError('WMS_VALIDATION', `unknown subscription key ${unknown.join(', ')} (jobs, pilots, sites)`);
  let j: Subscription['jobs'] = null;
  if (Array.isArray(jobs)) {
    if (jobs.length > MAX_JOB_IDS) throw new WmsError('WMS_VALIDATION', `at most ${MAX_JOB_IDS} job ids`);
    if (!jobs.every((x) => Number.isSafeInteger(x) && (x as number) > 0))
      throw new WmsError('WMS_VALIDATION', 'jobs: positive integer ids');
    j = [...new Set(jobs as number[])];
  } else if (jobs === 'mine' || jobs === 'all') {
    if (jobs === 'all' && p.role !== 'admin') throw new WmsError('WMS_FORBIDDEN', 'jobs "all" is for admins ("mine" or ids)');
    j = jobs;
  } else if (jobs !== undefined && jobs !== null) {
    throw new WmsError('WMS_VALIDATION', 'jobs: an array of ids, "mine" or "all"');
  }
  for (const [k, v] of [
    ['pilots', pilots],
    ['sites', sites],
  ] as const) {
    if (v !== undefined && typeof v !== 'boolean') throw new WmsError('WMS_VALIDATION', `${k}: true or false`);
  }
  if (pilots === true && p.role !== 'admin' && p.role !== 'site-admin') {
    throw new WmsError('WMS_FORBIDDEN', 'pilot events are for admins and site admins');
  }
  return { jobs: j, pilots: pilots === true, sites: sites === true };
}

/**
 * Takes a subscription message: replaces the subscriber's subscription, sends the current state
 * of the jobs it lists (those the caller may see) and the `subscribed` answer. Changes made
 * while that state is read wait, and follow it in order.
 */
export async function subscribe(ctx: ServiceContext, sub: Subscriber, raw: string, feed: SubscriberFeed): Promise<void> {
  if (sub.closed) return;
  let message: unknown;
  try {
    message = JSON.parse(raw);
  } catch {
    throw new WmsError('WMS_VALIDATION', 'messages are JSON');
  }
  const spec = parseSubscription(message, sub.principal);
  sub.spec = spec;
  sub.jobCursor = new Map();
  if (spec.jobs === null && !spec.pilots && !spec.sites) {
    feed.remove(sub);
    sub.send({ type: 'subscribed', jobs: null, notFound: [], pilots: false, sites: false });
    return;
  }
  // Registered before the current state is read, changes meanwhile wait in the buffer.
  sub.buffer = [];
  try {
    await feed.add(sub);
    let notFound: number[] = [];
    let jobs: Subscription['jobs'] = spec.jobs;
    if (Array.isArray(spec.jobs)) {
      const now = await currentJobStates(ctx.handle, spec.jobs, ownerScope(sub.principal));
      for (const s of now) {
        sub.jobCursor.set(s.jobId, s.historyId);
        sub.send(jobEvent(s));
      }
      const found = new Set(now.map((s) => s.jobId));
      jobs = spec.jobs.filter((id) => found.has(id));
      notFound = spec.jobs.filter((id) => !found.has(id));
    } else if (spec.jobs !== null) {
      sub.streamFrom = await latestJobHistoryId(ctx.handle);
    }
    sub.send({ type: 'subscribed', jobs, notFound, pilots: spec.pilots, sites: spec.sites });
  } finally {
    const waiting = sub.buffer;
    sub.buffer = null;
    for (const c of waiting) sub.deliverJob(c);
  }
}

/**
 * The error message for a subscription that failed: a refusal says why, the database away
 * says so (as the HTTP routes answer, no driver text), anything else is logged and kept vague.
 */
export function subscriptionError(thrown: unknown, log?: Pick<Logger, 'warn'>): EventError {
  const e = asDbUnavailable(thrown);
  const known = e instanceof WmsError;
  if (!known) log?.warn({ err: e }, 'event stream: subscription failed');
  const dbDown = known && e.code === 'WMS_DB_UNAVAILABLE';
  if (dbDown) log?.warn({ err: e }, 'event stream: subscription failed, database unavailable');
  return {
    type: 'error',
    code: known ? e.code : 'WMS_UNAVAILABLE',
    message: dbDown ? 'database unavailable, subscribe again later' : known ? e.message : 'the subscription failed; try again',
  };
}
