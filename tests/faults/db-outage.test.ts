/**
 * The whole server (`wms server start`, a child process) through PostgreSQL restarts on a
 * private cluster (never the shared server on 5432): `pg_ctl stop -m fast`, `-m immediate`,
 * `-m fast` again, each while submissions, listings, sandbox uploads, pilot listings, health
 * checks, metrics scrapes and an event-stream subscriber keep going.
 *
 * Asserted: the server process never exits; no answer is ever a 500; while the database is
 * down every route answers 503 with Retry-After and code WMS_DB_UNAVAILABLE (health too;
 * /metrics still answers, with wms_database_up 0); the event stream says WMS_DB_UNAVAILABLE
 * once and stays open; after the restart everything answers again without restarting the
 * server; `wms job list` run during the outage prints "database unavailable, retrying" and
 * succeeds once the database is back; `wms job submit` during the outage fails at once with a
 * clear message (no stack trace) and stores nothing; the server logs each outage once, not
 * once per poll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { create as tarCreate } from 'tar';
import { WebSocket } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort, PgCluster, pgClusterProblem } from '../helpers/pg-cluster.js';

const problem = pgClusterProblem();
if (problem && process.env['CI']) throw new Error(`fault tests need a private PostgreSQL cluster: ${problem}`);
if (problem) console.warn(`SKIPPED db-outage: ${problem}`);

const root = resolve(import.meta.dirname, '../..');
/** The CLI from source through tsx, as the integration tests run it (no build needed). */
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const main = join(root, 'cli/main.ts');

let cluster: PgCluster;
let work: string;
let server: ChildProcess;
let url: string;
let admin: string;
let alice: string;
let serverLog = '';
let serverExit: { code: number | null; signal: string | null } | null = null;

interface Answer {
  what: string;
  status: number;
  code: string | null;
  retryAfter: string | null;
  /** The database state when the request was sent. */
  phase: Phase;
}
type Phase = 'up' | 'stopping' | 'down' | 'starting';
let phase: Phase = 'up';
const answers: Answer[] = [];
const networkErrors: string[] = [];

function baseEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? '', HOME: work, XDG_CONFIG_HOME: join(work, '.no-config') };
}

async function call(
  what: string,
  method: string,
  path: string,
  token: string | null,
  body?: string | Buffer,
  type?: string,
): Promise<Answer & { body: string }> {
  const sentIn = phase;
  const headers: Record<string, string> = {};
  if (token) headers['authorization'] = `Bearer ${token}`;
  if (type) headers['content-type'] = type;
  const res = await fetch(url + path, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let code: string | null = null;
  try {
    code = (JSON.parse(text) as { code?: string }).code ?? null;
  } catch {
    // /metrics: text
  }
  const a: Answer = { what, status: res.status, code, retryAfter: res.headers.get('retry-after'), phase: sentIn };
  answers.push(a);
  return { ...a, body: text };
}

function jdl(n: number): string {
  return `[ Executable = "/bin/true"; JobName = "outage-${n}"; CPUTime = 100; ]`;
}

let uploads = 0;
async function sandbox(): Promise<{ sha: string; bytes: Buffer }> {
  const dir = await mkdtemp(join(work, 'sb-'));
  await writeFile(join(dir, 'input.txt'), `upload ${uploads++} ${Math.random()}\n`);
  const file = join(dir, 'sb.tar.gz');
  await tarCreate({ gzip: true, file, cwd: dir, portable: true }, ['input.txt']);
  const bytes = await readFile(file);
  await rm(dir, { recursive: true, force: true });
  return { sha: createHash('sha256').update(bytes).digest('hex'), bytes };
}

/** A parametric JDL of `n` jobs: one submission, one transaction of a few hundred milliseconds. */
function sweep(tag: number, n: number): string {
  return `[ Executable = "/bin/echo"; Arguments = "%s"; JobName = "sweep-${tag}-%n"; Parameters = ${n}; ParameterStart = 1; ParameterStep = 1; CPUTime = 100; ]`;
}

/**
 * Requests of every kind, one after another, until `stop` is set. Workers below 2 submit big
 * parametric sweeps only, so that transactions are open on pooled clients when the database
 * goes away (the case that killed the server: a checked-out client's 'error' event).
 */
async function load(worker: number, stop: { done: boolean }): Promise<void> {
  let n = 0;
  while (!stop.done) {
    n++;
    try {
      if (worker < 2) {
        await call('sweep', 'POST', '/api/jobs', alice, JSON.stringify({ jdl: sweep(worker * 100_000 + n, 200) }), 'application/json');
        continue;
      }
      switch ((n + worker) % 6) {
        case 0:
          await call(
            'submit',
            'POST',
            '/api/jobs',
            alice,
            JSON.stringify({ jdls: [1, 2, 3, 4, 5].map((i) => jdl(worker * 100_000 + n * 10 + i)) }),
            'application/json',
          );
          break;
        case 1:
          await call('list', 'GET', '/api/jobs?limit=5', alice);
          break;
        case 2: {
          const { sha, bytes } = await sandbox();
          await call('upload', 'PUT', `/api/sandboxes/${sha}`, alice, bytes, 'application/gzip');
          break;
        }
        case 3:
          await call('pilots', 'GET', '/api/pilots?limit=5', admin);
          break;
        case 4:
          await call('health', 'GET', '/api/health', null);
          break;
        case 5:
          await call('counts', 'GET', '/api/jobs/summary', alice);
          break;
      }
    } catch (e) {
      networkErrors.push(`${phase}: ${(e as Error).message} ${String((e as { cause?: unknown }).cause ?? '')}`);
    }
    await new Promise((r) => setTimeout(r, 30));
  }
}

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `wms ...args` in a child process; `onStderr` sees its stderr as it comes. */
function wms(args: string[], token: string, onStderr?: (text: string) => void): Promise<CliRun> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', tsx, main, ...args], {
      cwd: work,
      env: { ...baseEnv(), WMS_URL: url, WMS_TOKEN: token },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr);
    });
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

async function until<T>(what: string, probe: () => Promise<T | null | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => null);
    if (v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  if (problem) return;
  cluster = await PgCluster.create();
  const dbUrl = await cluster.createDatabase('outage_server');
  work = await mkdtemp(join(tmpdir(), 'wms-outage-'));
  // Rate limits well above this test's load (the defaults are per minute and per caller).
  await writeFile(join(work, 'config.json'), JSON.stringify({ rateLimit: { submissions: 100_000, uploads: 100_000, tokens: 100_000 } }));
  const port = await freePort();
  server = spawn(
    process.execPath,
    [
      '--import',
      tsx,
      main,
      'server',
      'start',
      '--db',
      dbUrl,
      '--data-dir',
      join(work, 'var'),
      '--port',
      String(port),
      '--no-local-site',
      '--config',
      join(work, 'config.json'),
    ],
    { cwd: work, env: baseEnv() },
  );
  server.stdout!.on('data', (d: Buffer) => (serverLog += d.toString()));
  server.stderr!.on('data', (d: Buffer) => (serverLog += d.toString()));
  server.on('exit', (code, signal) => (serverExit = { code, signal }));
  url = await until(
    'the server to listen',
    async () => /listening on (http:\/\/\S+)/.exec(serverLog)?.[1] ?? (serverExit ? Promise.reject(new Error(serverLog)) : null),
    60_000,
  );
  admin = (await readFile(join(work, 'var', 'admin.token'), 'utf8')).trim();
  const issued = await call(
    'token',
    'POST',
    '/api/tokens',
    admin,
    JSON.stringify({ user: 'alice', vo: 'lhcb', group: 'lhcb_user' }),
    'application/json',
  );
  expect(issued.status, issued.body).toBe(201);
  alice = (JSON.parse(issued.body) as { token: string }).token;
  answers.length = 0;
});

afterAll(async () => {
  if (server && serverExit === null) {
    server.kill('SIGTERM');
    await until('the server to stop', async () => serverExit !== null, 20_000).catch(() => server.kill('SIGKILL'));
  }
  await cluster?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
});

/** An event-stream subscriber that keeps every message. */
async function subscriber(): Promise<{ messages: { type?: string; code?: string }[]; ws: WebSocket; closed: () => boolean }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/events?token=${encodeURIComponent(admin)}`);
  const messages: { type?: string; code?: string }[] = [];
  let closed = false;
  ws.addEventListener('message', (m) => messages.push(JSON.parse(String(m.data)) as { type?: string }));
  ws.addEventListener('close', () => (closed = true));
  await new Promise<void>((r, j) => {
    ws.addEventListener('open', () => r());
    ws.addEventListener('error', () => j(new Error('websocket failed')));
  });
  ws.send(JSON.stringify({ subscribe: { jobs: 'all', sites: true } }));
  await until('subscribed', async () => messages.some((m) => m.type === 'subscribed'));
  return { messages, ws, closed: () => closed };
}

/** What every route answers while the database is down. */
async function checkDown(): Promise<void> {
  const { sha, bytes } = await sandbox();
  const down = [
    await call('down:list', 'GET', '/api/jobs?limit=5', alice),
    await call('down:job', 'GET', '/api/jobs/1', alice),
    await call('down:submit', 'POST', '/api/jobs', alice, JSON.stringify({ jdl: jdl(0) }), 'application/json'),
    await call('down:upload', 'PUT', `/api/sandboxes/${sha}`, alice, bytes, 'application/gzip'),
    await call('down:pilots', 'GET', '/api/pilots', admin),
    await call('down:sites', 'GET', '/api/sites', alice),
    await call(
      'down:explain',
      'POST',
      '/api/match/explain',
      admin,
      JSON.stringify({ site: 'LCG.X.org', cpuWork: 1000 }),
      'application/json',
    ),
    await call('down:health', 'GET', '/api/health', null),
  ];
  for (const a of down) {
    expect({ what: a.what, status: a.status, code: a.code, retryAfter: a.retryAfter }).toEqual({
      what: a.what,
      status: 503,
      code: 'WMS_DB_UNAVAILABLE',
      retryAfter: '5',
    });
  }
  const metrics = await call('down:metrics', 'GET', '/metrics', null);
  expect(metrics.status).toBe(200);
  expect(metrics.body).toMatch(/^wms_database_up 0$/m);
  expect(metrics.body).toMatch(/^wms_jobs_submitted_total \d+$/m);
}

it.skipIf(problem !== null)(
  'stays up through pg_ctl stop -m fast, -m immediate and -m fast with requests flowing; 503 while down, answers again after',
  async () => {
    const stop = { done: false };
    const workers = [0, 1, 2, 3, 4, 5].map((w) => load(w, stop));
    const events = await subscriber();
    let submittedBefore = 0;
    try {
      for (const [i, mode] of (['fast', 'immediate', 'fast'] as const).entries()) {
        await new Promise((r) => setTimeout(r, 1500)); // load on a healthy database first
        phase = 'stopping';
        await cluster.stop(mode);
        phase = 'down';
        await new Promise((r) => setTimeout(r, 700)); // the server meets the outage under load
        expect(serverExit, `the server died: ${serverLog.slice(-3000)}`).toBeNull();
        await checkDown();
        expect(serverExit).toBeNull();

        let cli: Promise<CliRun> | null = null;
        if (i === 0) {
          // A read waits for the database, saying so; a submission fails at once, clearly.
          const listed = (await call('count', 'GET', '/api/jobs/summary', alice)).status;
          expect(listed).toBe(503);
          let sawRetry!: () => void;
          const retrying = new Promise<void>((r) => (sawRetry = r));
          cli = wms(['job', 'list', '--limit', '3'], alice, (err) => {
            if (/database unavailable, retrying in \d+ s/.test(err)) sawRetry();
          });
          await retrying;
          await writeFile(join(work, 'down.jdl'), jdl(424242));
          const submit = await wms(['job', 'submit', 'down.jdl'], alice);
          expect(submit.code).toBe(1);
          expect(submit.stderr).toMatch(/^wms: database unavailable: the server says the submission was not applied/m);
          expect(submit.stderr).not.toMatch(/^\s+at /m);
          expect(submit.stdout).toBe('');
        }

        phase = 'starting';
        await cluster.start();
        phase = 'up';
        await until('health 200 again', async () => (await call('health', 'GET', '/api/health', null)).status === 200);
        if (cli) {
          const listed = await cli;
          expect(listed.stderr).toMatch(/wms: database unavailable, retrying in \d+ s/);
          expect(listed.code, listed.stderr).toBe(0);
          expect(listed.stdout).toMatch(/ID\s+STATUS/);
          expect(listed.stderr).not.toMatch(/^\s+at /m);
        }
        // Everything answers again, without a server restart.
        const sub = await until('a submission to work again', async () => {
          const a = await call('after:submit', 'POST', '/api/jobs', alice, JSON.stringify({ jdl: jdl(900 + i) }), 'application/json');
          return a.status === 201 ? (JSON.parse(a.body) as { jobIds: number[] }) : null;
        });
        expect(sub.jobIds).toHaveLength(1);
        const { sha, bytes } = await sandbox();
        expect((await call('after:upload', 'PUT', `/api/sandboxes/${sha}`, alice, bytes, 'application/gzip')).status).toBe(201);
        expect((await call('after:list', 'GET', '/api/jobs?limit=5', alice)).status).toBe(200);
        expect((await call('after:pilots', 'GET', '/api/pilots', admin)).status).toBe(200);
        const metrics = await call('after:metrics', 'GET', '/metrics', null);
        expect(metrics.body).toMatch(/^wms_database_up 1$/m);
        // The event stream follows changes again: the new job's Waiting reaches the subscriber.
        await until('the new job on the event stream', async () =>
          events.messages.some((m) => m.type === 'job' && (m as { id?: number }).id === sub.jobIds[0]),
        );
        expect(serverExit).toBeNull();
        submittedBefore++;
      }
    } finally {
      stop.done = true;
      await Promise.all(workers);
    }

    // The server never exited, and no answer was ever a 500 (or anything unexpected).
    expect(serverExit).toBeNull();
    expect(networkErrors).toEqual([]);
    const unexpected = answers.filter(
      (a) => !(a.status === 200 || a.status === 201 || (a.status === 503 && a.code === 'WMS_DB_UNAVAILABLE' && a.retryAfter === '5')),
    );
    expect(unexpected).toEqual([]);
    // Load really met the outages: 503s while down, successes while up.
    expect(answers.filter((a) => a.phase === 'down' && a.status === 503).length).toBeGreaterThan(10);
    expect(answers.filter((a) => a.phase === 'up' && a.status < 300).length).toBeGreaterThan(50);
    expect(submittedBefore).toBe(3);

    // The event stream stayed open and said WMS_DB_UNAVAILABLE, once per outage.
    expect(events.closed()).toBe(false);
    const told = events.messages.filter((m) => m.type === 'error' && m.code === 'WMS_DB_UNAVAILABLE').length;
    expect(told).toBeGreaterThanOrEqual(1);
    expect(told).toBeLessThanOrEqual(3);
    events.ws.close();

    // The submission refused during the outage stored nothing.
    const listed = await call('final:list', 'GET', '/api/jobs?search=outage-424242&limit=5', alice);
    expect(listed.status).toBe(200);
    expect((JSON.parse(listed.body) as { total: number }).total).toBe(0);

    // Each outage logged once per loop, never once per poll (the poller reads every 300 ms).
    const feedDown = serverLog.match(/event stream: database unavailable, retrying/g)?.length ?? 0;
    expect(feedDown).toBeGreaterThanOrEqual(1);
    expect(feedDown).toBeLessThanOrEqual(3);
    expect(serverLog).toMatch(/event stream: database available again after \d+ s/);
  },
);
