/**
 * The notice bus: small hints between the processes on one database ("jobs 12, 13 were
 * killed", "task queues 4, 9 have new work", "pilots changed"), so that every replica reacts at
 * once to what another one did. Ids only, never state: every consumer re-reads the database.
 *
 * - PostgreSQL (`openNoticeBus(url, log)`): ONE dedicated listening connection per process
 *   (`LISTEN wms_notices`), reconnected with a growing back-off (100 ms .. 5 s) after it drops
 *   (database restart, `pg_terminate_backend`); the outage is logged once when it starts and once
 *   when it ends. Notices are published with `select pg_notify($1, $2)` over the normal pool.
 *   A notice this process publishes comes back to it through its own listening connection, and
 *   only received notices drive the local subscribers (no double delivery). Notices sent while
 *   the listener is away are lost: they are hints, the pollers and heartbeats remain.
 * - PGlite (`localNoticeBus()`): one process only, so an in-process bus with the same interface
 *   (delivered asynchronously, through the same encoding and checks).
 *
 * A payload is well under PostgreSQL's 8000-byte limit: long id lists are split into several
 * notices (MAX_IDS_PER_NOTICE). Anyone with SQL access can NOTIFY on the channel, so every
 * payload received is checked (`parseNotice`) and a malformed one is counted and ignored.
 */
import pg from 'pg';
import type { DbOrHandle } from './open-db.js';
import { rows } from './queries/raw.js';

/** The channel every process listens on. */
export const NOTICE_CHANNEL = 'wms_notices';
/** Ids per notice: 300 ids of 16 digits and their commas are ~5 KB, well under 8000 bytes. */
export const MAX_IDS_PER_NOTICE = 300;
/** Payloads longer than this are not read (PostgreSQL refuses 8000 bytes and more anyway). */
const MAX_PAYLOAD = 8000;

/** Job actions that change what pilots hold or what waits. */
export const NOTICE_JOB_ACTIONS = ['kill', 'delete', 'reschedule'] as const;
export type NoticeJobAction = (typeof NOTICE_JOB_ACTIONS)[number];

/** One hint. */
export type Notice =
  /** Jobs killed, deleted or rescheduled (their pending commands wait for a pilot). */
  | { kind: 'jobs-changed'; action: NoticeJobAction; ids: number[] }
  /** New waiting jobs in these task queues (submission, reschedule). */
  | { kind: 'work'; taskQueues: number[] }
  /** Pilots registered or reported their state. */
  | { kind: 'pilots-changed'; ids: number[] }
  /** A site, CE or queue was banned, allowed, paused. */
  | { kind: 'sites-changed' };

export type NoticeListener = (notice: Notice) => void;

export interface NoticeBus {
  readonly kind: 'postgres' | 'local';
  /** Sends the notice (split when its id list is long); never rejects: a failure is logged. */
  publish(notice: Notice): Promise<void>;
  /** Calls `fn` for every notice received; answers the unsubscribe function. */
  subscribe(fn: NoticeListener): () => void;
  /** Counters, for tests and metrics. */
  readonly stats: NoticeStats;
  /** The backend pid of the listening connection (PostgreSQL, while connected), else null. */
  listenerPid(): number | null;
  close(): Promise<void>;
}

export interface NoticeStats {
  published: number;
  received: number;
  /** Payloads received that were not a valid notice (ignored). */
  ignored: number;
  /** Times the listening connection was re-established. */
  reconnects: number;
  /** Attempts to (re)connect the listening connection that failed. */
  failedConnects: number;
}

/** Where the bus says what happened to its connection (a pino logger fits). */
export interface NoticeLog {
  warn(msg: string): void;
  info(msg: string): void;
}

const quiet: NoticeLog = { warn: () => undefined, info: () => undefined };

function isId(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) > 0;
}

function idList(x: unknown): number[] | null {
  if (!Array.isArray(x) || x.length === 0 || x.length > MAX_IDS_PER_NOTICE || !x.every(isId)) return null;
  return x as number[];
}

/** The notice in a payload, or null when it is not one (wrong JSON, unknown kind, bad ids, too long). */
export function parseNotice(payload: unknown): Notice | null {
  if (typeof payload !== 'string' || payload.length > MAX_PAYLOAD) return null;
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  switch (o['kind']) {
    case 'jobs-changed': {
      const ids = idList(o['ids']);
      const action = o['action'];
      if (!ids || !(NOTICE_JOB_ACTIONS as readonly unknown[]).includes(action)) return null;
      return { kind: 'jobs-changed', action: action as NoticeJobAction, ids };
    }
    case 'work': {
      const taskQueues = idList(o['taskQueues']);
      return taskQueues ? { kind: 'work', taskQueues } : null;
    }
    case 'pilots-changed': {
      const ids = idList(o['ids']);
      return ids ? { kind: 'pilots-changed', ids } : null;
    }
    case 'sites-changed':
      return { kind: 'sites-changed' };
    default:
      return null;
  }
}

function chunks(ids: readonly number[]): number[][] {
  const unique = [...new Set(ids)];
  const out: number[][] = [];
  for (let i = 0; i < unique.length; i += MAX_IDS_PER_NOTICE) out.push(unique.slice(i, i + MAX_IDS_PER_NOTICE));
  return out;
}

/** The payloads of a notice: one, or one per chunk of its id list; none for an empty list. */
export function encodeNotice(n: Notice): string[] {
  switch (n.kind) {
    case 'jobs-changed':
      return chunks(n.ids).map((ids) => JSON.stringify({ kind: n.kind, action: n.action, ids }));
    case 'work':
      return chunks(n.taskQueues).map((taskQueues) => JSON.stringify({ kind: n.kind, taskQueues }));
    case 'pilots-changed':
      return chunks(n.ids).map((ids) => JSON.stringify({ kind: n.kind, ids }));
    case 'sites-changed':
      return [JSON.stringify({ kind: n.kind })];
  }
}

/** The subscribers of a bus; a throwing subscriber never stops the others. */
class Listeners {
  private readonly fns = new Set<NoticeListener>();
  constructor(
    readonly stats: NoticeStats,
    private readonly log: NoticeLog,
  ) {}

  add(fn: NoticeListener): () => void {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }

  /** Checks the payload and hands the notice to every subscriber. */
  deliver(payload: string | undefined): void {
    const notice = parseNotice(payload);
    if (!notice) {
      this.stats.ignored++;
      return;
    }
    this.stats.received++;
    for (const fn of this.fns) {
      try {
        fn(notice);
      } catch (e) {
        this.log.warn(`notices: a subscriber failed: ${(e as Error).message}`);
      }
    }
  }
}

function newStats(): NoticeStats {
  return { published: 0, received: 0, ignored: 0, reconnects: 0, failedConnects: 0 };
}

/** The in-process bus (PGlite, and tests that do not give one): same encoding and checks, delivered asynchronously. */
export function localNoticeBus(log: NoticeLog = quiet): NoticeBus {
  const stats = newStats();
  const listeners = new Listeners(stats, log);
  let closed = false;
  return {
    kind: 'local',
    stats,
    publish: async (n) => {
      if (closed) return;
      for (const payload of encodeNotice(n)) {
        stats.published++;
        setImmediate(() => closed || listeners.deliver(payload));
      }
    },
    subscribe: (fn) => listeners.add(fn),
    listenerPid: () => null,
    close: async () => {
      closed = true;
    },
  };
}

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5000;

/** The PostgreSQL bus: one listening connection to `url`, publishing on `db`'s pool. */
class PgNoticeBus implements NoticeBus {
  readonly kind = 'postgres' as const;
  readonly stats = newStats();
  private readonly listeners: Listeners;
  private client: pg.Client | null = null;
  private closed = false;
  private retryMs = FIRST_RETRY_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  /** When the listening connection was lost (null while it listens). */
  private downSince: number | null = null;
  private publishFailing = false;

  constructor(
    private readonly url: string,
    private readonly db: DbOrHandle,
    private readonly log: NoticeLog,
  ) {
    this.listeners = new Listeners(this.stats, log);
  }

  /** Connects and listens; a failure starts the retries (the bus works as soon as the database answers). */
  async start(): Promise<void> {
    await this.connect().catch((e: unknown) => this.failed(e));
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 10_000 });
    // Errors of the connection end it ('end' follows); without a listener node would throw them.
    client.on('error', () => undefined);
    client.on('notification', (m) => {
      if (m.channel === NOTICE_CHANNEL) this.listeners.deliver(m.payload);
    });
    client.on('end', () => {
      if (this.client === client) this.lost(null);
    });
    try {
      await client.connect();
      await client.query(`listen ${NOTICE_CHANNEL}`);
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.retryMs = FIRST_RETRY_MS;
    if (this.downSince !== null) {
      const seconds = ((Date.now() - this.downSince) / 1000).toFixed(1);
      this.downSince = null;
      this.stats.reconnects++;
      this.log.info(`notices: listening again after ${seconds} s`);
    }
  }

  private failed(e: unknown): void {
    this.stats.failedConnects++;
    this.lost(e);
  }

  /** The listening connection is gone (or could not be made): said once, retried with back-off. */
  private lost(e: unknown): void {
    this.client = null;
    if (this.closed || this.retryTimer) return;
    if (this.downSince === null) {
      this.downSince = Date.now();
      const why = e instanceof Error ? `: ${e.message}` : '';
      this.log.warn(`notices: the listening connection is lost${why}; reconnecting (notices meanwhile are missed)`);
    }
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.closed) return;
      this.connect().catch((err: unknown) => this.failed(err));
    }, wait);
    this.retryTimer.unref();
  }

  async publish(n: Notice): Promise<void> {
    if (this.closed) return;
    try {
      for (const payload of encodeNotice(n)) {
        await rows(this.db, 'select pg_notify($1, $2)', [NOTICE_CHANNEL, payload]);
        this.stats.published++;
      }
      if (this.publishFailing) this.log.info('notices: publishing works again');
      this.publishFailing = false;
    } catch (e) {
      // A hint lost: the pollers and heartbeats carry the change. Said once per streak.
      if (!this.publishFailing) this.log.warn(`notices: publishing failed (${(e as Error).message}); hints are missed meanwhile`);
      this.publishFailing = true;
    }
  }

  subscribe(fn: NoticeListener): () => void {
    return this.listeners.add(fn);
  }

  listenerPid(): number | null {
    return (this.client as unknown as { processID: number | null } | null)?.processID ?? null;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }
}

/**
 * The PostgreSQL bus: listens on its own connection to `url` (started before this resolves; if
 * the database does not answer it keeps trying), publishes through `db` (the process's pool).
 */
export async function openNoticeBus(url: string, db: DbOrHandle, log: NoticeLog = quiet): Promise<NoticeBus> {
  const bus = new PgNoticeBus(url, db, log);
  await bus.start();
  return bus;
}

/** The task queues of these jobs (what a `work` notice carries), distinct. */
export async function taskQueuesOfJobs(db: DbOrHandle, jobIds: readonly number[]): Promise<number[]> {
  if (jobIds.length === 0) return [];
  const r = await rows<{ id: number }>(
    db,
    `select distinct task_queue_id as id from jobs where id = any($1::bigint[]) and task_queue_id is not null`,
    [[...jobIds]],
  );
  return r.map((x) => x.id);
}
