/**
 * A real HAProxy (Debian's `haproxy` package, installed by scripts/test-env.sh) in front of
 * server replicas, for the failover tests of issue 14: `startHaproxy({ backends })` writes a
 * config to a temp dir and runs `haproxy -db -f <cfg>` in the foreground on a free port (or the
 * given one), killed by `stop()`.
 *
 * The config: HTTP mode, round robin, a health check `GET /api/health` every 500 ms (a replica
 * is out after 2 failures), WebSocket upgrades passed through with long tunnel timeouts, no
 * keep-alive towards the replicas unless `keepAlive` (every request opens its own connection, so
 * none is sent down a pooled connection to a dead replica; the benchmarks ask for keep-alive, as
 * deploy/haproxy/haproxy.cfg has it) and `option redispatch` with retries, so a request whose
 * connection to a dead replica is refused goes to the other one; the first refused connection
 * marks that replica down (`observe layer4`) without waiting for its health checks. A GET or
 * HEAD that got no answer (its replica died under it) is retried too; any other method only on
 * a refused connection: a POST that reached a replica is never sent twice.
 *
 * `sessions()` reads `show sess` from its stats socket (in the temp dir): a process's connection
 * (its local port) tells which replica holds, say, a pilot's websocket.
 *
 * Without the binary `startHaproxy` throws saying so; `haproxyProblem()` tells a suite why
 * beforehand (a suite must FAIL under CI, as tests/helpers/db.ts does for PostgreSQL).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './pg-cluster.js';

export interface Haproxy {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** The streams HAProxy holds now (`show sess` on its stats socket): who is connected to which replica. */
  sessions(): Promise<HaproxySession[]>;
  /** Each backend server's state as the health checks see it (`show stat`): `UP`, `DOWN`, `UP 1/2`, … */
  servers(): Promise<Record<string, string>>;
}

/** One stream of `show sess`: the client's address and the backend server it is on (null: none yet). */
export interface HaproxySession {
  srcPort: number;
  server: string | null;
  /** The stream's age in seconds. */
  ageSeconds: number;
}

export interface HaproxyBackend {
  /** The server's name in the config (letters, digits, `-`, `_`). */
  name: string;
  /** `http://host:port` of the replica. */
  url: string;
}

/** Why haproxy cannot be run here, or null. */
export function haproxyProblem(): string | null {
  const r = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return "haproxy is not installed (Debian's haproxy package: scripts/test-env.sh)";
  return null;
}

export interface HaproxyOptions {
  /**
   * How long a health check may wait for its answer (default: the 500 ms interval); a benchmark
   * that saturates the replicas sets more, or its busy replicas are taken for dead.
   */
  checkTimeoutMs?: number;
  /** Keep connections to the replicas open between requests (HAProxy's default; off here unless asked). */
  keepAlive?: boolean;
}

/** The config text for `backends` behind 127.0.0.1:`port`. */
export function haproxyConfig(
  backends: HaproxyBackend[],
  port: number,
  statsSocket: string,
  { checkTimeoutMs, keepAlive = false }: HaproxyOptions = {},
): string {
  const servers = backends.map((b) => {
    if (!/^[A-Za-z0-9_-]+$/.test(b.name)) throw new Error(`haproxy backend name ${JSON.stringify(b.name)}: letters, digits, - and _ only`);
    const u = new URL(b.url);
    if (u.protocol !== 'http:' || !u.port) throw new Error(`haproxy backend url ${b.url}: http://host:port expected`);
    return `  server ${b.name} ${u.hostname}:${u.port} check`;
  });
  return [
    'global',
    '  maxconn 4096',
    `  stats socket ${statsSocket} mode 600 level admin`,
    '',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 120s',
    '  timeout server 120s',
    '  timeout tunnel 1h',
    '  timeout client-fin 5s',
    '  timeout http-request 30s',
    ...(keepAlive ? [] : ['  option http-server-close']),
    '  option redispatch 1',
    '  retries 3',
    '  retry-on conn-failure empty-response',
    ...(checkTimeoutMs === undefined ? [] : [`  timeout check ${Math.round(checkTimeoutMs)}ms`]),
    '',
    'frontend wms',
    `  bind 127.0.0.1:${port}`,
    '  default_backend replicas',
    '',
    'backend replicas',
    '  balance roundrobin',
    '  option httpchk GET /api/health',
    '  http-check expect status 200',
    // A request whose replica died under it (no answer) goes to the other one only when it is a read.
    '  http-request disable-l7-retry if !METH_GET !METH_HEAD',
    // The first refused connection takes the replica out at once, before its health checks fail.
    '  default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down',
    ...servers,
    '',
  ].join('\n');
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Starts HAProxy in front of `backends`; resolves once it accepts connections. */
export async function startHaproxy(opts: { backends: HaproxyBackend[]; port?: number } & HaproxyOptions): Promise<Haproxy> {
  const problem = haproxyProblem();
  if (problem) throw new Error(problem);
  if (opts.backends.length === 0) throw new Error('haproxy: at least one backend expected');
  const port = opts.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'wms-haproxy-'));
  const cfg = join(dir, 'haproxy.cfg');
  const socket = join(dir, 'stats.sock');
  await writeFile(cfg, haproxyConfig(opts.backends, port, socket, opts));
  let output = '';
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode}): ${output.slice(-2000)}`);
      const failed = await Promise.race([spawnError, sleep(0).then(() => null)]);
      if (failed) throw new Error(`haproxy did not start: ${failed.message}`);
      if (await accepts(port)) break;
      if (Date.now() > deadline) throw new Error(`haproxy not listening on ${port} after 20 s: ${output.slice(-2000)}`);
      await sleep(100);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stop,
    sessions: async () => parseSessions(await statsCommand(socket, 'show sess')),
    servers: async () => parseServerStates(await statsCommand(socket, 'show stat')),
  };
}

/** Sends one command to the stats socket and answers what HAProxy wrote before closing it. */
function statsCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const c = connect(socket, () => c.write(`${command}\n`));
    c.setEncoding('utf8');
    c.on('data', (d: string) => (out += d));
    c.once('error', reject);
    c.once('close', () => resolve(out));
  });
}

/** `show sess` lines: `0x…: proto=tcpv4 src=127.0.0.1:41234 fe=wms be=replicas srv=r1 ts=00 epoch=0x0 age=3s …`. */
export function parseSessions(text: string): HaproxySession[] {
  const out: HaproxySession[] = [];
  for (const line of text.split('\n')) {
    const src = /\bsrc=([^ ]*):(\d+)\b/.exec(line);
    if (!src || src[1] === 'unix') continue; // the stats socket's own stream
    const srv = /\bsrv=([^ ]+)/.exec(line)?.[1];
    const age = /\bage=([0-9dhms]+)/.exec(line)?.[1] ?? '0s';
    out.push({ srcPort: Number(src[2]), server: srv && srv.toLowerCase() !== '<none>' ? srv : null, ageSeconds: seconds(age) });
  }
  return out;
}

/** `show stat` (CSV, `# pxname,svname,…,status,…`): the status of each server of the backend. */
export function parseServerStates(csv: string): Record<string, string> {
  const lines = csv.split('\n').filter((l) => l.trim() !== '');
  const head = (lines[0] ?? '').replace(/^# /, '').split(',');
  const [px, sv, st] = ['pxname', 'svname', 'status'].map((k) => head.indexOf(k));
  const out: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const f = l.split(',');
    if (f[px!] === 'replicas' && f[sv!] !== 'BACKEND') out[f[sv!]!] = f[st!]!;
  }
  return out;
}

/** HAProxy's ages: `3s`, `1m12s`, `2h5m`, `1d3h`. */
function seconds(age: string): number {
  const unit: Record<string, number> = { d: 86_400, h: 3600, m: 60, s: 1 };
  let total = 0;
  for (const m of age.matchAll(/(\d+)([dhms])/g)) total += Number(m[1]) * unit[m[2]!]!;
  return total;
}
