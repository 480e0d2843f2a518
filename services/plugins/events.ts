/**
 * `GET /api/events`: a websocket on which the services push job, pilot and site changes (the
 * dashboard's live views and the CLI's `--wait`).
 *
 * Authentication on the upgrade request: `Authorization: Bearer <token>`, or `?token=<token>`
 * for browsers (they cannot set headers on a WebSocket). The query form ends up in the access
 * logs of proxies in front of the services: prefer the header, and give browsers short-lived
 * tokens. People only (user, admin, site-admin); a bad token is refused with 401 before the
 * upgrade, another role with 403.
 *
 * Protocol (JSON text frames). The client sends
 *   `{ "subscribe": { "jobs": [ids] | "mine" | "all", "pilots": true, "sites": true } }`
 * (each key optional; a new message replaces the previous subscription; `{}` stops). `"all"`
 * is for admins, `pilots` for admins and site admins (a site admin gets the pilot and site
 * events of the sites its token administers only). The server answers with the current state
 * of each listed job the caller may see (a `job` event), then
 *   `{ "type": "subscribed", "jobs": [found ids] | "mine" | "all" | null, "notFound": [ids], "pilots", "sites" }`,
 * then every change after that state, per job in order:
 *   `{ type: "job", id, status, minorStatus, applicationStatus, site, at }`
 *   `{ type: "pilot", id, status, statusReason, site, ce, at }`
 *   `{ type: "site", kind: "site" | "ce" | "queue", site, ce, queue, banned, paused, pausedUntil, reason, at }`
 * and `{ type: "error", code, message }` for a refused or malformed message (the socket stays
 * open). While the database is away the poller retries at its pace and logs the outage once;
 * each subscriber gets `{ type: "error", code: "WMS_DB_UNAVAILABLE" }` once when it starts
 * (the socket stays open, cursors are kept: the changes made meanwhile follow once it is
 * back), and a subscription message then is answered with that error. A user only ever sees
 * their own jobs, of their VO: other owners' jobs (and those of the same name in another VO)
 * are "not found".
 *
 * Source: the database (`db/queries/changes.ts`), so changes made by other replicas and by
 * agents in other processes are seen. ONE poller per process and database (`ChangeFeed`) reads
 * the change feed every EVENTS_POLL_MS while anyone is subscribed and fans out to subscribers,
 * each filtered by its scope; it stops when the last one leaves. Pings every EVENTS_PING_MS; a
 * client that missed a pong is dropped.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { WebSocket } from '@fastify/websocket';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { WmsError } from '../../core/errors.js';
import {
  inScope,
  managesSite,
  ownerScope,
  PERSON_ROLES,
  type OwnerScope,
  type PersonPrincipal,
  type PersonRole,
} from '../../core/identity.js';
import {
  asDbUnavailable,
  currentJobStates,
  DbOutageLog,
  databaseNow,
  jobHistoryByIds,
  jobHistorySince,
  latestJobHistoryId,
  pilotsChangedSince,
  siteStates,
  type DbHandle,
  type JobHistoryChange,
  type PilotChange,
  type SiteState,
} from '../../db/index.js';
import type { PluginOptions } from '../context.js';
import { bearerToken } from './auth.js';
import type { JobEvent, PilotEvent, SiteEvent } from '../../core/events.js';

/** How often the shared poller reads the change feed (the brief asked for 250-500 ms). */
export const EVENTS_POLL_MS = 300;
/** Pings to each client; a client that has not answered the previous one is dropped. */
export const EVENTS_PING_MS = 15_000;
/** History rows per read; up to 10 reads per tick when behind. */
const JOB_BATCH = 1000;
/** A gap in history ids is asked for again this long (a slow transaction commits late). */
const GAP_RETRY_MS = 5000;
const MAX_GAPS = 1000;
/** Pilot updates are re-read this far back (ties and late commits of `now()` timestamps). */
const PILOT_LOOKBACK_MS = 2000;
const PILOT_BATCH = 5000;
const MAX_JOB_IDS = 10_000;

export interface Subscription {
  jobs: number[] | 'mine' | 'all' | null;
  pilots: boolean;
  sites: boolean;
}

const NOTHING: Subscription = { jobs: null, pilots: false, sites: false };

/** Sent to each subscriber when the change feed cannot be read (once per outage). */
const DB_DOWN_MESSAGE = {
  type: 'error',
  code: 'WMS_DB_UNAVAILABLE',
  message: 'database unavailable: changes are sent again once it is back',
} as const;

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

/** One websocket client: its principal, subscription and per-job cursors. */
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

  constructor(
    readonly principal: PersonPrincipal,
    private readonly socket: WebSocket,
  ) {
    this.scope = ownerScope(principal);
  }

  send(message: unknown): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(message));
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

/**
 * The one poller of a process for one database: reads the change feed while anyone is
 * subscribed and hands each change to every subscriber (which filters by its scope).
 */
export class ChangeFeed {
  readonly subscribers = new Set<Subscriber>();
  /** For tests and metrics: pollers started, ticks run, subscriptions taken. */
  readonly stats = { pollersStarted: 0, polls: 0, subscriptions: 0 };
  private generation = 0;
  private starting: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private cursor = 0;
  /** History ids skipped over (not committed yet when read), with when they were first missed. */
  private readonly gaps = new Map<number, number>();
  private pilotsReady: Promise<void> | null = null;
  private pilotCursor = new Date(0);
  private readonly pilotSeen = new Map<string, number>();
  private sitesReady: Promise<void> | null = null;
  private siteState = new Map<string, string>();
  /** A database outage is logged once when it starts and once when it ends, not every poll. */
  private readonly outage: DbOutageLog;

  constructor(
    private readonly handle: DbHandle,
    private readonly log: FastifyBaseLogger,
    private readonly pollMs = EVENTS_POLL_MS,
  ) {
    this.outage = new DbOutageLog('event stream', { warn: (m) => log.warn(m), info: (m) => log.info(m) });
  }

  /** True while the last poll failed because the database is away. */
  get databaseDown(): boolean {
    return this.outage.down;
  }

  /** True while the poller runs (some subscriber is there). */
  get running(): boolean {
    return this.starting !== null;
  }

  /** Adds (or re-adds) a subscriber; resolves once the poller runs and its cursors are set. */
  async add(sub: Subscriber): Promise<void> {
    if (sub.closed) return;
    if (!this.subscribers.has(sub)) {
      this.subscribers.add(sub);
      this.stats.subscriptions++;
    }
    await this.start();
    if (sub.closed) return this.remove(sub);
    if (sub.spec.pilots) await this.ensurePilots();
    if (sub.spec.sites) await this.ensureSites();
  }

  remove(sub: Subscriber): void {
    this.subscribers.delete(sub);
    if (this.subscribers.size === 0) this.stop();
  }

  private start(): Promise<void> {
    if (this.starting) return this.starting;
    const gen = ++this.generation;
    this.stats.pollersStarted++;
    this.starting = (async () => {
      const cursor = await latestJobHistoryId(this.handle);
      if (gen !== this.generation) return;
      this.cursor = cursor;
      this.gaps.clear();
      this.schedule(gen);
    })().catch((e: unknown) => {
      if (gen === this.generation) this.starting = null;
      throw e;
    });
    return this.starting;
  }

  private stop(): void {
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.starting = null;
    this.pilotsReady = null;
    this.sitesReady = null;
    this.pilotSeen.clear();
    this.siteState.clear();
  }

  private schedule(gen: number): void {
    this.timer = setTimeout(() => void this.tick(gen), this.pollMs);
    this.timer.unref();
  }

  private async tick(gen: number): Promise<void> {
    try {
      await this.pollJobs(gen);
      const subs = [...this.subscribers];
      if (subs.some((s) => s.spec.pilots)) await this.pollPilots(gen);
      else this.pilotsReady = null;
      if (subs.some((s) => s.spec.sites)) await this.pollSites(gen);
      else this.sitesReady = null;
      this.stats.polls++;
      this.outage.ok();
    } catch (e) {
      // An outage: said once, polled again at the same pace (a read that fails at once costs
      // nothing), and the cursors are kept, so no change made meanwhile is lost.
      const wasDown = this.outage.down;
      if (!this.outage.failed(e)) this.log.warn({ err: e }, 'event stream: reading the change feed failed (trying again)');
      else if (!wasDown) {
        // Told once to every subscriber (the socket stays open; the dashboard shows its banner).
        for (const s of this.subscribers) s.send(DB_DOWN_MESSAGE);
      }
    }
    if (gen === this.generation && this.subscribers.size > 0) this.schedule(gen);
  }

  private fanOutJob(c: JobHistoryChange): void {
    for (const s of this.subscribers) if (s.wantsJobs) s.offerJob(c);
  }

  private async pollJobs(gen: number): Promise<void> {
    if (![...this.subscribers].some((s) => s.wantsJobs)) {
      // Nobody follows jobs: skip the backlog (a job subscriber sets its own starting point).
      this.cursor = await latestJobHistoryId(this.handle);
      this.gaps.clear();
      return;
    }
    if (this.gaps.size > 0) {
      const late = await jobHistoryByIds(this.handle, [...this.gaps.keys()]);
      if (gen !== this.generation) return;
      for (const c of late) {
        this.gaps.delete(c.historyId);
        this.fanOutJob(c);
      }
      const expired = Date.now() - GAP_RETRY_MS;
      for (const [id, since] of this.gaps) if (since < expired) this.gaps.delete(id);
    }
    for (let i = 0; i < 10; i++) {
      const batch = await jobHistorySince(this.handle, this.cursor, JOB_BATCH);
      if (gen !== this.generation) return;
      const now = Date.now();
      for (const c of batch) {
        for (let id = this.cursor + 1; id < c.historyId && this.gaps.size < MAX_GAPS; id++) this.gaps.set(id, now);
        this.cursor = c.historyId;
        this.fanOutJob(c);
      }
      if (batch.length < JOB_BATCH) break;
    }
  }

  /** Sets the pilot cursor to the database's now, marking the look-back window as seen. */
  private ensurePilots(): Promise<void> {
    return (this.pilotsReady ??= (async () => {
      this.pilotCursor = await databaseNow(this.handle);
      this.pilotSeen.clear();
      for (const p of await pilotsChangedSince(this.handle, this.pilotCursor, PILOT_LOOKBACK_MS, PILOT_BATCH)) {
        this.pilotSeen.set(`${p.id}@${p.stamp}`, p.at.getTime());
      }
    })().catch((e: unknown) => {
      this.pilotsReady = null;
      throw e;
    }));
  }

  private async pollPilots(gen: number): Promise<void> {
    await this.ensurePilots();
    const changed = await pilotsChangedSince(this.handle, this.pilotCursor, PILOT_LOOKBACK_MS, PILOT_BATCH);
    if (gen !== this.generation) return;
    for (const p of changed) {
      const key = `${p.id}@${p.stamp}`;
      if (this.pilotSeen.has(key)) continue;
      this.pilotSeen.set(key, p.at.getTime());
      if (p.at > this.pilotCursor) this.pilotCursor = p.at;
      for (const s of this.subscribers) s.offerPilot(p);
    }
    const old = this.pilotCursor.getTime() - 2 * PILOT_LOOKBACK_MS;
    for (const [key, at] of this.pilotSeen) if (at < old) this.pilotSeen.delete(key);
  }

  private static siteKey(s: SiteState): string {
    return `${s.kind}\u0000${s.site}\u0000${s.ce ?? ''}\u0000${s.queue ?? ''}`;
  }

  private static siteValue(s: SiteState): string {
    return JSON.stringify([s.banned, s.paused, s.pausedUntil?.toISOString() ?? null, s.reason]);
  }

  private ensureSites(): Promise<void> {
    return (this.sitesReady ??= (async () => {
      const states = await siteStates(this.handle);
      this.siteState = new Map(states.map((s) => [ChangeFeed.siteKey(s), ChangeFeed.siteValue(s)]));
    })().catch((e: unknown) => {
      this.sitesReady = null;
      throw e;
    }));
  }

  /** Reads the whole registry state (small) and sends what differs from the last read. */
  private async pollSites(gen: number): Promise<void> {
    await this.ensureSites();
    const states = await siteStates(this.handle);
    if (gen !== this.generation) return;
    const at = new Date().toISOString();
    const next = new Map<string, string>();
    for (const s of states) {
      const key = ChangeFeed.siteKey(s);
      const value = ChangeFeed.siteValue(s);
      next.set(key, value);
      if (this.siteState.get(key) === value) continue;
      const e: SiteEvent = {
        type: 'site',
        kind: s.kind,
        site: s.site,
        ce: s.ce,
        queue: s.queue,
        banned: s.banned,
        paused: s.paused,
        pausedUntil: s.pausedUntil?.toISOString() ?? null,
        reason: s.reason,
        at,
      };
      for (const sub of this.subscribers) sub.offerSite(e);
    }
    this.siteState = next;
  }
}

const feeds = new WeakMap<DbHandle, ChangeFeed>();

/** The change feed of a database in this process (made on first use). */
export function changeFeedOf(handle: DbHandle, log?: FastifyBaseLogger): ChangeFeed {
  let feed = feeds.get(handle);
  if (!feed) {
    if (!log) throw new Error('no change feed for this database yet');
    feeds.set(handle, (feed = new ChangeFeed(handle, log)));
  }
  return feed;
}

function isPersonRole(r: string): r is PersonRole {
  return (PERSON_ROLES as readonly string[]).includes(r);
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

export const eventsPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const feed = changeFeedOf(ctx.handle, app.log);
  const mine = new Map<Subscriber, WebSocket>();

  app.addHook('onClose', async () => {
    for (const [sub, socket] of mine) {
      feed.remove(sub);
      socket.terminate();
    }
    mine.clear();
  });

  /** The header, or `?token=` (browsers); people only. */
  async function authenticate(request: FastifyRequest): Promise<void> {
    const token = bearerToken(request) ?? (request.query as { token?: string }).token ?? null;
    if (!token) throw new WmsError('WMS_AUTH_MISSING', 'authentication required: no bearer token (header or ?token=)');
    const principal = await (await ctx.signer()).verify(token);
    if (!isPersonRole(principal.role)) throw new WmsError('WMS_FORBIDDEN', `role ${principal.role} may not follow events`);
    request.identity = principal;
  }

  async function subscribe(sub: Subscriber, raw: string): Promise<void> {
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

  app.get('/api/events', { onRequest: authenticate, websocket: true, schema: { hide: true } }, (socket, request) => {
    const sub = new Subscriber(request.identity as PersonPrincipal, socket);
    mine.set(sub, socket);
    let chain = Promise.resolve();
    let alive = true;
    const ping = setInterval(() => {
      if (!alive) {
        socket.terminate();
        return;
      }
      alive = false;
      if (socket.readyState === socket.OPEN) socket.ping();
    }, EVENTS_PING_MS);
    ping.unref();
    socket.on('pong', () => (alive = true));
    socket.on('message', (data: Buffer) => {
      alive = true;
      const text = data.toString('utf8');
      chain = chain
        .then(() => subscribe(sub, text))
        .catch((thrown: unknown) => {
          // The database away: WMS_DB_UNAVAILABLE, as the HTTP routes answer (no driver text).
          const e = asDbUnavailable(thrown);
          const known = e instanceof WmsError;
          if (!known) request.log.warn({ err: e }, 'event stream: subscription failed');
          const dbDown = known && e.code === 'WMS_DB_UNAVAILABLE';
          if (dbDown) request.log.warn({ err: e }, 'event stream: subscription failed, database unavailable');
          sub.send({
            type: 'error',
            code: known ? e.code : 'WMS_UNAVAILABLE',
            message: dbDown ? 'database unavailable, subscribe again later' : known ? e.message : 'the subscription failed; try again',
          });
        });
    });
    socket.on('close', () => {
      sub.closed = true;
      clearInterval(ping);
      mine.delete(sub);
      feed.remove(sub);
    });
  });
};
