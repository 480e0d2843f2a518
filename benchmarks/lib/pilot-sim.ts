/**
 * The `grid` benchmark's load generator, a CHILD process (`node --import tsx pilot-sim.ts
 * <config.json>`) speaking the real pilot protocol over HTTP and websockets, without payloads:
 *
 * 1. connect: each pilot registers (`POST /api/pilots/self/register`, which answers its
 *    session token) and opens its push websocket (`GET /api/pilots/self/ws`) to its replica,
 *    from one of the 127.0.0.x source addresses given (so the ~28k ephemeral ports of one address
 *    pair are not exhausted); sockets are held open until the end;
 * 2. it prints `{"event":"connected"}` and waits for `go` on stdin (the parent samples memory);
 * 3. open loop for warm-up + steady seconds: heartbeats (`POST /api/jobs/:id/heartbeat`) at
 *    `heartbeatRate`, cycling over the pilots' running jobs, and at `matchRate` a pilot ends its
 *    job (`POST /api/jobs/:id/status` Done), asks `POST /api/match` and reports the new job
 *    Running; its heartbeats then go to the new job;
 * 4. closed loop for `burstSeconds`: `burstConcurrency` heartbeat callers back to back (the
 *    heartbeat capacity, compared with the bare bound);
 * 5. prints one JSON line: latencies per call (steady phase only), counts, sockets held.
 *
 * HTTP calls share a pool of keep-alive connections per replica (the server sees the same
 * requests as from one connection per pilot, without 100k more sockets here).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Agent, Pool, WebSocket } from 'undici';

export interface SimPilot {
  pilotId: number;
  token: string;
  /** Index into `replicas`. */
  replica: number;
  jobId: number;
  jobToken: string;
  /** Opens a websocket (false: HTTP only, beyond the file-descriptor budget). */
  socket: boolean;
}

export interface SimConfig {
  replicas: string[];
  /** Source addresses per replica (127.0.0.x), used in turn for its websockets. */
  sourceAddresses: string[][];
  pilotsFile: string;
  registerRate: number;
  heartbeatRate: number;
  matchRate: number;
  warmupSeconds: number;
  steadySeconds: number;
  burstSeconds: number;
  burstConcurrency: number;
  httpConnections: number;
  resource: Record<string, unknown>;
}

type Call = 'register' | 'match' | 'status' | 'heartbeat' | 'burst';

interface PilotState extends SimPilot {
  reportSeq: number;
  busy: boolean;
  beating: boolean;
  ws: WebSocket | null;
}

/** Calls waiting for an answer at once, at most. */
const MAX_IN_FLIGHT = 2_000;
/** Pilots registering or opening their socket at once, at most. */
const MAX_CONNECTING = 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (m: string) => process.stderr.write(`pilot-sim[${process.pid}] ${new Date().toISOString().slice(11, 19)}: ${m}\n`);

class Recorder {
  readonly latencies: Record<Call, number[]> = { register: [], match: [], status: [], heartbeat: [], burst: [] };
  readonly errors: Record<string, number> = {};
  recording = false;
  matches = 0;
  noMatch = 0;
  heartbeatsDone = 0;
  late = 0;
  lateMatches = 0;

  note(call: Call, ms: number, status: number): void {
    if (call === 'register' || call === 'burst' || this.recording) this.latencies[call].push(Math.round(ms * 100) / 100);
    if (status !== 200) this.errors[`${call} ${status}`] = (this.errors[`${call} ${status}`] ?? 0) + 1;
  }
}

class Sim {
  private readonly pools: Pool[];
  private readonly pilots: PilotState[];
  readonly rec = new Recorder();
  private readonly agents = new Map<string, Agent>();
  readonly socketsOpen: number[];
  socketsClosed = 0;
  lastClose = '';

  constructor(private readonly cfg: SimConfig) {
    this.pools = cfg.replicas.map((u) => new Pool(u, { connections: cfg.httpConnections, pipelining: 1, keepAliveTimeout: 120_000 }));
    const list = JSON.parse(readFileSync(cfg.pilotsFile, 'utf8')) as SimPilot[];
    this.pilots = list.map((p) => ({ ...p, reportSeq: 0, busy: false, beating: false, ws: null }));
    this.socketsOpen = cfg.replicas.map(() => 0);
  }

  async call<T>(p: PilotState, call: Call, path: string, token: string, body: unknown): Promise<{ status: number; body: T }> {
    const t = performance.now();
    try {
      const res = await this.pools[p.replica]!.request({
        method: 'POST',
        path,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.body.text();
      this.rec.note(call, performance.now() - t, res.statusCode);
      return { status: res.statusCode, body: (text ? JSON.parse(text) : undefined) as T };
    } catch (e) {
      this.rec.note(call, performance.now() - t, 0);
      log(`${call} failed: ${(e as Error).message}`);
      return { status: 0, body: undefined as T };
    }
  }

  private agentFor(address: string): Agent {
    let a = this.agents.get(address);
    if (!a) this.agents.set(address, (a = new Agent({ connect: { localAddress: address } })));
    return a;
  }

  /** Registers the pilot and opens its websocket (resolves when the socket is open or failed). */
  async connect(p: PilotState, index: number): Promise<void> {
    const r = await this.call<{ status: string; token?: string }>(p, 'register', '/api/pilots/self/register', p.token, REGISTRATION);
    if (r.status !== 200 || !r.body.token) return;
    p.token = r.body.token;
    if (!p.socket) return;
    const addresses = this.cfg.sourceAddresses[p.replica]!;
    const dispatcher = this.agentFor(addresses[index % addresses.length]!);
    const url = `${this.cfg.replicas[p.replica]!.replace(/^http/, 'ws')}/api/pilots/self/ws`;
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(url, { dispatcher, headers: { authorization: `Bearer ${p.token}` } } as unknown as string[]);
      p.ws = ws;
      ws.addEventListener('open', () => {
        this.socketsOpen[p.replica]!++;
        resolve();
      });
      ws.addEventListener('close', (ev) => {
        if (p.ws === ws) {
          this.socketsClosed++;
          this.lastClose = `${ev.code} ${ev.reason}`;
          p.ws = null;
        }
        resolve();
      });
      ws.addEventListener('error', () => undefined); // a close follows
    });
  }

  async connectAll(): Promise<void> {
    const start = performance.now();
    const pending: Promise<void>[] = [];
    let connecting = 0;
    for (let i = 0; i < this.pilots.length; i++) {
      const wait = start + (i * 1000) / this.cfg.registerRate - performance.now();
      if (wait > 1) await sleep(wait);
      while (connecting >= MAX_CONNECTING) await sleep(5);
      connecting++;
      pending.push(this.connect(this.pilots[i]!, i).finally(() => connecting--));
      if (i % 5000 === 4999) log(`${i + 1} pilots connecting, ${this.socketsOpen.join('+')} sockets open`);
    }
    await Promise.all(pending);
  }

  private async heartbeat(p: PilotState, call: 'heartbeat' | 'burst'): Promise<void> {
    const r = await this.call<{ token?: string }>(p, call, `/api/jobs/${p.jobId}/heartbeat`, p.jobToken, {
      cpuSeconds: 10,
      wallSeconds: 12,
      rssMb: 100,
    });
    if (r.status === 200) {
      if (call === 'burst' || this.rec.recording) this.rec.heartbeatsDone++;
      if (r.body.token) p.jobToken = r.body.token;
    }
  }

  private async status(p: PilotState, status: string): Promise<number> {
    p.reportSeq++;
    const r = await this.call(p, 'status', `/api/jobs/${p.jobId}/status`, p.jobToken, {
      status,
      minorStatus: status === 'Done' ? 'Execution Complete' : 'Application',
      reportId: p.reportSeq,
    });
    return r.status;
  }

  /** The pilot ends its job, matches the next one and reports it Running. */
  private async nextJob(p: PilotState): Promise<void> {
    p.busy = true;
    try {
      await this.status(p, 'Done');
      const claimId = `sim-${p.pilotId}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
      const r = await this.call<{ match: { jobId: number; token: string } | null }>(p, 'match', '/api/match', p.token, {
        ...this.cfg.resource,
        claimId,
      });
      if (r.status !== 200 || !r.body.match) {
        this.rec.noMatch++;
        return;
      }
      this.rec.matches += this.rec.recording ? 1 : 0;
      p.jobId = r.body.match.jobId;
      p.jobToken = r.body.match.token;
      p.reportSeq = 0;
      await this.status(p, 'Running');
    } finally {
      p.busy = false;
    }
  }

  /**
   * Open loop over warm-up + steady: heartbeats and matches at their rates. Like a real pilot,
   * a pilot whose previous heartbeat is unanswered sends none (counted `late`), and at most
   * `MAX_IN_FLIGHT` calls wait at once (beyond: `late` too), so an overloaded service shows as
   * a lower sustained rate, not as an ever-growing queue here. Calls answered during the steady
   * phase are the figures; `onSteady` runs when it starts.
   */
  async run(warmupMs: number, steadyMs: number, onSteady: () => void): Promise<number> {
    const start = performance.now();
    const steadyAt = start + warmupMs;
    const until = steadyAt + steadyMs;
    let hb = 0;
    let mt = 0;
    let hbCursor = 0;
    let mtCursor = Math.floor(this.pilots.length / 2);
    let inflight = 0;
    const track = (x: Promise<void>) => {
      inflight++;
      void x.finally(() => inflight--);
    };
    while (performance.now() < until) {
      const now = performance.now();
      if (!this.rec.recording && now >= steadyAt) {
        this.rec.recording = true;
        onSteady();
      }
      const elapsed = (now - start) / 1000;
      for (; hb < elapsed * this.cfg.heartbeatRate; hb++) {
        const p = this.pilots[hbCursor++ % this.pilots.length]!;
        if (p.busy || p.beating || inflight >= MAX_IN_FLIGHT) this.rec.late += this.rec.recording ? 1 : 0;
        else track(this.beat(p));
      }
      for (; mt < elapsed * this.cfg.matchRate; mt++) {
        let p = this.pilots[mtCursor++ % this.pilots.length]!;
        for (let tries = 0; (p.busy || p.beating) && tries < 100; tries++) p = this.pilots[mtCursor++ % this.pilots.length]!;
        if (p.busy || p.beating || inflight >= MAX_IN_FLIGHT) this.rec.lateMatches += this.rec.recording ? 1 : 0;
        else track(this.nextJob(p));
      }
      await sleep(5);
    }
    this.rec.recording = false;
    const seconds = (performance.now() - steadyAt) / 1000;
    while (inflight > 0) await sleep(20);
    return seconds;
  }

  private async beat(p: PilotState): Promise<void> {
    p.beating = true;
    try {
      await this.heartbeat(p, 'heartbeat');
    } finally {
      p.beating = false;
    }
  }

  /** Closed loop: `concurrency` callers heartbeat back to back for `seconds`. */
  async burst(seconds: number, concurrency: number): Promise<{ heartbeats: number; seconds: number }> {
    const until = performance.now() + seconds * 1000;
    let cursor = 0;
    let done = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < until) {
          await this.heartbeat(this.pilots[cursor++ % this.pilots.length]!, 'burst');
          done++;
        }
      }),
    );
    return { heartbeats: done, seconds: (performance.now() - start) / 1000 };
  }

  socketsHeld(): number[] {
    const held = this.cfg.replicas.map(() => 0);
    for (const p of this.pilots) if (p.ws && p.ws.readyState === p.ws.OPEN) held[p.replica]!++;
    return held;
  }

  async close(): Promise<void> {
    for (const p of this.pilots) p.ws?.close();
    await Promise.all(this.pools.map((x) => x.close()));
    await Promise.all([...this.agents.values()].map((a) => a.close()));
  }
}

const REGISTRATION = {
  environment: {
    hostname: 'sim.bench',
    os: 'linux',
    kernel: 'sim',
    cpuModel: 'simulated',
    cores: 1,
    memoryMb: 4000,
    workDir: '/tmp',
    fsType: 'tmpfs',
    diskFreeMb: 10_000,
    gpus: [],
    nodeVersion: process.version,
    batchSystem: 'simulated',
    batchJobId: null,
  },
  clockOffsetSeconds: 0,
  benchmark: 10,
};

function emit(x: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(x)}\n`);
}

async function waitForGo(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) if (line.trim() === 'go') return;
}

async function main(): Promise<void> {
  const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as SimConfig;
  const sim = new Sim(cfg);
  const t0 = performance.now();
  await sim.connectAll();
  const connectSeconds = (performance.now() - t0) / 1000;
  log(`connected in ${connectSeconds.toFixed(1)} s: sockets ${sim.socketsHeld().join('+')}`);
  emit({ event: 'connected', socketsHeld: sim.socketsHeld(), connectSeconds });
  await waitForGo();
  log('warm-up');
  const steadySeconds = await sim.run(cfg.warmupSeconds * 1000, cfg.steadySeconds * 1000, () => {
    log('steady phase');
    emit({ event: 'steady' });
  });
  emit({ event: 'steady-end' });
  const heartbeats = sim.rec.heartbeatsDone;
  log(`steady phase done: ${heartbeats} heartbeats, ${sim.rec.matches} matches, ${sim.rec.late} late; burst`);
  const socketsAfterSteady = sim.socketsHeld();
  sim.rec.heartbeatsDone = 0;
  const burst = await sim.burst(cfg.burstSeconds, cfg.burstConcurrency);
  // The figures go through a file (a pipe write this large may not be flushed before exit).
  const resultFile = `${process.argv[2]!}.result.json`;
  writeFileSync(
    resultFile,
    JSON.stringify({
      connectSeconds,
      steadySeconds,
      heartbeats,
      matches: sim.rec.matches,
      noMatch: sim.rec.noMatch,
      lateHeartbeats: sim.rec.late,
      lateMatches: sim.rec.lateMatches,
      errors: sim.rec.errors,
      socketsHeld: socketsAfterSteady,
      socketsClosed: sim.socketsClosed,
      lastClose: sim.lastClose,
      burst,
      latencies: sim.rec.latencies,
    }),
  );
  emit({ event: 'result', file: resultFile });
  // Sockets and pools closed, or given up after 5 s: the result is out.
  await Promise.race([sim.close(), sleep(5_000)]);
  process.exit(0);
}

main().catch((e: unknown) => {
  log(`failed: ${e instanceof Error ? e.stack : String(e)}`);
  process.exitCode = 1;
});
