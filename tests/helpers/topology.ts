/**
 * The process topology of issue 14 for the failover tests: as an operator runs pilot-wms at
 * scale, every part a process of its own on one PostgreSQL database (the test file's, from
 * tests/helpers/db.ts):
 * - two replicas, `node dist/cli/main.js server start --no-agents --no-local-site --db … --port P
 *   --data-dir …` (named `r1`, `r2`; each with its own data dir and log file);
 * - HAProxy in front of them (tests/helpers/haproxy.ts): `url` is the address clients and pilots use;
 * - one agents process, `server agents`, that serves the local site (`slots` local pilots) and
 *   whose pilots call home through HAProxy (WMS_PUBLIC_URL).
 * Local sites are off in the replicas: only the agents process starts and settles local pilots,
 * so a replica that restarts never takes the agents' pilots for its own.
 *
 * As in tests/helpers/faults.ts (both from tests/helpers/cli-process.ts): payload isolation `none`, agents every second or two, and
 * everything of the run under one temporary directory (the agents' `TMPDIR`, so the pilots'
 * homes and payloads are found by it in `/proc`); a ledger that every payload of `submitLedgerJobs`
 * appends `<jobId> <pid> start|end <ms>` to, so a payload that ran twice shows two `start` lines.
 *
 * `kill(replica, signal)` and `restart(replica)` are the faults; `replicaOf(pid)` says which
 * replica holds a process's long-lived connection through HAProxy (a pilot's or a `--wait`
 * client's websocket), from HAProxy's `show sess` and the process's sockets in `/proc`.
 * `stop()` stops everything and removes the directory (`TOPOLOGY_KEEP=1` keeps it).
 * Imports no vitest.
 */
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  envWithoutWms,
  fastConfig,
  hasExited,
  healthy,
  ledgerJdlLines,
  ledgerPaths,
  makeRunDirs,
  parseLedger,
  queryOnce,
  requireBuild,
  spawnCli,
  tail,
  waitHealthy,
  writeLedgerPayload,
  type CliProcess,
} from './cli-process.js';
import { FINAL_STATUSES, processesWith } from './faults.js';
import { startHaproxy, type Haproxy } from './haproxy.js';
import { freePort } from './pg-cluster.js';

export type ReplicaName = 'r1' | 'r2';
export const REPLICAS: readonly ReplicaName[] = ['r1', 'r2'];

export interface TopologyOptions {
  /** A label for the temporary directory. */
  name: string;
  /** A migrated PostgreSQL database of its own (tests/helpers/db.ts reservePostgresDatabase). */
  dbUrl: string;
  /** Local pilots of the agents process at once. */
  slots: number;
  /** How long each ledger payload sleeps between its `start` and `end` lines. */
  payloadSeconds: number;
  /** Deep-merged over the config file every process reads (core/config.ts ConfigFileSchema). */
  config?: Record<string, unknown>;
  /** Log level of every process (default `TOPOLOGY_LOG_LEVEL` or `info`). */
  logLevel?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** A process's TCP connections to `port` on this machine: their local ports. */
async function localPortsTo(pid: number, port: number): Promise<number[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
    if (m) inodes.add(m[1]!);
  }
  const out: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9]!)) continue;
      const local = parseInt(f[1]!.split(':')[1]!, 16);
      const remote = parseInt(f[2]!.split(':')[1]!, 16);
      if (remote === port && f[3] === '01') out.push(local); // 01: ESTABLISHED
    }
  }
  return out;
}

export class Topology {
  adminToken = '';
  haproxy: Haproxy | null = null;
  private readonly replicas = new Map<ReplicaName, CliProcess>();
  private agents: CliProcess | null = null;
  private starts = 0;
  private readonly log: (line: string) => void;

  private constructor(
    readonly o: TopologyOptions,
    /** Everything of the run: data dirs, tmp/, ledger/, logs, config.json. */
    readonly base: string,
    readonly ports: Readonly<Record<ReplicaName, number>>,
    /** In every ledger payload's command line and environment. */
    readonly marker: string,
  ) {
    this.log = o.log ?? (() => undefined);
  }

  /** HAProxy's address: what clients and pilots use. */
  get url(): string {
    if (!this.haproxy) throw new Error('HAProxy is not running');
    return this.haproxy.url;
  }
  /** A replica's own address (bypassing HAProxy). */
  replicaUrl(r: ReplicaName): string {
    return `http://127.0.0.1:${this.ports[r]}`;
  }
  get ledgerFile(): string {
    return ledgerPaths(this.base, this.marker).ledgerFile;
  }
  get payloadScript(): string {
    return ledgerPaths(this.base, this.marker).payloadScript;
  }
  /** Where the pilots and payloads of the agents process live (their TMPDIR and HOME). */
  get runDir(): string {
    return join(this.base, 'tmp');
  }

  /** Starts the replicas, HAProxy and the agents process; stops what started when one fails. */
  static async start(o: TopologyOptions): Promise<Topology> {
    requireBuild();
    const base = await mkdtemp(join(tmpdir(), `wms-topology-${o.name}-`));
    const marker = `wmstopo${process.pid}x${Math.random().toString(36).slice(2, 10)}`;
    const t = new Topology(o, base, { r1: await freePort(), r2: await freePort() }, marker);
    try {
      await t.writeFiles();
      await Promise.all(REPLICAS.map((r) => t.startReplica(r)));
      t.haproxy = await startHaproxy({ backends: REPLICAS.map((r) => ({ name: r, url: t.replicaUrl(r) })) });
      for (const r of REPLICAS) await t.waitServer(r, 'UP');
      await t.startAgents();
      t.log(`topology up: HAProxy ${t.url} -> r1 ${t.replicaUrl('r1')}, r2 ${t.replicaUrl('r2')}; agents with ${o.slots} local slots`);
      return t;
    } catch (e) {
      await t.stop();
      throw e;
    }
  }

  private async writeFiles(): Promise<void> {
    await makeRunDirs(this.base);
    await writeLedgerPayload(this.base, this.marker, this.o.payloadSeconds, 'topology');
    const config = fastConfig(
      { slots: this.o.slots, heartbeatSeconds: 10, stalledAfterSeconds: 60, failedAfterSeconds: 180, shutdownGrace: 5 },
      this.o.config ?? {},
    );
    await writeFile(join(this.base, 'config.json'), JSON.stringify(config, null, 2));
  }

  private async spawnCli(label: string, args: string[], env: Record<string, string>): Promise<CliProcess> {
    return spawnCli({ args, log: join(this.base, `${label}-${++this.starts}.log`), cwd: this.base, env: envWithoutWms(env) });
  }

  /** GET `url`/api/health answers 200. */
  async healthy(url: string): Promise<boolean> {
    return healthy(url);
  }

  private async startReplica(r: ReplicaName): Promise<void> {
    const args = [
      'server',
      'start',
      '--no-agents',
      '--no-local-site',
      '--db',
      this.o.dbUrl,
      '--port',
      String(this.ports[r]),
      '--data-dir',
      join(this.base, `data-${r}`),
      '--config',
      join(this.base, 'config.json'),
      '--log-level',
      this.logLevel,
    ];
    const p = await this.spawnCli(`replica-${r}`, args, {});
    this.replicas.set(r, p);
    await waitHealthy(this.replicaUrl(r), 90_000, `replica ${r}`, p);
    if (!this.adminToken) this.adminToken = (await readFile(join(this.base, `data-${r}`, 'admin.token'), 'utf8')).trim();
    this.log(`replica ${r} up (pid ${p.child.pid}) at ${this.replicaUrl(r)}`);
  }

  private get logLevel(): string {
    return this.o.logLevel ?? process.env['TOPOLOGY_LOG_LEVEL'] ?? 'info';
  }

  private async startAgents(): Promise<void> {
    const args = [
      'server',
      'agents',
      '--db',
      this.o.dbUrl,
      '--data-dir',
      join(this.base, 'data-agents'),
      '--config',
      join(this.base, 'config.json'),
    ];
    const p = await this.spawnCli('agents', args, { WMS_PUBLIC_URL: this.url, WMS_LOG_LEVEL: this.logLevel, TMPDIR: this.runDir });
    this.agents = p;
    const deadline = Date.now() + 60_000;
    while (!/agents running:/.test(await readFile(p.log, 'utf8').catch(() => ''))) {
      if (hasExited(p.child))
        throw new Error(`the agents process exited (${p.child.exitCode ?? p.child.signalCode}):\n${await tail(p.log, 40)}`);
      if (Date.now() > deadline) throw new Error(`the agents process did not start in 60 s:\n${await tail(p.log, 40)}`);
      await sleep(200);
    }
    this.log(`agents up (pid ${p.child.pid})`);
  }

  /** The replica's pid while it runs, else null. */
  pidOf(r: ReplicaName): number | null {
    const c = this.replicas.get(r)?.child;
    return c && !hasExited(c) ? (c.pid ?? null) : null;
  }

  /** Sends `signal` to the replica and waits for its exit. */
  async kill(r: ReplicaName, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.replicas.get(r);
    if (!p || this.pidOf(r) === null) throw new Error(`replica ${r} is not running`);
    this.log(`${signal} to replica ${r} (pid ${p.child.pid})`);
    p.child.kill(signal);
    await p.exited;
  }

  /** Starts the replica again on its port and data dir; waits until HAProxy's checks see it up. */
  async restart(r: ReplicaName): Promise<void> {
    if (this.pidOf(r) !== null) throw new Error(`replica ${r} still runs`);
    await this.startReplica(r);
    await this.waitServer(r, 'UP');
  }

  /** Waits until HAProxy's health checks say `state` (`UP`, `DOWN`) of the replica. */
  async waitServer(r: ReplicaName, state: 'UP' | 'DOWN', timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = (await this.haproxy!.servers())[r];
      if (now === state) return;
      if (Date.now() > deadline) throw new Error(`HAProxy sees replica ${r} ${now}, not ${state}, after ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /**
   * The replicas holding the long-lived connections of process `pid` through HAProxy: its
   * streams in `show sess` at least `minAgeSeconds` old (a websocket, not a request in flight).
   */
  async replicasOf(pid: number, minAgeSeconds = 2): Promise<ReplicaName[]> {
    const ports = new Set(await localPortsTo(pid, this.haproxy!.port));
    const held = (await this.haproxy!.sessions()).filter((s) => ports.has(s.srcPort) && s.server !== null && s.ageSeconds >= minAgeSeconds);
    return [...new Set(held.map((s) => s.server as ReplicaName))].sort();
  }

  /** Pilots with their state and the last `lines` lines of their own logs (for failure messages). */
  async pilotReport(stamps: readonly string[] | null = null, lines = 8): Promise<string> {
    const pilots = await this.query<{ id: string; stamp: string; status: string; status_reason: string; jobs_run: number }>(
      `select id, stamp, status, status_reason, jobs_run from pilots where $1::text[] is null or stamp = any($1::text[]) order by id`,
      [stamps],
    );
    const out: string[] = [];
    for (const p of pilots) {
      out.push(`pilot ${p.id} ${p.stamp}: ${p.status} "${p.status_reason}", ${p.jobs_run} jobs`);
      const logs = await this.query<{ at: Date; line: string }>(
        'select at, line from pilot_logs where pilot_id = $1 order by id desc limit $2',
        [p.id, lines],
      );
      for (const l of logs.reverse()) out.push(`    ${new Date(l.at).toISOString()} ${l.line.slice(0, 200)}`);
    }
    return out.join('\n');
  }

  /** Calls the API (through HAProxy, or `via` a replica) as admin; throws on a non-2xx answer. */
  async api<T = any>(method: string, path: string, body?: unknown, o: { via?: ReplicaName; timeoutMs?: number } = {}): Promise<T> {
    const base = o.via ? this.replicaUrl(o.via) : this.url;
    const res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(o.timeoutMs ?? 15_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}${o.via ? ` (${o.via})` : ''}: ${res.status} ${text.slice(0, 300)}`);
    return text ? (JSON.parse(text) as T) : (undefined as T);
  }

  /** A parametric JDL of `n` jobs, each running the ledger payload. */
  ledgerJdl(n: number): string {
    const lines = ledgerJdlLines({
      jobName: `topology_${this.o.name}`,
      payloadScript: this.payloadScript,
      marker: this.marker,
      markerVar: 'TOPOLOGY_MARKER',
      n,
    });
    return [...lines, ''].join('\n');
  }

  /** Runs SQL on the database (a connection of its own). */
  async query<T = any>(sql: string, params: unknown[] = []): Promise<T[]> {
    return queryOnce<T>(this.o.dbUrl, sql, params);
  }

  /** Jobs by status among `ids`, from the database. */
  async counts(ids: readonly number[]): Promise<Record<string, number>> {
    const rows = await this.query<{ status: string; n: string }>(
      'select status, count(*) as n from jobs where id = any($1::bigint[]) group by status',
      [ids],
    );
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  /** Polls the database until at least `target` of `ids` are final; throws after `timeoutMs` with the counts. */
  async waitFinal(ids: readonly number[], target: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastLog = 0;
    for (;;) {
      const c = await this.counts(ids);
      const final = FINAL_STATUSES.reduce((s, k) => s + (c[k] ?? 0), 0);
      if (final >= target) return;
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        this.log(`  ${final}/${ids.length} final, waiting for ${target}: ${JSON.stringify(c)}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${target} jobs final: ${JSON.stringify(c)}`);
      await sleep(250);
    }
  }

  /** The ledger: per job id, the pids of its payload runs and whether each wrote `end`; lines that do not parse. */
  async ledger(): Promise<{ runs: Map<number, { pid: number; ended: boolean }[]>; strange: string[] }> {
    const { runs, strange } = parseLedger(await readFile(this.ledgerFile, 'utf8'));
    const ended = new Map([...runs].map(([id, list]) => [id, list.map((r) => ({ pid: r.pid, ended: r.end !== null }))]));
    return { runs: ended, strange };
  }

  /** Live pilot processes of the agents process: pid -> stamp. */
  async livePilots(): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    for (const [pid, cmd] of await processesWith(this.runDir, this.ownPids())) {
      if (!/\bpilot\.mjs\b/.test(cmd)) continue;
      const environ = (await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '')).split('\0');
      const stamp = environ.find((e) => e.startsWith('WMS_PILOT_STAMP='))?.slice('WMS_PILOT_STAMP='.length);
      if (stamp) out.set(pid, stamp);
    }
    return out;
  }

  /** Processes whose command line or environment holds `marker` (payloads), not ours. */
  async processesWith(marker: string): Promise<Map<number, string>> {
    return processesWith(marker, this.ownPids());
  }

  private ownPids(): number[] {
    return [...this.replicas.values(), ...(this.agents ? [this.agents] : [])].flatMap((p) => (p.child.pid ? [p.child.pid] : []));
  }

  /** The last lines of every process's log (for failure messages). */
  async logs(lines = 20): Promise<string> {
    const out: string[] = [];
    for (const name of (await readdir(this.base).catch(() => [] as string[])).filter((n) => n.endsWith('.log')).sort())
      out.push(`--- ${name}\n${await tail(join(this.base, name), lines)}`);
    return out.join('\n');
  }

  /**
   * Stops everything: the agents process (SIGTERM: its local pilots are stopped), the replicas
   * (SIGTERM), then SIGKILL to whatever of the run is left, HAProxy; removes the directory.
   */
  async stop(): Promise<void> {
    const stopProc = async (p: CliProcess | null | undefined) => {
      if (!p || hasExited(p.child)) return;
      p.child.kill('SIGTERM');
      const done = await Promise.race([p.exited.then(() => true), sleep(30_000).then(() => false)]);
      if (!done) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
    };
    await stopProc(this.agents);
    await Promise.all(REPLICAS.map((r) => stopProc(this.replicas.get(r))));
    for (const pid of new Set([
      ...(await processesWith(this.runDir).catch(() => new Map())).keys(),
      ...(await processesWith(this.marker).catch(() => new Map())).keys(),
    ])) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await this.haproxy?.stop();
    this.haproxy = null;
    if (process.env['TOPOLOGY_KEEP'] === '1') this.log(`kept ${this.base}`);
    else await rm(this.base, { recursive: true, force: true }).catch(() => undefined);
  }
}
