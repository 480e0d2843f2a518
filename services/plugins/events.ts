/**
 * `GET /api/events`: a websocket on which the services push job, pilot and site changes (the
 * dashboard's live views and the CLI's `--wait`). Who may follow what, and the messages:
 * `services/logic/events.ts`.
 *
 * Authentication on the upgrade request: `Authorization: Bearer <token>`, or `?token=<token>`
 * for browsers (they cannot set headers on a WebSocket). The query form ends up in the access
 * logs of proxies in front of the services: prefer the header, and give browsers short-lived
 * tokens.
 *
 * Changes are sent, per job in order, as
 *   `{ type: "job", id, status, minorStatus, applicationStatus, site, at }`
 *   `{ type: "pilot", id, status, statusReason, site, ce, at }`
 *   `{ type: "site", kind: "site" | "ce" | "queue", site, ce, queue, banned, paused, pausedUntil, reason, at }`.
 * While the database is away the poller retries at its pace and logs the outage once; each
 * subscriber gets `{ type: "error", code: "WMS_DB_UNAVAILABLE" }` once when it starts (the
 * socket stays open, cursors are kept: the changes made meanwhile follow once it is back), and a
 * subscription message then is answered with that error.
 *
 * Source: the database (`db/queries/changes.ts`), so changes made by other replicas and by
 * agents in other processes are seen. ONE poller per process and database (`ChangeFeed`) reads
 * the change feed every EVENTS_POLL_MS while anyone is subscribed and fans out to subscribers,
 * each filtered by its scope; it stops when the last one leaves. A notice from any replica
 * (`ctx.notices`: jobs submitted, killed, rescheduled, pilots and sites changed) wakes it at
 * once (at most one read per WAKE_GAP_MS); the polling stays as the fallback for changes made
 * without a notice (agents, job reports) and notices missed while the bus reconnects. Pings every EVENTS_PING_MS; a
 * client that missed a pong is dropped.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { WebSocket } from '@fastify/websocket';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import type { SiteEvent } from '../../core/events.js';
import type { PersonPrincipal } from '../../core/identity.js';
import {
  DbOutageLog,
  databaseNow,
  jobHistoryByIds,
  jobHistorySince,
  latestJobHistoryId,
  pilotsChangedSince,
  siteStates,
  type DbHandle,
  type JobHistoryChange,
  type SiteState,
} from '../../db/index.js';
import type { PluginOptions } from '../context.js';
import { authenticateFollower, DB_DOWN_MESSAGE, subscribe, Subscriber, subscriptionError, type SubscriberFeed } from '../logic/events.js';
import { bearerToken } from './auth.js';

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
/** Reads woken by notices are at least this far apart (a burst of notices costs one read). */
export const WAKE_GAP_MS = 25;

/**
 * The one poller of a process for one database: reads the change feed while anyone is
 * subscribed and hands each change to every subscriber (which filters by its scope).
 */
export class ChangeFeed implements SubscriberFeed {
  readonly subscribers = new Set<Subscriber>();
  /** For tests and metrics: pollers started, ticks run, subscriptions taken. */
  readonly stats = { pollersStarted: 0, polls: 0, subscriptions: 0, wakes: 0 };
  private generation = 0;
  private starting: Promise<void> | null = null;
  /** The next read, pending (null while a read runs and while stopped). */
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  /** A notice came during a read: read again soon after it. */
  private woken = false;
  private lastTick = 0;
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

  private schedule(gen: number, ms = this.pollMs): void {
    this.timer = setTimeout(() => void this.tick(gen), ms);
    this.timer.unref();
  }

  /** Something changed (a notice): read the change feed now rather than at the next poll. */
  wake(): void {
    if (!this.timer && !this.ticking) return; // not running (or still starting: it reads soon)
    this.stats.wakes++;
    if (this.ticking) {
      this.woken = true;
      return;
    }
    clearTimeout(this.timer!);
    this.schedule(this.generation, Math.max(0, this.lastTick + WAKE_GAP_MS - Date.now()));
  }

  private async tick(gen: number): Promise<void> {
    this.timer = null;
    this.ticking = true;
    this.woken = false;
    this.lastTick = Date.now();
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
    this.ticking = false;
    if (gen === this.generation && this.subscribers.size > 0) this.schedule(gen, this.woken ? WAKE_GAP_MS : this.pollMs);
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

export const eventsPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  const feed = changeFeedOf(ctx.handle, app.log);
  const mine = new Map<Subscriber, WebSocket>();
  ctx.metrics.countConnections('event-subscribers', () => mine.size);
  const unsubscribe = ctx.notices.subscribe(() => feed.wake());

  app.addHook('onClose', async () => {
    unsubscribe();
    for (const [sub, socket] of mine) {
      feed.remove(sub);
      socket.terminate();
    }
    mine.clear();
  });

  /** The header, or `?token=` (browsers). */
  async function authenticate(request: FastifyRequest): Promise<void> {
    const token = bearerToken(request) ?? (request.query as { token?: string }).token ?? null;
    request.identity = await authenticateFollower(ctx, token);
  }

  app.get('/api/events', { onRequest: authenticate, websocket: true, schema: { hide: true } }, (socket, request) => {
    const sub = new Subscriber(request.identity as PersonPrincipal, (message) => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
    });
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
        .then(() => subscribe(ctx, sub, text, feed))
        .catch((thrown: unknown) => sub.send(subscriptionError(thrown, request.log)));
    });
    socket.on('close', () => {
      sub.closed = true;
      clearInterval(ping);
      mine.delete(sub);
      feed.remove(sub);
    });
  });
};
