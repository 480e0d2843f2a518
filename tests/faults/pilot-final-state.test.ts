/**
 * Issue 10 follow-up: a pilot that drains at a graceful stop and exits 0 ends Done in the
 * database with its own reason, and its wrapper exits with the pilot's code.
 *
 * The real server (`node dist/cli/main.js server start`, PGlite in its data dir) runs three short
 * jobs on three local pilots; once the jobs are Done the pilots sit idle, asking for work. Then
 * the server gets SIGTERM. An idle pilot drains at once (it has no job to wait for), and the
 * SIGTERM its wrapper passes on (the process group's signal reaches node too) comes a few
 * milliseconds later, while the pilot makes its final report and exits. That copy used to kill
 * node (exit 143, report unsent), and the shutdown recorded the pilot as Failed "ended at server
 * shutdown (exit code 143)".
 *
 * The wrapper part alone (real bash, a stub pilot): node's status can say SIGTERM although the
 * pilot had ended (a signal in node's teardown, or bash's wait misreporting after a trap); the
 * wrapper then exits with the code the pilot wrote after its final report (`pilot-exit-code`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tar from 'tar';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadWrapperTemplate, renderWrapper } from '../../agents/pilot-wrapper.js';
import { listPilots, openDb } from '../../db/index.js';
import { PILOT_EXIT_CODE_FILE } from '../../pilot/pilot.js';
import { createSandbox, startWrapperServer, within } from '../helpers/wrapper-fixtures.js';
import { freePort } from '../helpers/pg-cluster.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli/main.js');
const PILOTS = 3;

async function until<T>(what: string, probe: () => Promise<T | null | false | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

let base = '';
let child: ChildProcess | null = null;
let port = 0;
let token = '';
const url = () => `http://127.0.0.1:${port}`;
const dataDir = () => join(base, 'data');
const serverLog = () => join(base, 'server.log');

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(url() + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

beforeAll(async () => {
  if (!existsSync(CLI) || !existsSync(join(ROOT, 'dist/pilot/pilot.tar.gz')))
    throw new Error(`no ${CLI} or pilot bundle: run npm run build`);
  base = await mkdtemp(join(tmpdir(), 'wms-pilot-final-'));
  await chmod(base, 0o755);
  await mkdir(join(base, 'tmp'));
  await chmod(join(base, 'tmp'), 0o1777);
  const every = '* * * * * *';
  await writeFile(
    join(base, 'config.json'),
    JSON.stringify({
      agentSettings: { siteDirector: { schedule: every }, pilotStatus: { schedule: '*/2 * * * * *' } },
      pilot: {
        localSlots: PILOTS,
        localIsolation: 'none',
        pollSeconds: 0.2,
        maxPollSeconds: 0.5,
        stopAfterFailedMatches: 10_000,
        heartbeatSeconds: 1,
        minDiskMb: 50,
        logFlushSeconds: 0.5,
        commands: { default: ['check-environment', 'register', 'job-agent'] },
      },
    }),
  );
  port = await freePort();
});

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  if (base && process.env['FAULTS_KEEP'] !== '1') await rm(base, { recursive: true, force: true }).catch(() => undefined);
});

it('idle pilots drained by a graceful stop end Done with their own reason, and their wrappers exit 0', async () => {
  const out = await open(serverLog(), 'a');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('WMS_')) env[k] = v;
  env['TMPDIR'] = join(base, 'tmp');
  const server = spawn(
    process.execPath,
    [CLI, 'server', 'start', '--data-dir', dataDir(), '--port', String(port), '--config', join(base, 'config.json'), '--log-level', 'warn'],
    { cwd: base, env, stdio: ['ignore', out.fd, out.fd] },
  );
  await out.close();
  child = server;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    server.once('exit', (code, signal) => r({ code, signal })),
  );
  await until(
    'the server to answer',
    async () => {
      if (server.exitCode !== null) throw new Error(`server exited ${server.exitCode}:\n${await readFile(serverLog(), 'utf8')}`);
      return fetch(`${url()}/api/health`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      );
    },
    90_000,
  );
  token = (await readFile(join(dataDir(), 'admin.token'), 'utf8')).trim();

  const ids: number[] = [];
  for (let i = 0; i < PILOTS; i++) {
    const jdl = `[ JobName = "short-${i}"; Executable = "/bin/sleep"; Arguments = "1"; CPUTime = 600; ]`;
    ids.push((await api<{ jobIds: number[] }>('POST', '/api/jobs', { jdl })).jobIds[0]!);
  }
  await until(
    'every job Done',
    async () => (await Promise.all(ids.map((id) => api<{ status: string }>('GET', `/api/jobs/${id}`)))).every((j) => j.status === 'Done'),
    120_000,
  );
  // The pilots now only ask for work (a few empty answers each).
  await sleep(1500);
  const running = (await api<{ pilots: { status: string }[] }>('GET', '/api/pilots')).pilots.filter((p) => p.status === 'Running');
  expect(running.length).toBeGreaterThan(0);

  server.kill('SIGTERM');
  const stop = await Promise.race([exited, sleep(90_000).then(() => null)]);
  const log = await readFile(serverLog(), 'utf8');
  expect(stop, log).toEqual({ code: 0, signal: null });
  child = null;

  const db = await openDb(join(dataDir(), 'db'));
  let pilots: Awaited<ReturnType<typeof listPilots>>;
  try {
    pilots = await listPilots(db, { limit: 100 });
  } finally {
    await db.close();
  }
  expect(pilots.length).toBeGreaterThanOrEqual(running.length);
  // Each pilot is Done with its own words and exit code, not the shutdown's guess from the CE.
  expect(pilots.map((p) => `${p.status} ${p.exitCode} ${p.statusReason.replace(/\d+ job/, 'N job')}`)).toEqual(
    pilots.map(() => 'Done 0 drained: SIGTERM received; N job(s) run'),
  );
  // And each wrapper exited with its pilot's code (the CE saw 0, so nothing was made final here).
  const errs = (await readdir(join(dataDir(), 'local-ce'))).filter((f) => f.endsWith('.err'));
  expect(errs.length).toBe(pilots.length);
  for (const f of errs) {
    const text = await readFile(join(dataDir(), 'local-ce', f), 'utf8');
    expect(text, f).toMatch(/pilot ends: drained: SIGTERM received; \d+ job\(s\) run \(exit code 0\)/);
    expect(text.match(/pilot ended with exit code \d+/g), f).toEqual(['pilot ended with exit code 0']);
  }
  expect(log).not.toMatch(/pilots made final/);
});

/** A pilot.tar.gz whose pilot.mjs runs `body` (ESM), and its SHA-256. */
async function stubBundle(body: string): Promise<{ bytes: Buffer; sha256: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'wms-stub-bundle-'));
  try {
    await writeFile(join(dir, 'pilot.mjs'), body);
    await tar.create({ gzip: true, cwd: dir, file: join(dir, 'pilot.tar.gz'), portable: true }, ['pilot.mjs']);
    const bytes = await readFile(join(dir, 'pilot.tar.gz'));
    return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function runStubPilot(body: string): Promise<{ code: number | null; stderr: string }> {
  const bundle = await stubBundle(body);
  const server = await startWrapperServer(bundle.bytes);
  const sb = await createSandbox();
  try {
    const script = renderWrapper(await loadWrapperTemplate(), {
      serverUrl: server.url,
      token: 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJwaWxvdDoxIn0.c2lnbmF0dXJl',
      stamp: '0123456789abcdef0123456789abcdef',
      bundleSha256: bundle.sha256,
    });
    const tmp = await sb.dir('tmp');
    const run = await sb.run(script, {
      PATH: [sb.fakeStatBin, sb.coreBin, sb.toolBin.curl, sb.toolBin.sha256sum, sb.nodeBin].join(':'),
      HOME: sb.root,
      TMPDIR: tmp,
    });
    const r = await within('the wrapper to end', run.done, 60_000);
    return { code: r.code, stderr: r.stderr };
  } finally {
    await sb.cleanup();
    await server.close();
  }
}

it('the wrapper exits with the code the pilot wrote after its final report, though node died of a late SIGTERM', async () => {
  // The pilot ended (0) and wrote so; a SIGTERM in its exit kills node (status 143).
  const r = await runStubPilot(
    `import { writeFileSync } from 'node:fs';\n` +
      `writeFileSync(process.env.WMS_PILOT_WORK_DIR + '/${PILOT_EXIT_CODE_FILE}', '0\\n');\n` +
      `process.kill(process.pid, 'SIGTERM');\n` +
      `setTimeout(() => {}, 5000);\n`,
  );
  expect(r.stderr).toMatch(/pilot said exit code 0, its process ended with status 143: exit code 0/);
  expect(r.stderr).toMatch(/pilot ended with exit code 0/);
  expect(r.code, r.stderr).toBe(0);
});

it("without the pilot's word (killed before its end), the wrapper exits with node's status", async () => {
  const r = await runStubPilot(`process.kill(process.pid, 'SIGTERM');\nsetTimeout(() => {}, 5000);\n`);
  expect(r.stderr).toMatch(/pilot ended with exit code 143/);
  expect(r.code, r.stderr).toBe(143);
});
