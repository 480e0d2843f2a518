/**
 * The whole system in this process (services, agents, local site with real pilots), on a fresh
 * PostgreSQL database, for the scenarios that follow jobs through pilots (e2e, latency,
 * pilot-start). Pilots are child processes (bash wrapper + dist/pilot bundle): `npm run build`
 * first.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { resolveServiceConfig, type ServiceConfig } from '../../core/config.js';
import { startSystem, type RunningSystem, type SystemOptions } from '../../cli/server-system.js';
import { TokenSigner } from '../../services/token-signer.js';
import { freshDatabase } from './database.js';

export interface BenchSystem {
  system: RunningSystem;
  url: string;
  token: string;
  /** Runs SQL on the system's database. */
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
  close(): Promise<void>;
}

export async function withSystem<T>(
  baseDbUrl: string,
  name: string,
  pilot: Partial<ServiceConfig['pilot']>,
  fn: (s: BenchSystem) => Promise<T>,
  extra: { config?: Partial<ServiceConfig>; system?: Omit<SystemOptions, 'pilotBundleDir' | 'log'> } = {},
): Promise<T> {
  const dataDir = await mkdtemp(join(tmpdir(), `wms-bench-${name}-`));
  const base = resolveServiceConfig({ flags: { port: 0, dataDir, logLevel: 'silent' } });
  const config: ServiceConfig = {
    ...base,
    databaseUrl: await freshDatabase(baseDbUrl, `wms_bench_${name.replace(/-/g, '_')}`),
    agentSettings: { ...base.agentSettings, siteDirector: { ...base.agentSettings.siteDirector, schedule: '*/2 * * * * *' } },
    pilot: { ...base.pilot, ...pilot },
    ...extra.config,
  };
  const system = await startSystem(config, {
    pilotBundleDir: resolve(import.meta.dirname, '../../dist/pilot'),
    logger: false,
    ...extra.system,
  });
  const signer = await TokenSigner.open(system.server.db, { issuer: config.tokens.issuer });
  const { token } = await signer.sign({ role: 'user', user: 'alice', vo: 'bench', group: 'bench_user' }, 86_400);
  const admin = (await signer.sign({ role: 'admin', user: 'admin', vo: 'bench', group: 'admin' }, 86_400)).token;
  const s: BenchSystem = {
    system,
    url: system.server.url,
    token,
    query: (sql, params = []) => system.server.db.query(sql, params),
    async api<R>(method: string, path: string, body?: unknown): Promise<R> {
      const res = await fetch(s.url + path, {
        method,
        headers: {
          authorization: `Bearer ${path.startsWith('/api/jobs') ? token : admin}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return JSON.parse(text) as R;
    },
    close: async () => {
      await system.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** Polls `probe` every `everyMs` until it answers a value (throws after `timeoutMs`). */
export async function poll<T>(
  what: string,
  probe: () => Promise<T | null | false | undefined>,
  timeoutMs: number,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
