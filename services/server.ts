/**
 * Starting the services in this process: open the database (PostgreSQL at `databaseUrl`, else
 * PGlite in `<dataDir>/db`), make sure an admin token is on disk, build the app and listen.
 * Used by `wms server start`, which owns the signals and the exit; and the admin bootstrap
 * (`wms token issue` when no server answers) signs tokens straight from the database.
 */
import type { EventEmitter } from 'node:events';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceConfig } from '../core/config.js';
import type { PersonPrincipal, Principal } from '../core/identity.js';
import { openDb, type DbHandle } from '../db/index.js';
import { buildApp, type App } from './app.js';
import { TokenSigner, type SignedToken } from './token-signer.js';

/** Where the database of `config` is: its URL, or the PGlite directory. */
export function databaseTarget(config: Readonly<ServiceConfig>): string {
  return config.databaseUrl ?? join(config.dataDir, 'db');
}

/** Where the admin token is written. */
export function adminTokenPath(config: Readonly<ServiceConfig>): string {
  return join(config.dataDir, 'admin.token');
}

/** Writes `text` to `path` with mode 0600, atomically (temporary file, then rename). */
async function writeSecret(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/**
 * Keeps a valid admin token at `<dataDir>/admin.token` (mode 0600): the one there if it
 * verifies against this database's key, is an admin token and is good for another day; else a
 * new one. Returns whether a token was written.
 */
export async function ensureAdminToken(
  signer: TokenSigner,
  config: Readonly<ServiceConfig>,
  clock: () => Date = () => new Date(),
): Promise<boolean> {
  const path = adminTokenPath(config);
  try {
    const existing = (await readFile(path, 'utf8')).trim();
    const p = await signer.verify(existing);
    const exp = JSON.parse(Buffer.from(existing.split('.')[1] ?? '', 'base64url').toString()) as { exp?: number };
    if (p.role === 'admin' && (exp.exp ?? 0) * 1000 > clock().getTime() + 86_400_000) return false;
  } catch {
    // missing, unreadable, signed by another database's key, or expiring: write a new one
  }
  const admin: PersonPrincipal = { role: 'admin', ...config.bootstrapAdmin };
  const { token } = await signer.sign(admin, config.tokens.adminTtlSeconds);
  await writeSecret(path, `${token}\n`);
  return true;
}

export interface RunningServer {
  app: App;
  db: DbHandle;
  url: string;
  adminTokenPath: string;
  /** True when this start wrote a new admin token. */
  adminTokenWritten: boolean;
  /** Stops accepting requests, drains those in flight, closes the database. */
  close(): Promise<void>;
}

/** Applies the committed migrations to the configured database and closes it. */
export async function migrateDatabase(config: Readonly<ServiceConfig>): Promise<void> {
  if (config.databaseUrl === null) await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const db = await openDb(databaseTarget(config), { poolSize: 1 });
  await db.close();
}

export async function startServer(
  config: Readonly<ServiceConfig>,
  options: { logger?: boolean; pilotBundleDir?: string; events?: EventEmitter } = {},
): Promise<RunningServer> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const db = await openDb(databaseTarget(config), { poolSize: config.dbPoolSize });
  let app: App | undefined;
  try {
    app = buildApp({
      db,
      config,
      logger: options.logger ?? true,
      ...(options.pilotBundleDir !== undefined ? { pilotBundleDir: options.pilotBundleDir } : {}),
      ...(options.events ? { events: options.events } : {}),
    });
    await app.ready();
    const signer = await TokenSigner.open(db, { issuer: config.tokens.issuer });
    const adminTokenWritten = await ensureAdminToken(signer, config);
    const address = await app.listen({ host: config.host, port: config.port });
    const url = address.startsWith('http') ? address : `http://${address}`;
    const running = app;
    return {
      app: running,
      db,
      url: displayUrl(config.host, url),
      adminTokenPath: adminTokenPath(config),
      adminTokenWritten,
      close: async () => {
        await running.close();
        await db.close();
      },
    };
  } catch (e) {
    await app?.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw e;
  }
}

/** The URL to print: the one fastify bound, with the configured host when it is a name. */
function displayUrl(host: string, bound: string): string {
  const u = new URL(bound);
  if (host !== '0.0.0.0' && host !== '::' && !/^[\d.:[\]]+$/.test(host)) u.hostname = host;
  return u.origin;
}

/**
 * Signs a token straight from the database, without a running server: the admin bootstrap
 * behind `wms token issue` when no server answers. Opens and closes the database.
 */
export async function issueTokenDirect(
  config: Readonly<ServiceConfig>,
  principal: Principal,
  ttlSeconds: number,
): Promise<SignedToken> {
  const db = await openDb(databaseTarget(config), { poolSize: config.dbPoolSize });
  try {
    const signer = await TokenSigner.open(db, { issuer: config.tokens.issuer });
    return await signer.sign(principal, ttlSeconds);
  } finally {
    await db.close();
  }
}
