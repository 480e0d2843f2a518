/**
 * A service app for API tests: `buildApp()` on a database (by default a fresh in-memory PGlite;
 * API suites pass `ctx.handle` from `describeDb` so that they run on PGlite and on the real
 * PostgreSQL), a temporary data directory for sandboxes, and tokens minted with the app's own
 * key for any principal.
 *
 * ```ts
 * describeDb('jobs API', (ctx) => {
 *   let t: TestApp;
 *   beforeAll(async () => { t = await createTestApp({ db: ctx.handle }); });
 *   afterAll(() => t.close());
 *   it('...', async () => { const res = await t.call('GET', '/api/jobs', await t.user('alice')); });
 * });
 * ```
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { resolveServiceConfig, type ServiceConfig } from '../../core/config.js';
import type { Principal } from '../../core/identity.js';
import { openDb, type DbHandle } from '../../db/index.js';
import { buildApp, type App } from '../../services/app.js';
import { TokenSigner } from '../../services/token-signer.js';

export interface TestClock {
  (): Date;
  /** Moves the clock forward. */
  advance(ms: number): void;
}

export function testClock(start = new Date('2026-11-22T10:00:00Z')): TestClock {
  let now = start.getTime();
  const clock = (() => new Date(now)) as TestClock;
  clock.advance = (ms) => {
    now += ms;
  };
  return clock;
}

export interface TestApp {
  app: App;
  db: DbHandle;
  config: Readonly<ServiceConfig>;
  dataDir: string;
  /** The app's clock; by default the real time (tokens then verify with real time too). */
  clock: () => Date;
  tokenFor(p: Principal, ttlSeconds?: number): Promise<string>;
  /** A user token: user `name` in VO `vo` (default "vo1"), group `<vo>_user` unless given. */
  user(name: string, vo?: string, group?: string): Promise<string>;
  admin(): Promise<string>;
  pilot(pilotId: number, vo?: string): Promise<string>;
  /** Calls the API with a token (or none). */
  call(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD',
    url: string,
    token: string | null,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** A database opened by the caller (closed by the caller); default: a fresh memory:// one. */
  db?: DbHandle;
  /** Changes to the default config (after env-free resolution). */
  config?: Partial<ServiceConfig>;
  clock?: () => Date;
}

export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const dataDir = await mkdtemp(join(tmpdir(), 'wms-api-test-'));
  const ownDb = options.db === undefined;
  const db = options.db ?? (await openDb('memory://'));
  const config = Object.freeze({ ...resolveServiceConfig({ env: {} }), dataDir, ...options.config });
  const clock = options.clock ?? (() => new Date());
  const app = buildApp({ db, config, clock });
  await app.ready();
  const signer = await TokenSigner.open(db, { issuer: config.tokens.issuer, clock });
  const tokenFor = async (p: Principal, ttl = 3600) => (await signer.sign(p, ttl)).token;
  return {
    app,
    db,
    config,
    dataDir,
    clock,
    tokenFor,
    user: (name, vo = 'vo1', group) => tokenFor({ role: 'user', user: name, vo, group: group ?? `${vo}_user` }),
    admin: () => tokenFor({ role: 'admin', user: 'root', vo: 'vo1', group: 'vo1_admin' }),
    pilot: (pilotId, vo = 'vo1') => tokenFor({ role: 'pilot', user: `pilot:${pilotId}`, vo, pilotId }),
    call: (method, url, token, body, headers = {}) =>
      app.inject({
        method,
        url,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
        ...(body === undefined ? {} : typeof body === 'string' || Buffer.isBuffer(body) ? { payload: body } : { payload: body as object }),
      }),
    close: async () => {
      await app.close();
      if (ownDb) await db.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Rows in the jobs table (to prove that a refused submission wrote nothing). */
export async function countJobs(db: DbHandle): Promise<number> {
  const [row] = await db.query<{ n: number | string }>('SELECT count(*) AS n FROM jobs');
  return Number(row?.n ?? 0);
}

/** A minimal valid JDL. */
export function jdl(attrs: Record<string, string | number> = {}, executable = 'run.sh'): string {
  const lines = [`  Executable = "${executable}";`];
  for (const [k, v] of Object.entries(attrs)) lines.push(`  ${k} = ${typeof v === 'number' ? v : `"${v}"`};`);
  return `[\n${lines.join('\n')}\n]`;
}
