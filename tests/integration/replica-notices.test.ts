/**
 * Two replicas on ONE PostgreSQL database, each listening on its own port, talking through the
 * notice bus (db/notices.ts, LISTEN/NOTIFY): replica A is `startServer` (its bus made as in
 * production), replica B is `buildApp` with a bus the test holds (to read its counters and its
 * listener). Real pilot websockets and event-stream clients (undici) on the replicas' ports.
 *
 * - a kill sent through one replica reaches a pilot websocket on the other within 2 s;
 * - a submission nudges only the pilots whose queue can take the job;
 * - an event-stream client on B sees a job submitted through A (the notice wakes B's poller);
 * - the bus reconnects after its listening connection is killed (`pg_terminate_backend`), says
 *   so once, and notices flow again;
 * - hostile payloads sent with pg_notify on the channel are ignored; the service keeps working.
 *
 * PostgreSQL only (LISTEN/NOTIFY); under CI a missing PostgreSQL fails the suite.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveServiceConfig, type ServiceConfig } from '../../core/config.js';
import type { Principal } from '../../core/identity.js';
import {
  createPilots,
  matchJob,
  NOTICE_CHANNEL,
  openDb,
  openNoticeBus,
  setSiteBanned,
  updatePilots,
  upsertCeQueue,
  upsertComputingElement,
  type DbHandle,
  type NoticeBus,
} from '../../db/index.js';
import { buildApp, type App } from '../../services/app.js';
import { changeFeedOf } from '../../services/plugins/events.js';
import { startServer, type RunningServer } from '../../services/server.js';
import { TokenSigner } from '../../services/token-signer.js';
import { jdl } from '../helpers/app.js';
import { IN_CI, postgresProblem, reservePostgresDatabase } from '../helpers/db.js';
import { EventClient } from '../helpers/events.js';

type Push = { type: string; commands?: { jobId: number; command: string }[] };

/** A pilot's websocket (`/api/pilots/self/ws`), keeping every push it gets. */
class PilotSocket {
  readonly pushes: Push[] = [];
  private constructor(private readonly ws: WebSocket) {}

  static open(base: string, token: string): Promise<PilotSocket> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/pilots/self/ws`, {
      headers: { authorization: `Bearer ${token}` },
    } as unknown as string[]);
    const s = new PilotSocket(ws);
    ws.addEventListener('message', (ev) => s.pushes.push(JSON.parse(String(ev.data)) as Push));
    return new Promise((ok, fail) => {
      ws.addEventListener('open', () => ok(s));
      ws.addEventListener('error', () => fail(new Error('pilot websocket refused')));
    });
  }

  works(): number {
    return this.pushes.filter((p) => p.type === 'work').length;
  }

  killed(): number[] {
    return this.pushes.flatMap((p) => (p.type === 'commands' ? (p.commands ?? []).map((c) => c.jobId) : []));
  }

  close(): void {
    this.ws.close();
  }
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 5000): Promise<number> {
  const start = Date.now();
  while (!(await ok())) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - start;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function collectingLog() {
  const lines: { level: 'warn' | 'info'; msg: string }[] = [];
  return {
    lines,
    log: { warn: (msg: string) => void lines.push({ level: 'warn', msg }), info: (msg: string) => void lines.push({ level: 'info', msg }) },
  };
}

const problem = postgresProblem();
if (problem !== null) {
  if (IN_CI) {
    describe('replica notices [postgres]', () => {
      it('needs PostgreSQL', () => {
        throw new Error(`${problem}; CI is set, so this suite must not be skipped`);
      });
    });
  } else {
    console.warn(`[replica notices] SKIPPING: ${problem}`);
    describe.skip('replica notices [postgres]', () => undefined);
  }
} else {
  const databaseUrl = reservePostgresDatabase();

  describe('replica notices [postgres]', () => {
    const dirs: string[] = [];
    let url: string;
    let a: RunningServer;
    let dbB: DbHandle;
    let busB: NoticeBus;
    let appB: App;
    let urlB: string;
    let admin: DbHandle;
    let signer: TokenSigner;
    const busLog = collectingLog();
    const sockets: PilotSocket[] = [];

    const configOf = async (): Promise<ServiceConfig> => {
      const dataDir = await mkdtemp(join(tmpdir(), 'wms-replica-'));
      dirs.push(dataDir);
      const base = resolveServiceConfig({ env: {}, flags: { port: 0, host: '127.0.0.1', dataDir, logLevel: 'silent' } });
      return { ...base, databaseUrl: url };
    };
    const tokenFor = async (p: Principal) => (await signer.sign(p, 3600)).token;
    const alice = () => tokenFor({ role: 'user', user: 'alice', vo: 'vo1', group: 'vo1_user' });
    const call = async (base: string, method: string, path: string, token: string, body?: unknown) => {
      const r = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    const submit = async (base: string, attrs: Record<string, string | number> = {}): Promise<number> => {
      const r = await call(base, 'POST', '/api/jobs', await alice(), { jdl: jdl(attrs) });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return (r.body['jobIds'] as number[])[0]!;
    };
    /** A Running pilot at a registered queue, with its websocket open on `base`. */
    const pilot = async (base: string, site: string, ce: string, queue: string, vo = 'vo1') => {
      const [id] = (await createPilots(admin, [
        { stamp: `${ce}-${queue}-${vo}-${Math.random()}`, site, ce, ceType: 'local', queue, queueId: null, vo },
      ])) as [number];
      await updatePilots(admin, [id], { status: 'Running', reason: 'test' });
      const socket = await PilotSocket.open(base, await tokenFor({ role: 'pilot', user: `pilot:${id}`, vo, pilotId: id }));
      sockets.push(socket);
      return { id, socket };
    };
    const closeSockets = () => {
      for (const s of sockets.splice(0)) s.close();
    };
    /** A job submitted through `submitVia`, matched to pilot `pilotId`, killed through `killVia`: ms until the pilot's socket got the command. */
    const killAcross = async (submitVia: string, killVia: string, p: { id: number; socket: PilotSocket }, site: string) => {
      // Jobs left waiting by earlier tests would be matched first: killed beforehand.
      await call(submitVia, 'POST', '/api/jobs/kill', await alice(), { filter: { status: ['Waiting'] } });
      const jobId = await submit(submitVia);
      const resource = { site, tags: [], requiredTags: [], processors: 1, ramMb: 4096, gpus: 0, cpuWork: 10_000_000, vo: 'vo1' };
      const matched = await matchJob(admin, resource, { pilotId: p.id });
      expect(matched?.id).toBe(jobId);
      const r = await call(killVia, 'POST', '/api/jobs/kill', await alice(), { ids: [jobId] });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return until(`kill of job ${jobId} on the other replica's pilot socket`, () => p.socket.killed().includes(jobId), 2000);
    };

    beforeAll(async () => {
      url = await databaseUrl();
      a = await startServer(await configOf(), { logger: false });
      dbB = await openDb(url, { migrate: false, poolSize: 4 });
      busB = await openNoticeBus(url, dbB, busLog.log);
      appB = buildApp({ db: dbB, config: await configOf(), notices: busB });
      urlB = await appB.listen({ host: '127.0.0.1', port: 0 });
      admin = await openDb(url, { migrate: false, poolSize: 2 });
      signer = await TokenSigner.open(admin, { issuer: resolveServiceConfig({ env: {} }).tokens.issuer });
      // Registered places: A (1 core, every VO), B (8 cores), C (banned site), D (vo2 only).
      for (const [site, ce, processors] of [
        ['LCG.A.org', 'ce.a.org', 1],
        ['LCG.B.org', 'ce.b.org', 8],
        ['LCG.C.org', 'ce.c.org', 8],
        ['LCG.D.org', 'ce.d.org', 8],
      ] as const) {
        await upsertComputingElement(admin, { site, name: ce, type: 'local' });
        await upsertCeQueue(admin, {
          ce,
          name: 'long',
          processors,
          ramMb: 16_000,
          cpuTime: 10_000_000,
          ...(site === 'LCG.D.org' ? { allowedVos: ['vo2'] } : {}),
        });
      }
      await setSiteBanned(admin, 'LCG.C.org', true, 'downtime');
    });

    afterAll(async () => {
      closeSockets();
      await appB?.close();
      await busB?.close();
      await dbB?.close();
      await a?.close();
      await admin?.close();
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    });

    it('uses the PostgreSQL bus, one listening connection per replica', async () => {
      expect(busB.kind).toBe('postgres');
      const listeners = await admin.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and query = $1`,
        [`listen ${NOTICE_CHANNEL}`],
      );
      expect(listeners[0]?.n).toBe(2);
    });

    it('a kill sent through one replica reaches the pilot websocket on the other within 2 s (both ways)', async () => {
      const onB = await pilot(urlB, 'LCG.A.org', 'ce.a.org', 'long');
      const msB = await killAcross(a.url, a.url, onB, 'LCG.A.org');
      expect(msB).toBeLessThan(2000);
      const onA = await pilot(a.url, 'LCG.A.org', 'ce.a.org', 'long');
      const msA = await killAcross(urlB, urlB, onA, 'LCG.A.org');
      expect(msA).toBeLessThan(2000);
      // Delivered once: the command was taken by the replica holding the socket, nowhere else.
      await sleep(300);
      expect(onB.socket.killed()).toHaveLength(1);
      expect(onA.socket.killed()).toHaveLength(1);
      closeSockets();
    });

    it('a submission nudges only the pilots whose queue can take the job', async () => {
      const fits = await pilot(urlB, 'LCG.A.org', 'ce.a.org', 'long');
      const big = await pilot(urlB, 'LCG.B.org', 'ce.b.org', 'long');
      const otherVo = await pilot(urlB, 'LCG.A.org', 'ce.a.org', 'long', 'vo2');
      const banned = await pilot(urlB, 'LCG.C.org', 'ce.c.org', 'long');
      const vo2Queue = await pilot(urlB, 'LCG.D.org', 'ce.d.org', 'long', 'vo2');
      const onA = await pilot(a.url, 'LCG.B.org', 'ce.b.org', 'long');

      await submit(a.url);
      await until('the fitting pilots are nudged', () => fits.socket.works() > 0 && big.socket.works() > 0 && onA.socket.works() > 0);
      await sleep(300);
      expect(otherVo.socket.works()).toBe(0);
      expect(banned.socket.works()).toBe(0);
      expect(vo2Queue.socket.works()).toBe(0);

      // Four processors: only the 8-core queues' pilots (not banned, of the job's VO).
      const before = fits.socket.works();
      await submit(a.url, { NumberOfProcessors: 4 });
      await until('the 8-core pilots are nudged', () => big.socket.works() > 1 && onA.socket.works() > 1);
      await sleep(300);
      expect(fits.socket.works()).toBe(before);
      expect(otherVo.socket.works()).toBe(0);
      expect(banned.socket.works()).toBe(0);
      expect(vo2Queue.socket.works()).toBe(0);
      closeSockets();
    });

    it('an event-stream client on B sees a job submitted through A, woken by the notice', async () => {
      const c = await EventClient.open(`${urlB.replace(/^http/, 'ws')}/api/events`, await alice());
      try {
        expect(await c.subscribe({ jobs: 'mine' })).toMatchObject({ type: 'subscribed' });
        const wakes = changeFeedOf(dbB).stats.wakes;
        const id = await submit(a.url);
        await c.waitFor((m) => m.type === 'job' && m['id'] === id && m['status'] === 'Waiting', 2000);
        expect(changeFeedOf(dbB).stats.wakes).toBeGreaterThan(wakes);
      } finally {
        c.close();
      }
    });

    it('the bus reconnects after its listening connection is killed, says so once, and notices flow again', async () => {
      const oldPid = busB.listenerPid();
      expect(oldPid).not.toBeNull();
      const reconnects = busB.stats.reconnects;
      const warnsBefore = busLog.lines.filter((l) => l.level === 'warn').length;
      // Both replicas' listeners (A's is found by its statement).
      const killed = await admin.query<{ ok: boolean }>(
        `select pg_terminate_backend(pid) as ok from pg_stat_activity where datname = current_database() and query = $1`,
        [`listen ${NOTICE_CHANNEL}`],
      );
      expect(killed.filter((k) => k.ok)).toHaveLength(2);
      await until('B listens again', () => busB.stats.reconnects > reconnects && busB.listenerPid() !== null);
      expect(busB.listenerPid()).not.toBe(oldPid);
      await until('A listens again', async () => {
        const r = await admin.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where datname = current_database() and query = $1`,
          [`listen ${NOTICE_CHANNEL}`],
        );
        return r[0]?.n === 2;
      });
      const lines = busLog.lines.slice(warnsBefore);
      expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
      expect(lines.filter((l) => l.level === 'info').map((l) => l.msg)).toEqual([expect.stringMatching(/listening again/)]);

      const onB = await pilot(urlB, 'LCG.A.org', 'ce.a.org', 'long');
      expect(await killAcross(a.url, a.url, onB, 'LCG.A.org')).toBeLessThan(2000);
      const onA = await pilot(a.url, 'LCG.A.org', 'ce.a.org', 'long');
      expect(await killAcross(urlB, urlB, onA, 'LCG.A.org')).toBeLessThan(2000);
      closeSockets();
    });

    it('an unreachable database is said once however many retries fail', async () => {
      const { lines, log } = collectingLog();
      const bus = await openNoticeBus('postgres://postgres@127.0.0.1:1/nowhere', dbB, log);
      try {
        await until('several attempts failed', () => bus.stats.failedConnects >= 3);
        expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
        expect(bus.listenerPid()).toBeNull();
      } finally {
        await bus.close();
      }
    });

    it('hostile payloads on the channel are ignored; the service keeps working', async () => {
      const ignored = busB.stats.ignored;
      const received = busB.stats.received;
      const hostile = [
        'not json',
        'null',
        '[1,2,3]',
        '{"kind":"jobs-changed","action":"kill","ids":["1; drop table jobs"]}',
        '{"kind":"jobs-changed","action":"kill","ids":[-1]}',
        '{"kind":"jobs-changed","action":"kill","ids":[1e308]}',
        '{"kind":"jobs-changed","action":"explode","ids":[1]}',
        '{"kind":"work","taskQueues":{"length":1e9}}',
        '{"kind":"work","taskQueues":[]}',
        '{"kind":"__proto__","ids":[1]}',
        '{"__proto__":{"kind":"work"},"taskQueues":[1]}',
        '{"kind":"pilots-changed","ids":' + JSON.stringify(Array.from({ length: 1000 }, (_, i) => i + 1)) + '}',
        '"' + 'x'.repeat(7900) + '"',
      ];
      for (const payload of hostile) await admin.query('select pg_notify($1, $2)', [NOTICE_CHANNEL, payload]);
      // Well-formed but naming jobs and queues that do not exist: read, found nothing, no harm.
      await admin.query('select pg_notify($1, $2)', [NOTICE_CHANNEL, '{"kind":"jobs-changed","action":"kill","ids":[9007199254740991]}']);
      await admin.query('select pg_notify($1, $2)', [NOTICE_CHANNEL, '{"kind":"work","taskQueues":[9007199254740991]}']);
      await until('all received', () => busB.stats.ignored + busB.stats.received >= ignored + received + hostile.length + 2);
      expect(busB.stats.ignored - ignored).toBe(hostile.length);

      // Both replicas still answer, and a kill still crosses.
      expect((await fetch(`${a.url}/api/health`)).status).toBe(200);
      expect((await fetch(`${urlB}/api/health`)).status).toBe(200);
      const onB = await pilot(urlB, 'LCG.A.org', 'ce.a.org', 'long');
      expect(await killAcross(a.url, a.url, onB, 'LCG.A.org')).toBeLessThan(2000);
      closeSockets();
    });
  });
}
