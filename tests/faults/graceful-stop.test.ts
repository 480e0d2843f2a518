/**
 * Issue 10, "Shutdown" and "no payload outlives its pilot": the real server (`node
 * dist/cli/main.js server start`, PGlite in its data dir) with three local pilots running jobs of
 * 5 s and 60 s, stopped with SIGTERM and a shutdown grace of 8 s:
 * - the short jobs finish Done; a job submitted while every slot was busy is never matched;
 * - the long job's payload tree (the payload and a child of it) is killed, and the job is
 *   rescheduled (Waiting, one reschedule, a history row of the shutdown); no pilot stays
 *   transient in the database; the server exits 0 and prints each step;
 * - a server started again runs the rescheduled job to Done, its payload completing exactly once
 *   (the ledger the payloads write outside their job dir);
 * - SIGKILL of a pilot's node process alone (not its wrapper) leaves no payload process: the
 *   payload's first process dies with it (setpriv --pdeathsig) and the wrapper kills the rest of
 *   its session (`payload-sessions`);
 * - a second signal stops the running payloads at once, and a third one (issue 13) exits at once
 *   killing the pilots and their payloads; the next start makes those pilots Failed and
 *   reschedules their jobs, never left Running with no pilot.
 * Payload isolation is `none`, so that payloads can write the ledger; under root the pilots run as
 * nobody, so the ledger directory is writable by all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJobHistory, getJobs, listPilots, openDb } from '../../db/index.js';
import { PILOT_TRANSIENT_STATES } from '../../core/pilot-states.js';
import { processesWith } from '../helpers/faults.js';
import { freePort } from '../helpers/pg-cluster.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli/main.js');

async function until<T>(what: string, probe: () => Promise<T | null | false | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

class Server {
  child: ChildProcess | null = null;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
  log = '';
  token = '';
  constructor(
    readonly base: string,
    readonly port: number,
  ) {}
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get dataDir(): string {
    return join(this.base, 'data');
  }

  async start(args: string[] = []): Promise<void> {
    this.log = join(this.base, `server-${Date.now()}.log`);
    const out = await open(this.log, 'a');
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('WMS_')) env[k] = v;
    env['TMPDIR'] = join(this.base, 'tmp');
    const child = spawn(
      process.execPath,
      [
        CLI,
        'server',
        'start',
        '--data-dir',
        this.dataDir,
        '--port',
        String(this.port),
        '--config',
        join(this.base, 'config.json'),
        '--log-level',
        'warn',
        ...args,
      ],
      { cwd: this.base, env, stdio: ['ignore', out.fd, out.fd] },
    );
    await out.close();
    this.child = child;
    this.exit = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    await until(
      'the server to answer',
      async () => {
        if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}:\n${await this.output()}`);
        return fetch(`${this.url}/api/health`, { signal: AbortSignal.timeout(2000) }).then(
          (r) => r.ok,
          () => false,
        );
      },
      90_000,
    );
    this.token = (await readFile(join(this.dataDir, 'admin.token'), 'utf8')).trim();
  }

  output(): Promise<string> {
    return readFile(this.log, 'utf8').catch(() => '');
  }

  async api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  async stop(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    const t0 = Date.now();
    this.child!.kill('SIGTERM');
    const r = await Promise.race([this.exit!, sleep(timeoutMs).then(() => null)]);
    if (r === null) {
      this.child!.kill('SIGKILL');
      throw new Error(`the server did not exit within ${timeoutMs} ms of SIGTERM:\n${await this.output()}`);
    }
    this.child = null;
    return { ...r, ms: Date.now() - t0 };
  }
}

describe('graceful stop of wms server start: drain, stop, reschedule, restart', () => {
  let base = '';
  let server: Server;
  let ledger = '';
  let payload = '';
  const marker = `wmsstop${process.pid}x${Math.random().toString(36).slice(2, 8)}`;
  const ids = { short: [] as number[], long: 0, late: 0, killed: 0 };

  const jdl = (name: string, seconds: number, tag = marker) =>
    [
      '[',
      `  JobName = "${name}";`,
      '  Executable = "/bin/sh";',
      `  Arguments = "${payload} ${tag} ${seconds}";`,
      `  ExecutionEnvironment = "STOP_MARKER=${tag}";`,
      '  CPUTime = 600;',
      ']',
    ].join('\n');
  const submit = async (text: string) => (await server.api<{ jobIds: number[] }>('POST', '/api/jobs', { jdl: text })).jobIds[0]!;
  const ledgerLines = () => readFileSync(ledger, 'utf8').split('\n').filter(Boolean);
  const runsOf = (id: number, what: 'start' | 'end') => ledgerLines().filter((l) => l.startsWith(`${id} `) && l.split(' ')[2] === what);

  beforeAll(async () => {
    if (!existsSync(CLI) || !existsSync(join(ROOT, 'dist/pilot/pilot.tar.gz')))
      throw new Error(`no ${CLI} or pilot bundle: run npm run build`);
    base = await mkdtemp(join(tmpdir(), 'wms-graceful-stop-'));
    await chmod(base, 0o755);
    await mkdir(join(base, 'tmp'));
    await chmod(join(base, 'tmp'), 0o1777);
    await mkdir(join(base, 'ledger'));
    await chmod(join(base, 'ledger'), 0o777);
    ledger = join(base, 'ledger', 'ledger.txt');
    await writeFile(ledger, '');
    await chmod(ledger, 0o666);
    payload = join(base, 'ledger', 'payload.sh');
    // $1 is the marker (in the shell's command line), $2 the seconds; a child of the payload
    // sleeps too, so that the whole tree, not only its first process, must go.
    await writeFile(
      payload,
      [
        '#!/bin/sh',
        `L='${ledger}'`,
        'echo "$DIRACJOBID $$ start $(date +%s%3N)" >> "$L"',
        'sleep "$2" &',
        'wait',
        'echo "$DIRACJOBID $$ end $(date +%s%3N)" >> "$L"',
        '',
      ].join('\n'),
    );
    await chmod(payload, 0o755);
    const every = '* * * * * *';
    await writeFile(
      join(base, 'config.json'),
      JSON.stringify({
        agentSettings: {
          siteDirector: { schedule: every },
          pilotStatus: { schedule: '*/2 * * * * *' },
          stalledJobs: { schedule: every, stalledAfterSeconds: 15, failedAfterSeconds: 120, matchedTimeoutSeconds: 60 },
        },
        pilot: {
          localSlots: 3,
          localIsolation: 'none',
          pollSeconds: 0.2,
          maxPollSeconds: 1,
          stopAfterFailedMatches: 1000,
          heartbeatSeconds: 1,
          minDiskMb: 50,
          logFlushSeconds: 0.5,
          commands: { default: ['check-environment', 'register', 'job-agent'] },
        },
      }),
    );
    server = new Server(base, await freePort());
  });

  afterAll(async () => {
    if (server?.child) server.child.kill('SIGKILL');
    for (const pid of (await processesWith(marker)).keys()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (base) await rm(base, { recursive: true, force: true }).catch(() => undefined);
  });

  it('SIGTERM: short jobs finish, nothing new is matched, the long payload is killed and its job rescheduled, the server exits 0', async () => {
    await server.start(['--shutdown-grace', '8']);
    ids.long = await submit(jdl('long', 60));
    ids.short = [await submit(jdl('short-1', 6)), await submit(jdl('short-2', 6))];
    await until('three payloads running', async () => [ids.long, ...ids.short].every((id) => runsOf(id, 'start').length === 1), 90_000);
    // Every slot is busy: this one could only be matched once a short job ended.
    ids.late = await submit(jdl('late', 5));
    const stop = await server.stop(120_000);
    const out = await server.output();

    console.log(
      `server stopped in ${stop.ms} ms:\n${out
        .split('\n')
        .filter((l) => l.startsWith('wms:'))
        .join('\n')}`,
    );
    expect(stop.code, out).toBe(0);
    // Grace (8 s) + the pilot's repeat window and kill grace: well under the old 10 s + SIGKILL.
    expect(stop.ms).toBeLessThan(60_000);

    // No process of any payload is left.
    expect([...(await processesWith(marker)).values()]).toEqual([]);
    for (const id of ids.short) expect(runsOf(id, 'end')).toHaveLength(1);
    expect(runsOf(ids.long, 'end')).toHaveLength(0);
    expect(runsOf(ids.late, 'start')).toHaveLength(0);

    const db = await openDb(join(server.dataDir, 'db'));
    try {
      const jobs = new Map((await getJobs(db, [ids.long, ids.late, ...ids.short])).map((j) => [j.id, j]));
      for (const id of ids.short) expect(jobs.get(id)?.status).toBe('Done');
      expect(jobs.get(ids.late)?.status).toBe('Waiting');
      expect(jobs.get(ids.late)?.pilotId ?? null).toBeNull();
      expect(jobs.get(ids.long)?.status).toBe('Waiting');
      expect(jobs.get(ids.long)?.rescheduleCounter).toBe(1);
      const history = await getJobHistory(db, ids.long);
      expect(history.map((h) => h.source).join('\n')).toContain('pilot stopped by server shutdown');
      const transient = await listPilots(db, { status: [...PILOT_TRANSIENT_STATES], limit: 100 });
      expect(transient.map((p) => `${p.id} ${p.status} ${p.statusReason}`)).toEqual([]);
    } finally {
      await db.close();
    }
    // Each step was printed.
    expect(out).toMatch(/draining: 3 local pilot\(s\), 3 job\(s\) running; waiting up to 8 s/);
    expect(out).toMatch(/stopping 1 local pilot\(s\) \(grace of 8 s over\)/);
    expect(out).toMatch(/rescheduled 1 job\(s\) of the stopped pilots/);
  });

  it('a server started again runs the rescheduled job to Done, its payload completing exactly once', async () => {
    await server.start(['--shutdown-grace', '8']);
    const all = [ids.long, ids.late, ...ids.short];
    await until(
      'every job Done',
      async () => {
        const r = await Promise.all(all.map((id) => server.api<{ status: string }>('GET', `/api/jobs/${id}`)));
        return r.every((j) => j.status === 'Done');
      },
      150_000,
    );
    expect(runsOf(ids.long, 'start')).toHaveLength(2); // the run killed at the stop, then this one
    expect(runsOf(ids.long, 'end')).toHaveLength(1);
    expect(runsOf(ids.late, 'start')).toHaveLength(1);
    for (const id of ids.short) expect(runsOf(id, 'start')).toHaveLength(1);
  });

  it('SIGKILL of the node pilot alone leaves no payload process (pdeathsig and the wrapper kill the session)', async () => {
    if (!server.child) await server.start();
    const tag = `${marker}k`;
    ids.killed = await submit(jdl('killed', 300, tag));
    const leader = await until(
      'the payload running',
      async () => {
        for (const [pid, cmd] of await processesWith(tag)) if (cmd.includes(payload)) return pid;
        return null;
      },
      60_000,
    );
    const tree = [...(await processesWith(tag)).keys()];
    expect(tree.length).toBeGreaterThanOrEqual(2); // sh payload.sh and its sleep
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${leader}/status`, 'utf8'))?.[1]);
    const parentCmd = readFileSync(`/proc/${ppid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    expect(parentCmd).toContain('pilot.mjs');
    process.kill(ppid, 'SIGKILL');
    await until('every payload process gone', async () => (await processesWith(tag)).size === 0, 15_000).catch(async (e: Error) => {
      throw new Error(`${e.message}: left ${JSON.stringify([...(await processesWith(tag))])}`);
    });

    const stop = await server.stop(120_000);
    expect(stop.code, await server.output()).toBe(0);
    expect([...(await processesWith(marker)).values()]).toEqual([]);
    // Its pilot died without reporting: the stop found it and rescheduled its job.
    const db = await openDb(join(server.dataDir, 'db'));
    try {
      const [job] = await getJobs(db, [ids.killed]);
      expect(job?.status).toBe('Waiting');
      expect(await listPilots(db, { status: [...PILOT_TRANSIENT_STATES], limit: 100 })).toEqual([]);
    } finally {
      await db.close();
    }
  });
  it('with the default grace (10 min), a second signal stops the running payloads at once; the server exits 0', async () => {
    await server.start();
    const tag = `${marker}f`;
    const id = await submit(jdl('forced', 300, tag));
    await until('the payload running', async () => runsOf(id, 'start').length === 1, 60_000);
    const t0 = Date.now();
    server.child!.kill('SIGTERM');
    await until('the drain to start', async () => /waiting up to 10 min/.test(await server.output()), 20_000);
    server.child!.kill('SIGTERM');
    const r = await Promise.race([server.exit!, sleep(60_000).then(() => null)]);
    const out = await server.output();
    expect(r?.code, out).toBe(0);
    server.child = null;
    expect(Date.now() - t0).toBeLessThan(45_000);
    // The job of the pilot SIGKILLed above runs again too: both are stopped.
    expect(out).toMatch(/stopping \d local pilot\(s\) \(second signal\)/);
    expect([...(await processesWith(tag)).values()]).toEqual([]);
    const db = await openDb(join(server.dataDir, 'db'));
    try {
      const [job] = await getJobs(db, [id]);
      expect(job?.status).toBe('Waiting');
      expect(job?.rescheduleCounter).toBe(1);
      expect(await listPilots(db, { status: [...PILOT_TRANSIENT_STATES], limit: 100 })).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('a third signal exits at once: the pilots and their payloads are killed with the server, and the next start reschedules their jobs', async () => {
    await server.start();
    const tag = `${marker}x`;
    const id = await submit(jdl('exited', 300, tag));
    await until('the payload running', async () => runsOf(id, 'start').length === 1, 60_000);
    server.child!.kill('SIGTERM');
    await until('the drain to start', async () => /waiting up to 10 min/.test(await server.output()), 20_000);
    // Before the server's second SIGTERM reaches the pilots (2 s after the first): they only drain.
    server.child!.kill('SIGTERM');
    await sleep(100);
    server.child!.kill('SIGTERM');
    const r = await Promise.race([server.exit!, sleep(30_000).then(() => null)]);
    const out = await server.output();
    expect(r?.code, out).toBe(1);
    expect(out).toMatch(/SIGTERM again, exiting now/);
    server.child = null;
    await until(
      'every payload and pilot process gone',
      async () => {
        const left = [...(await processesWith(tag)), ...(await processesWith(join(base, 'tmp')))];
        return left.length === 0;
      },
      15_000,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}: left ${JSON.stringify([...(await processesWith(tag)), ...(await processesWith(join(base, 'tmp')))])}`);
    });
    expect(runsOf(id, 'end')).toHaveLength(0);

    // Started again (no agents: nothing matches the job again), the server settles the pilot gone meanwhile.
    await server.start(['--no-agents']);
    // With the jobs of the tests before, which its pilots ran too when the file runs whole.
    const settled = new RegExp(`rescheduled \\d+ job\\(s\\) of the pilots gone while the server was stopped \\((\\d+, )*${id}(, \\d+)*\\)`);
    // Health answers before the start is over (and its signal handlers installed).
    await until('the start to be over', async () => /pilot-wms listening/.test(await server.output()), 30_000);
    expect(await server.output()).toMatch(settled);
    const stop = await server.stop(60_000);
    expect(stop.code, await server.output()).toBe(0);
    const db = await openDb(join(server.dataDir, 'db'));
    try {
      const [job] = await getJobs(db, [id]);
      expect(job?.status).toBe('Waiting');
      expect(job?.pilotId ?? null).toBeNull();
      expect(job?.rescheduleCounter).toBe(1);
      const history = await getJobHistory(db, id);
      expect(history.map((h) => h.source).join('\n')).toContain('ServerShutdown: pilot gone while the server was stopped');
      expect(await listPilots(db, { status: [...PILOT_TRANSIENT_STATES], limit: 100 })).toEqual([]);
      const [pilot] = await listPilots(db, { limit: 1 });
      expect(`${pilot?.status} ${pilot?.statusReason}`).toMatch(/^Failed gone at server start: /);
    } finally {
      await db.close();
    }
  });
});
