/**
 * Whole systems for end-to-end tests: `startSystem()` (services, agents on fast schedules, the
 * local site) on PGlite and on the real PostgreSQL, with real pilot processes started by the
 * local CE through the bash wrapper and the built bundle (`dist/pilot/pilot.tar.gz`: `npm ci`
 * builds it; `npm run build` after changing the pilot).
 *
 * ```ts
 * describeSystem('jobs end to end', (sys) => {
 *   it('runs hello', async () => { const [id] = await sys.submit(HELLO); await sys.waitForStatus(id, ['Done']); });
 * });
 * ```
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { resolveServiceConfig, type ServiceConfig } from '../../core/config.js';
import type { PersonPrincipal } from '../../core/identity.js';
import { startSystem, type RunningSystem, type SystemOptions } from '../../cli/server-system.js';
import { TokenSigner } from '../../services/token-signer.js';
import { openDb } from '../../db/index.js';
import { listPilots } from '../../db/queries/pilots.js';
import { PILOT_TRANSIENT_STATES } from '../../core/pilot-states.js';
import { IN_CI, postgresProblem, reservePostgresDatabase, truncateAll } from './db.js';

export const BUNDLE_DIR = resolve(import.meta.dirname, '../../dist/pilot');

/** Settings that make a system quick to observe: agents every second, pilots that poll fast. */
export function fastConfig(dataDir: string, databaseUrl: string | null, over: Partial<ServiceConfig> = {}): ServiceConfig {
  const base = resolveServiceConfig({ flags: { port: 0, dataDir, logLevel: 'silent' } });
  const everySecond = '* * * * * *';
  return {
    ...base,
    databaseUrl,
    agentSettings: {
      ...base.agentSettings,
      siteDirector: { ...base.agentSettings.siteDirector, schedule: everySecond },
      pilotStatus: { ...base.agentSettings.pilotStatus, schedule: everySecond },
      stalledJobs: { schedule: everySecond, stalledAfterSeconds: 4, failedAfterSeconds: 120, matchedTimeoutSeconds: 120 },
    },
    pilot: {
      ...base.pilot,
      pollSeconds: 0.2,
      maxPollSeconds: 1,
      stopAfterFailedMatches: 5,
      heartbeatSeconds: 1,
      minDiskMb: 50,
      logFlushSeconds: 0.5,
      localSlots: 2,
    },
    ...over,
  };
}

export interface SystemCtx {
  readonly system: RunningSystem;
  readonly url: string;
  readonly dataDir: string;
  /** A user token (alice of VO "vo", group "vo_user" unless given). */
  token(user?: string): Promise<string>;
  adminToken(): Promise<string>;
  /** Calls the API; answers the parsed JSON (throws with the body on a non-2xx). */
  api<T = any>(method: string, path: string, body?: unknown, token?: string): Promise<T>;
  submit(jdl: string, token?: string): Promise<number[]>;
  /** Polls until the job is in one of `states` (throws with its history after `timeoutMs`). */
  waitForStatus(id: number, states: string[], timeoutMs?: number): Promise<any>;
}

export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = 60_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function makeCtx(get: () => { system: RunningSystem; dataDir: string }): SystemCtx {
  const signer = async () => TokenSigner.open(get().system.server.db, { issuer: 'pilot-wms' });
  const person = async (p: PersonPrincipal) => (await (await signer()).sign(p, 3600)).token;
  const ctx: SystemCtx = {
    get system() {
      return get().system;
    },
    get url() {
      return get().system.server.url;
    },
    get dataDir() {
      return get().dataDir;
    },
    token: (user = 'alice') => person({ role: 'user', user, vo: 'vo', group: 'vo_user' }),
    adminToken: () => person({ role: 'admin', user: 'admin', vo: 'vo', group: 'admin' }),
    async api(method, path, body, token) {
      const res = await fetch(ctx.url + path, {
        method,
        headers: {
          authorization: `Bearer ${token ?? (await ctx.adminToken())}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    },
    async submit(jdl, token) {
      const r = await ctx.api<{ jobIds: number[] }>('POST', '/api/jobs', { jdl }, token ?? (await ctx.token()));
      return r.jobIds;
    },
    async waitForStatus(id, states, timeoutMs = 60_000) {
      try {
        return await waitUntil(
          `job ${id} to reach ${states.join('|')}`,
          async () => {
            const job = await ctx.api('GET', `/api/jobs/${id}`);
            return states.includes(job.status) ? job : null;
          },
          timeoutMs,
          100,
        );
      } catch (e) {
        const history = await ctx.api('GET', `/api/jobs/${id}/history`).catch(() => null);
        throw new Error(`${(e as Error).message}; history: ${JSON.stringify(history)}`, { cause: e });
      }
    },
  };
  return ctx;
}

/**
 * Cancels, through the system's own drivers, every pilot it still counts as alive: a test's
 * pilots must not outlive it and hold the SLURM node (or a fake pool's slots) for the next file.
 */
export async function cancelLivePilots(system: RunningSystem): Promise<void> {
  const live = await listPilots(system.server.db, { status: [...PILOT_TRANSIENT_STATES], limit: 10_000 });
  const byCe = new Map<string, { type: string; ce: string; refs: string[] }>();
  for (const p of live) {
    if (!p.reference) continue;
    const key = `${p.ceType}/${p.ce}`;
    const entry = byCe.get(key) ?? { type: p.ceType, ce: p.ce, refs: [] };
    entry.refs.push(p.reference);
    byCe.set(key, entry);
  }
  for (const { type, ce, refs } of byCe.values()) {
    // A test may have stopped its backend (a simulator) already: nothing is left to cancel there.
    await system.computingElements
      .known(type, ce)
      ?.cancel(refs)
      .catch((e: unknown) => console.warn(`[system] pilots of ${ce} not cancelled: ${(e as Error).message}`));
  }
}

export interface DescribeSystemOptions extends SystemOptions {
  config?: Partial<ServiceConfig>;
}

function systemSuite(driver: 'pglite' | 'pg', name: string, fn: (sys: SystemCtx) => void, opts: DescribeSystemOptions): void {
  const dbUrl = driver === 'pg' ? reservePostgresDatabase() : null;
  let state: { system: RunningSystem; dataDir: string } | null = null;
  describe(`${name} [${driver === 'pg' ? 'postgres' : 'pglite'}]`, () => {
    beforeAll(async () => {
      if (!existsSync(join(BUNDLE_DIR, 'pilot.tar.gz'))) throw new Error(`no pilot bundle in ${BUNDLE_DIR}: run npm run build`);
      const dataDir = await mkdtemp(join(tmpdir(), 'wms-e2e-'));
      const { config: over, ...systemOpts } = opts;
      const url = dbUrl ? await dbUrl() : null;
      if (url) {
        // The file's PostgreSQL database is shared by its suites: each system starts empty
        // (no sites, paused queues or pilots of the suite before).
        const h = await openDb(url, { migrate: false, poolSize: 1 });
        await truncateAll(h).finally(() => h.close());
      }
      const config = fastConfig(dataDir, url, over);
      const system = await startSystem(config, { pilotBundleDir: BUNDLE_DIR, logger: false, ...systemOpts });
      state = { system, dataDir };
    });
    afterAll(async () => {
      if (!state) return;
      await cancelLivePilots(state.system);
      await state.system.close();
      await rm(state.dataDir, { recursive: true, force: true });
      state = null;
    });
    fn(
      makeCtx(() => {
        if (!state) throw new Error('the system is only available inside hooks and tests');
        return state;
      }),
    );
  });
}

/** Runs `fn` against a whole system on PGlite and on PostgreSQL (CI fails without PostgreSQL). */
export function describeSystem(name: string, fn: (sys: SystemCtx) => void, opts: DescribeSystemOptions = {}): void {
  systemSuite('pglite', name, fn, opts);
  const problem = postgresProblem();
  if (problem === null) {
    systemSuite('pg', name, fn, opts);
  } else if (IN_CI) {
    describe(`${name} [postgres]`, () => {
      it('needs PostgreSQL', () => {
        throw new Error(`${problem}; CI is set, so this suite must not be skipped`);
      });
    });
  } else {
    console.warn(`[e2e] SKIPPING "${name} [postgres]": ${problem}`);
  }
}
