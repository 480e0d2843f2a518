/**
 * Scenario `grid` (issue 14): pilots at grid scale against TWO replicas (`wms server start
 * --no-agents`, each its own process) on one PostgreSQL database. Simulated pilots
 * (lib/pilot-sim.ts, child processes) speak the real protocol: register, push websocket held
 * open, heartbeats, job status reports and matches; no payloads. Pilots are split across the
 * replicas directly (pilot i talks to replica i % 2; no load balancer in between).
 *
 * Time is compressed: 100,000 running jobs heartbeating every 30 s make 3,333 heartbeats/s; the
 * benchmark offers that rate whatever the number of pilots (smoke 10,000 pilots, each every 3 s;
 * full 100,000, each every 30 s) while pilots end jobs and match new ones at 100/s.
 *
 * Seeding is direct SQL as in the other scenarios: waiting jobs through lib/seed.ts, pilot
 * records as the site director makes them (`createPilots`, Submitted), and one running job per
 * pilot (Waiting -> Running bound to the pilot, as a match would). Pilot and job tokens are
 * signed in the benchmark process with the deployment's key read from the database
 * (`TokenSigner.open`), a benchmark-only shortcut for the site director's `POST /api/tokens`
 * and the matcher's job tokens (100,000 of each in seconds).
 *
 * The bound, measured in the same run on the same PostgreSQL: a bare
 * `UPDATE ... SET heartbeat_at = now() WHERE id = $1` loop with the service's batch shape (one
 * row per statement, one statement per transaction) on as many connections as both replicas'
 * pools, against a copy of the running jobs' ids. The ratio compares it with the heartbeat
 * capacity measured by the closed-loop burst at the end.
 *
 * File descriptors: every websocket is one fd in a replica and one in a generator. The
 * generators are spawned through `sh -c 'ulimit -n <hard>'`; the number of sockets per replica
 * is capped by the hard limit (pilots above the cap heartbeat and match over HTTP only), and
 * the number of generator processes follows from it. Websockets from each generator spread over
 * 127.0.0.x source addresses (two per replica) against ephemeral-port exhaustion.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { BenchOptions, BenchResult } from './run.js';
import { createPilots, openDb } from '../db/index.js';
import { TokenSigner } from '../services/token-signer.js';
import { freshDatabase, serverVersion } from './lib/database.js';
import type { SimConfig, SimPilot } from './lib/pilot-sim.js';
import { benchPilotRecords, RESOURCE } from './lib/match-load.js';
import { seedWaitingJobs } from './lib/seed.js';
import { startServer, type RunningServer } from './lib/server.js';
import { round1, summarize } from './lib/stats.js';

const SIZES = {
  smoke: { pilots: 10_000, registerRate: 1_000, warmupSeconds: 5, steadySeconds: 30, burstSeconds: 10 },
  full: { pilots: 100_000, registerRate: 1_000, warmupSeconds: 10, steadySeconds: 90, burstSeconds: 15 },
};
/** 100,000 running jobs heartbeating every 30 s. */
const HEARTBEAT_RATE = Math.round(100_000 / 30);
const MATCH_RATE = 100;
const REPLICA_PORTS = [18_090, 18_091];
const SERVER_POOL = 20;
/** File descriptors a process keeps for everything but the pilots' websockets. */
const FD_RESERVE = 1_500;

const log = (m: string) => console.error(`grid ${new Date().toISOString().slice(11, 19)}: ${m}`);
const MiB = 1024 * 1024;

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const size = { ...SIZES[opts.size], ...durations() };
  log(`${size.pilots} pilots, steady ${size.steadySeconds} s`);
  const dbUrl = await freshDatabase(opts.baseDbUrl, 'wms_bench_grid');
  const replicas: RunningServer[] = [];
  const work = mkdtempSync(join(tmpdir(), 'wms-bench-grid-'));
  try {
    for (const port of REPLICA_PORTS) replicas.push(await startServer({ dbUrl, port, env: { WMS_DB_POOL_SIZE: String(SERVER_POOL) } }));
    const pids = replicas.map((r) => pidListening(Number(new URL(r.url).port)));
    log(`replicas ${replicas.map((r, i) => `${r.url} (pid ${pids[i]})`).join(', ')}`);
    const spare = MATCH_RATE * (size.warmupSeconds + size.steadySeconds) * 2 + 1_000;
    const seeded = await seedWaitingJobs(dbUrl, { jobs: size.pilots + spare, queues: 500 });
    log(`seeded ${seeded.waiting} waiting jobs in ${seeded.taskQueues} task queues`);
    const pilots = await seedRunningPilots(dbUrl, size.pilots, replicas.length);
    log(`${pilots.length} pilot records, each with a running job and tokens`);
    const hardFds = fileLimit().hard;
    const socketsPerReplica = Math.min(Math.ceil(size.pilots / replicas.length), hardFds - FD_RESERVE);
    const shards = planShards(pilots, socketsPerReplica, hardFds - FD_RESERVE);
    const rssIdle = pids.map(rssBytes);
    const gens = shards.map((shard, i) => startGenerator(work, i, shard, size, shards.length));
    const connected = await Promise.all(gens.map((g) => g.next('connected')));
    await sleep(2_000);
    const rssConnected = pids.map(rssBytes);
    const held = sumPerReplica(connected.map((c) => c['socketsHeld'] as number[]));
    log(`connected: sockets per replica ${held.join(', ')}; RSS ${rssConnected.map((b) => Math.round(b / MiB)).join(', ')} MiB`);
    for (const g of gens) g.go();
    const results = gens.map((g) => g.next('result'));
    await gens[0]!.next('steady');
    const procs = { replicas: pids, generators: gens.map((g) => g.pid) };
    const cpu0 = await cpuSnapshot(dbUrl, procs);
    await gens[0]!.next('steady-end');
    const cpu1 = await cpuSnapshot(dbUrl, procs);
    const rssSteady = pids.map(rssBytes);
    const out = (await Promise.all(results)).map((r) => JSON.parse(readFileSync(String(r['file']), 'utf8')) as Record<string, unknown>);
    await Promise.all(gens.map((g) => g.exited));
    for (const r of replicas.splice(0)) await r.stop();
    log('replicas stopped; the bare bound');
    const bare = await bareHeartbeatLoop(dbUrl, { rows: size.pilots, seconds: 10, connections: SERVER_POOL * REPLICA_PORTS.length });
    return report({
      opts,
      size,
      seeded,
      out,
      held,
      rssIdle,
      rssConnected,
      rssSteady,
      cpu0,
      cpu1,
      bare,
      dbUrl,
      hardFds,
      shards: shards.length,
    });
  } finally {
    for (const r of replicas) await r.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/** BENCH_GRID_PILOTS and BENCH_GRID_STEADY (seconds) override the size's, to try the harness quickly. */
function durations(): Partial<(typeof SIZES)['smoke']> {
  const pilots = Number(process.env.BENCH_GRID_PILOTS);
  const steady = Number(process.env.BENCH_GRID_STEADY);
  return { ...(pilots > 0 ? { pilots } : {}), ...(steady > 0 ? { steadySeconds: steady, burstSeconds: Math.min(10, steady) } : {}) };
}

/** Pilot records (Submitted, as the site director makes them), one running job each, and their tokens. */
async function seedRunningPilots(dbUrl: string, count: number, replicas: number): Promise<SimPilot[]> {
  const handle = await openDb(dbUrl, { poolSize: 2 });
  try {
    const ids = await createPilots(handle, benchPilotRecords(count, 'grid'));
    const jobs = await handle.query<{ id: string; pilot_id: string; owner: string; owner_group: string; vo: string }>(
      `with p as (select id, row_number() over (order by id) as rn from unnest($1::bigint[]) as t(id)),
            w as (select id, row_number() over (order by id) as rn from jobs where status = 'Waiting' order by id limit $2::int)
       update jobs j set status = 'Running', minor_status = 'Application', application_status = 'Unknown', site = $3::text,
                         pilot_id = p.id, report_seq = 0, start_exec_at = now(), heartbeat_at = now(), last_update_at = now()
         from w join p using (rn)
        where j.id = w.id
       returning j.id, j.pilot_id, j.owner, j.owner_group, j.vo`,
      [ids, count, RESOURCE.site],
    );
    await handle.query('ANALYZE jobs');
    const signer = await TokenSigner.open(handle, { issuer: 'pilot-wms' });
    const day = 86_400;
    const out: SimPilot[] = [];
    for (const [i, j] of jobs.entries()) {
      const pilotId = Number(j.pilot_id);
      const token = (await signer.sign({ role: 'pilot', user: `pilot:${pilotId}`, vo: 'bench', pilotId }, day)).token;
      const jobToken = (
        await signer.sign({ role: 'job', user: j.owner, vo: j.vo, group: j.owner_group, jobId: Number(j.id), pilotId }, 3_600)
      ).token;
      out.push({ pilotId, token, replica: i % replicas, jobId: Number(j.id), jobToken, socket: true });
    }
    return out;
  } finally {
    await handle.close();
  }
}

/** Splits pilots into generator processes of at most `perProcess` websockets; sockets per replica capped. */
function planShards(pilots: SimPilot[], socketsPerReplica: number, perProcess: number): SimPilot[][] {
  const perReplica = new Map<number, number>();
  for (const p of pilots) {
    const n = perReplica.get(p.replica) ?? 0;
    p.socket = n < socketsPerReplica;
    perReplica.set(p.replica, n + 1);
  }
  const sockets = pilots.filter((p) => p.socket).length;
  const count = Math.max(1, Math.ceil(sockets / perProcess));
  const shards: SimPilot[][] = Array.from({ length: count }, () => []);
  pilots.forEach((p, i) => shards[i % count]!.push(p));
  return shards;
}

interface Generator {
  /** The generator's process (the shell execs node, so its pid stays). */
  pid: number;
  next(event: string): Promise<Record<string, unknown>>;
  go(): void;
  exited: Promise<void>;
}

/** One pilot-sim child, its file-descriptor soft limit raised to the hard one by its shell. */
function startGenerator(work: string, index: number, pilots: SimPilot[], size: (typeof SIZES)['smoke'], shards: number): Generator {
  const pilotsFile = join(work, `pilots-${index}.json`);
  writeFileSync(pilotsFile, JSON.stringify(pilots));
  const cfg: SimConfig = {
    replicas: REPLICA_PORTS.map((p) => `http://127.0.0.1:${p}`),
    sourceAddresses: REPLICA_PORTS.map((_, r) => [`127.0.0.${2 + 2 * r}`, `127.0.0.${3 + 2 * r}`]),
    pilotsFile,
    registerRate: size.registerRate / shards,
    heartbeatRate: HEARTBEAT_RATE / shards,
    matchRate: MATCH_RATE / shards,
    warmupSeconds: size.warmupSeconds,
    steadySeconds: size.steadySeconds,
    burstSeconds: size.burstSeconds,
    burstConcurrency: Math.ceil(128 / shards),
    httpConnections: Math.ceil(256 / shards),
    resource: RESOURCE,
  };
  const cfgFile = join(work, `sim-${index}.json`);
  writeFileSync(cfgFile, JSON.stringify(cfg));
  const script = resolve(import.meta.dirname, 'lib/pilot-sim.ts');
  const child: ChildProcess = spawn(
    'sh',
    [
      '-c',
      'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"',
      process.execPath,
      '--max-old-space-size=4096',
      '--import',
      'tsx',
      script,
      cfgFile,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'], cwd: resolve(import.meta.dirname, '..') },
  );
  const events: Record<string, unknown>[] = [];
  const waiters: { event: string; resolve: (x: Record<string, unknown>) => void }[] = [];
  const exited = new Promise<void>((ok, fail) =>
    child.once('exit', (code) => (code === 0 ? ok() : fail(new Error(`pilot-sim ${index} exited with ${code}`)))),
  );
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    let ev: Record<string, unknown>;
    try {
      ev = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // not an event line
    }
    events.push(ev);
    for (const w of waiters.filter((x) => x.event === ev['event'])) w.resolve(ev);
  });
  return {
    pid: child.pid ?? 0,
    next: (event) =>
      Promise.race([
        new Promise<Record<string, unknown>>((r) => {
          const seen = events.find((e) => e['event'] === event);
          if (seen) r(seen);
          else waiters.push({ event, resolve: r });
        }),
        exited.then(() => Promise.reject(new Error(`pilot-sim ${index} ended before '${event}'`))),
      ]),
    go: () => child.stdin!.write('go\n'),
    exited,
  };
}

/** The pid of the process listening on `port` (ss -ltnp). */
function pidListening(port: number): number {
  const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
  const m = /pid=(\d+)/.exec(out);
  if (!m) throw new Error(`no process listens on port ${port}: ${out}`);
  return Number(m[1]);
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function fileLimit(): { soft: number; hard: number } {
  const m = /Max open files\s+(\d+)\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return { soft: Number(m?.[1] ?? 1024), hard: Number(m?.[2] ?? 1024) };
}

/** CPU seconds (utime + stime from /proc/<pid>/stat, USER_HZ 100) of a set of processes. */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // ended meanwhile
    }
  }
  return ticks / 100;
}

interface CpuSnapshot {
  at: number;
  /** Backends connected to the benchmark's database (pg_stat_activity), and every postgres process. */
  backends: Map<number, number>;
  all: number;
  /** Each replica's CPU seconds, and the generators' together. */
  replicas: number[];
  generators: number;
}

/**
 * CPU seconds so far: PostgreSQL per backend of our database and all processes named postgres
 * (WAL writer, checkpointer...), each replica, the generators.
 */
async function cpuSnapshot(dbUrl: string, procs: { replicas: number[]; generators: number[] }): Promise<CpuSnapshot> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    const r = await c.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
    );
    const backends = new Map(r.rows.map((x) => [x.pid, cpuSeconds([x.pid])]));
    const all = cpuSeconds(postgresPids());
    const replicas = procs.replicas.map((pid) => cpuSeconds([pid]));
    return { at: performance.now(), backends, all, replicas, generators: cpuSeconds(procs.generators) };
  } finally {
    await c.end();
  }
}

function postgresPids(): number[] {
  const out = execFileSync('ps', ['-C', 'postgres', '-o', 'pid='], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean).map(Number);
}

/** The bound: bare single-row heartbeat updates on `connections` connections for `seconds`. */
async function bareHeartbeatLoop(
  dbUrl: string,
  opts: { rows: number; seconds: number; connections: number },
): Promise<{ updates: number; seconds: number; updatesPerSecond: number; connections: number; batch: number }> {
  const pool = new pg.Pool({ connectionString: dbUrl, max: opts.connections });
  try {
    await pool.query('DROP TABLE IF EXISTS bench_heartbeats');
    await pool.query('CREATE TABLE bench_heartbeats (id bigint PRIMARY KEY, heartbeat_at timestamptz)');
    await pool.query('INSERT INTO bench_heartbeats SELECT g, now() FROM generate_series(1, $1::int) g', [opts.rows]);
    await pool.query('ANALYZE bench_heartbeats');
    let updates = 0;
    const start = performance.now();
    const until = start + opts.seconds * 1000;
    await Promise.all(
      Array.from({ length: opts.connections }, async () => {
        while (performance.now() < until) {
          const id = 1 + Math.floor(Math.random() * opts.rows);
          await pool.query('UPDATE bench_heartbeats SET heartbeat_at = now() WHERE id = $1', [id]);
          updates++;
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    await pool.query('DROP TABLE bench_heartbeats');
    return { updates, seconds: round1(seconds), updatesPerSecond: Math.round(updates / seconds), connections: opts.connections, batch: 1 };
  } finally {
    await pool.end();
  }
}

function sumPerReplica(lists: number[][]): number[] {
  return REPLICA_PORTS.map((_, r) => lists.reduce((s, l) => s + (l[r] ?? 0), 0));
}

function report(x: {
  opts: BenchOptions;
  size: (typeof SIZES)['smoke'];
  seeded: { taskQueues: number; waiting: number };
  out: Record<string, unknown>[];
  held: number[];
  rssIdle: number[];
  rssConnected: number[];
  rssSteady: number[];
  cpu0: CpuSnapshot;
  cpu1: CpuSnapshot;
  bare: Awaited<ReturnType<typeof bareHeartbeatLoop>>;
  dbUrl: string;
  hardFds: number;
  shards: number;
}): Promise<BenchResult> {
  const lat = (call: string) => summarize(x.out.flatMap((o) => (o['latencies'] as Record<string, number[]>)[call] ?? []));
  const sum = (k: string) => x.out.reduce((s, o) => s + Number(o[k] ?? 0), 0);
  const steadySeconds = Math.max(...x.out.map((o) => Number(o['steadySeconds'])));
  const heartbeatsPerSecond = Math.round(sum('heartbeats') / steadySeconds);
  const matchesPerSecond = round1(sum('matches') / steadySeconds);
  const burstHb = x.out.reduce((s, o) => s + (o['burst'] as { heartbeats: number }).heartbeats, 0);
  const burstSeconds = Math.max(...x.out.map((o) => (o['burst'] as { seconds: number }).seconds));
  const capacity = Math.round(burstHb / burstSeconds);
  const heldAfter = sumPerReplica(x.out.map((o) => o['socketsHeld'] as number[]));
  const perConn = x.rssConnected.map((b, i) => (x.held[i] ? Math.round((b - x.rssIdle[i]!) / x.held[i]!) : 0));
  const wall = (x.cpu1.at - x.cpu0.at) / 1000;
  let backendCpu = 0;
  for (const [pid, after] of x.cpu1.backends) backendCpu += Math.max(0, after - (x.cpu0.backends.get(pid) ?? 0));
  const errors: Record<string, number> = {};
  for (const o of x.out) for (const [k, v] of Object.entries(o['errors'] as Record<string, number>)) errors[k] = (errors[k] ?? 0) + v;
  const hb = lat('heartbeat');
  const cores = (seconds: number) => Math.round((seconds / wall) * 100) / 100;
  const worstPerConn = Math.max(...perConn);
  return serverVersion(x.dbUrl).then((postgres) => ({
    scenario: 'grid',
    size: x.opts.size,
    headline: { name: 'sustained heartbeats per second', value: heartbeatsPerSecond, unit: 'heartbeats/s' },
    target: {
      heartbeatsPerSecond: HEARTBEAT_RATE,
      heartbeatP99Ms: 100,
      matchesPerSecond: MATCH_RATE,
      socketsPerReplica: 50_000,
      socketsMemoryGiB: 2,
      met: {
        heartbeats: heartbeatsPerSecond >= HEARTBEAT_RATE * 0.98,
        heartbeatP99: hb.p99 < 100,
        matching: matchesPerSecond >= MATCH_RATE * 0.98,
        memoryFor50kSockets: worstPerConn * 50_000 < 2 * 1024 * MiB,
      },
    },
    pilots: x.size.pilots,
    replicas: REPLICA_PORTS.length,
    generators: x.shards,
    offered: {
      heartbeatsPerSecond: HEARTBEAT_RATE,
      matchesPerSecond: MATCH_RATE,
      heartbeatPeriodSeconds: round1(x.size.pilots / HEARTBEAT_RATE),
    },
    steadySeconds: round1(steadySeconds),
    heartbeatsPerSecond,
    matchesPerSecond,
    noMatch: sum('noMatch'),
    lateHeartbeats: sum('lateHeartbeats'),
    lateMatches: sum('lateMatches'),
    errors,
    latencyMs: { register: lat('register'), match: lat('match'), status: lat('status'), heartbeat: hb },
    heartbeatCapacity: { name: 'closed-loop burst', heartbeatsPerSecond: capacity, latencyMs: lat('burst') },
    websockets: {
      heldPerReplica: x.held,
      heldAfterSteadyPerReplica: heldAfter,
      closedUnexpectedly: sum('socketsClosed'),
      fdHardLimit: x.hardFds,
      replicaRssMiB: {
        idle: x.rssIdle.map((b) => Math.round(b / MiB)),
        connected: x.rssConnected.map((b) => Math.round(b / MiB)),
        afterSteady: x.rssSteady.map((b) => Math.round(b / MiB)),
      },
      bytesPerConnection: perConn,
      projectedGiBFor50k: round1((worstPerConn * 50_000 + Math.max(...x.rssIdle)) / (1024 * MiB)),
    },
    postgresCpu: {
      how: 'utime+stime from /proc/<pid>/stat over the steady phase: backends of the benchmark database (pg_stat_activity), and every process named postgres',
      seconds: round1(wall),
      backendsCores: cores(backendCpu),
      allPostgresCores: cores(x.cpu1.all - x.cpu0.all),
    },
    processCores: {
      how: 'utime+stime over the steady phase, in cores (the machine has 2 here)',
      replicas: x.cpu1.replicas.map((after, i) => cores(after - x.cpu0.replicas[i]!)),
      generators: cores(x.cpu1.generators - x.cpu0.generators),
    },
    bound: { name: 'bare UPDATE heartbeat_at loop, one row per statement', ...x.bare },
    ratioToBound: Math.round((capacity / x.bare.updatesPerSecond) * 1000) / 1000,
    sustainedRatioToBound: Math.round((heartbeatsPerSecond / x.bare.updatesPerSecond) * 1000) / 1000,
    waitingJobs: x.seeded.waiting,
    postgres,
  }));
}
