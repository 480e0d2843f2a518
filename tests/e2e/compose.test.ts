/**
 * The top-level docker-compose.yml for real (issue 14): the pilot-wms image built from the
 * Dockerfile, PostgreSQL, two service replicas, the agents process, HAProxy and Prometheus
 * brought up under a project name of its own on free host ports; a job submitted through
 * HAProxy is run by one pilot started by hand on this machine (the real wrapper, bundle and
 * pilot) calling home through HAProxy, and ends Done; both replicas answer through HAProxy and
 * Prometheus scrapes both; the stack goes down in afterAll whatever happened.
 *
 * Needs docker-compose and a container engine (scripts/containers-env.sh: podman here). The
 * first image build takes minutes; later runs reuse its layers. Fails, not skips, under CI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWrapperTemplate, renderWrapper } from '../../agents/pilot-wrapper.js';
import { composeProblem, ComposeStack } from '../helpers/compose.js';
import { IN_CI } from '../helpers/db.js';
import { freePort } from '../helpers/pg-cluster.js';

const BUILD_MS = 25 * 60_000;
const UP_MS = 5 * 60_000;
const VO = 'vo1';
const PILOT_SITE = 'DIRAC.Compose.org';
const PILOT_CE = 'host.compose.org';

interface Stack {
  compose: ComposeStack;
  url: string;
  prometheusUrl: string;
  adminToken: string;
}

let stack: Stack | null = null;
let pilot: ChildProcess | null = null;
let scratch: string | null = null;

const problem = composeProblem();

if (problem !== null && IN_CI) {
  describe('docker-compose deployment', () => {
    it('needs docker-compose and a container engine', () => {
      throw new Error(`${problem}; CI is set, so this suite must not be skipped (.ci/run runs scripts/containers-env.sh)`);
    });
  });
} else if (problem !== null) {
  console.warn(`[e2e] SKIPPING "docker-compose deployment": ${problem}`);
  describe.skip('docker-compose deployment', () => {
    it('needs docker-compose', () => undefined);
  });
} else {
  describe('docker-compose deployment', () => {
    beforeAll(async () => {
      stack = await bringUp();
    }, BUILD_MS + UP_MS);

    afterAll(async () => {
      await stopPilot();
      if (stack) await stack.compose.down();
      if (scratch) await rm(scratch, { recursive: true, force: true });
    }, 300_000);

    it('refuses to start without the PostgreSQL password', async () => {
      const bare = new ComposeStack(`wmsnopw${process.pid}`, { WMS_DB_PASSWORD: '' });
      const r = await bare.run(['config', '-q'], { allowFail: true });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/WMS_DB_PASSWORD/);
    });

    it('answers through HAProxy from both replicas, keeps /metrics inside, and Prometheus scrapes both', async () => {
      const s = stack!;
      const seen = new Set<string>();
      for (let i = 0; i < 20 && seen.size < 2; i++) {
        const r = await fetch(`${s.url}/api/health`);
        expect(r.status).toBe(200);
        expect(((await r.json()) as { driver: string }).driver).toMatch(/pg|postgres/i);
        seen.add(r.headers.get('x-wms-replica') ?? '?');
      }
      expect([...seen].sort()).toEqual(['wms-1', 'wms-2']);

      expect((await fetch(`${s.url}/metrics`)).status).toBe(403);

      const up = await until(
        'Prometheus to scrape both replicas',
        async () => {
          const r = await fetch(`${s.prometheusUrl}/api/v1/targets`).catch(() => null);
          if (!r?.ok) return null;
          const body = (await r.json()) as { data: { activeTargets: { labels: { instance: string; job: string }; health: string }[] } };
          const ok = body.data.activeTargets.filter((t) => t.labels.job === 'pilot-wms' && t.health === 'up').map((t) => t.labels.instance);
          return ok.length === 2 ? ok.sort() : null;
        },
        90_000,
      );
      expect(up).toEqual(['wms-1:8080', 'wms-2:8080']);
    });

    it('runs a job end to end through HAProxy with a pilot on this machine', async () => {
      const s = stack!;
      const user = await issue(s, { user: 'alice', vo: VO, group: 'compose', role: 'user' });
      const submitted = await api<{ jobIds: number[] }>(s.url, 'POST', '/api/jobs', user, {
        jdl: '[ JobName = "compose-e2e"; Executable = "/bin/echo"; Arguments = "hello from compose"; CPUTime = 600; ]',
      });
      const jobId = submitted.jobIds[0]!;

      const pilotId = await createPilotRecord(s);
      const pilotToken = await issue(s, { role: 'pilot', vo: VO, pilotId });
      pilot = await startPilot(s.url, pilotToken);

      const final = await until(
        'the job to be Done',
        async () => {
          if (pilot?.exitCode !== null && pilot?.exitCode !== undefined)
            throw new Error(`the pilot exited ${pilot.exitCode}: ${await pilotLog()}`);
          const j = await api<{ status: string; minorStatus?: string }>(s.url, 'GET', `/api/jobs/${jobId}`, user);
          return j.status === 'Done' || j.status === 'Failed' ? j : null;
        },
        240_000,
      ).catch(async (e: Error) => {
        throw new Error(`${e.message}\npilot:\n${await pilotLog()}\nstack:\n${await s.compose.logs()}`);
      });
      expect(final.status, `${JSON.stringify(final)}\n${await pilotLog()}`).toBe('Done');

      const p = await api<{ status: string; site: string }>(s.url, 'GET', `/api/pilots/${pilotId}`, s.adminToken);
      expect(p.site).toBe(PILOT_SITE);
      expect(p.status).toBe('Running');
    }, 360_000);
  });
}

/** Builds the image, brings the stack up on free ports and waits until HAProxy answers. */
async function bringUp(): Promise<Stack> {
  const [httpPort, prometheusPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${httpPort}`;
  const env: Record<string, string> = {
    WMS_DB_PASSWORD: randomBytes(18).toString('hex'),
    WMS_HTTP_PORT: String(httpPort),
    WMS_PROMETHEUS_PORT: String(prometheusPort),
    WMS_PUBLIC_URL: url,
    WMS_LOG_LEVEL: 'warn',
  };
  // HTTPS leaving this machine is re-signed by a proxy that the host (and so the stand-in
  // node:20) trusts: npm ci inside the build needs that bundle.
  if (process.env['NODE_EXTRA_CA_CERTS']) env['WMS_BUILD_CA_CERTS'] = '/etc/ssl/certs/ca-certificates.crt';
  const compose = new ComposeStack(`wmscompose${process.pid}${randomBytes(3).toString('hex')}`, env);
  const partial: Stack = { compose, url, prometheusUrl: `http://127.0.0.1:${prometheusPort}`, adminToken: '' };
  stack = partial; // afterAll brings down whatever came up, even if this fails below
  // One build: wms-2 and agents run the same image (building each would build it three times
  // over a tree other work may be changing).
  await compose.run(['build', 'wms-1'], { timeoutMs: BUILD_MS });
  await compose.run(['up', '-d', '--no-build'], { timeoutMs: UP_MS });
  await until(
    'the service to answer through HAProxy',
    async () => {
      const r = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(3000) }).catch(() => null);
      return r?.status === 200 ? true : null;
    },
    UP_MS,
  ).catch(async (e: Error) => {
    throw new Error(`${e.message}\n${await compose.logs()}`);
  });
  // Each replica keeps an admin token in its data directory, signed with the key in PostgreSQL.
  partial.adminToken = (await compose.exec('wms-1', ['cat', '/var/lib/wms/admin.token'])).trim();
  return partial;
}

async function api<T>(base: string, method: string, path: string, token: string, body?: unknown): Promise<T> {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text) as T;
}

async function issue(s: Stack, body: Record<string, unknown>): Promise<string> {
  return (await api<{ token: string }>(s.url, 'POST', '/api/tokens', s.adminToken, body)).token;
}

/**
 * A pilot record, as the site director makes one before it submits a pilot (the API has no
 * route for it): written in the stack's PostgreSQL with psql inside the postgres container.
 */
async function createPilotRecord(s: Stack): Promise<number> {
  const stamp = randomBytes(16).toString('hex');
  const sql =
    `insert into pilots (stamp, site, ce, ce_type, queue, vo, status, status_reason) ` +
    `values ('${stamp}', '${PILOT_SITE}', '${PILOT_CE}', 'local', 'default', '${VO}', 'Submitted', 'started by hand by the compose test') returning id`;
  const out = await s.compose.exec('postgres', ['psql', '-v', 'ON_ERROR_STOP=1', '-U', 'wms', '-d', 'wms', '-Atqc', sql]);
  const id = Number(out.trim().split('\n')[0]);
  if (!Number.isInteger(id) || id <= 0) throw new Error(`no pilot id from psql: ${out}`);
  return id;
}

/** The real wrapper (bundle fetched through HAProxy and checked) run with bash on this machine. */
async function startPilot(url: string, token: string): Promise<ChildProcess> {
  const bundle = Buffer.from(await (await fetch(`${url}/pilot/pilot.tar.gz`)).arrayBuffer());
  scratch = await mkdtemp(join(tmpdir(), 'wms-compose-pilot-'));
  await chmod(scratch, 0o755);
  const script = join(scratch, 'wrapper.sh');
  await writeFile(
    script,
    renderWrapper(await loadWrapperTemplate(), {
      serverUrl: url,
      token,
      stamp: randomBytes(16).toString('hex'),
      bundleSha256: createHash('sha256').update(bundle).digest('hex'),
      nodePath: process.execPath,
    }),
    { mode: 0o700 },
  );
  const log = openSync(join(scratch, 'pilot.log'), 'a');
  const child = spawn('bash', [script], {
    cwd: scratch,
    detached: true,
    stdio: ['ignore', log, log],
    env: {
      PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
      HOME: scratch,
      TMPDIR: scratch,
      LANG: 'C.UTF-8',
    },
  });
  closeSync(log);
  return child;
}

async function pilotLog(): Promise<string> {
  if (!scratch) return '(no pilot)';
  const text = await readFile(join(scratch, 'pilot.log'), 'utf8').catch(() => '(no log)');
  return text.split('\n').slice(-40).join('\n');
}

/** SIGTERM to the pilot's process group (wrapper, node, payloads), SIGKILL if it lingers. */
async function stopPilot(): Promise<void> {
  const p = pilot;
  if (!p?.pid || p.exitCode !== null) return;
  const exited = new Promise((done) => p.once('exit', done));
  try {
    process.kill(-p.pid, 'SIGTERM');
  } catch {
    return;
  }
  if ((await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)])) === false) {
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Polls `f` until it answers non-null; throws naming `what` after `ms`. */
async function until<T>(what: string, f: () => Promise<T | null>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(1000);
  }
}
