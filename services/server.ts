/**
 * Starting the services in this process: open the database (PostgreSQL at `databaseUrl`, else
 * PGlite in `<dataDir>/db`), make sure an admin token is on disk, build the app and listen.
 * Used by `wms server start`, which owns the signals and the exit; and the admin bootstrap
 * (`wms token issue` when no server answers) signs tokens straight from the database.
 */
import type { EventEmitter } from 'node:events';
import { constants as fsConstants, type Stats } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { ServiceConfig } from '../core/config.js';
import { WmsError } from '../core/errors.js';
import type { PersonPrincipal, Principal } from '../core/identity.js';
import { localNoticeBus, openDb, openNoticeBus, type DbHandle, type NoticeBus } from '../db/index.js';
import { buildApp, type App } from './app.js';
import { createRootLogger, type Logger } from './logger.js';
import { importLegacySandboxes, type LegacyImport } from './sandbox-store-pg.js';
import { TokenSigner, type SignedToken } from './token-signer.js';

/** Where the database of `config` is: its URL, or the PGlite directory. */
export function databaseTarget(config: Readonly<ServiceConfig>): string {
  return config.databaseUrl ?? join(config.dataDir, 'db');
}

/** Where the admin token is written. */
export function adminTokenPath(config: Readonly<ServiceConfig>): string {
  return join(config.dataDir, 'admin.token');
}

/** Warnings of a start without a logger of its own: a root logger at the config's level (services/logger.ts). */
const warnOf = (config: Readonly<ServiceConfig>) => {
  const log = createRootLogger({ level: config.logLevel });
  return (line: string) => log.warn(line);
};

/** What `prepareDataDir` found and did. */
export interface DataDirReport {
  /** The directory did not exist: it was made 0700. */
  created: boolean;
  /** Entries (the directory itself included) that other users could open, now closed. */
  tightened: number;
}

const PRIVATE_DIR = 0o700;
const PRIVATE_FILE = 0o600;

function refuseDataDir(message: string): WmsError {
  return new WmsError('WMS_CONFIG', `data directory ${message}`);
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

/**
 * Makes the data directory private before anything opens it, at every start (`wms server
 * start`, `server agents`, `server migrate` and the admin bootstrap all come through here).
 *
 * The process umask becomes 077 for good (sandboxes, admin.token, the local site's files; PGlite
 * chmods its own files 0666 whatever the umask, which `openDb` turns into 0600): PGlite's WAL
 * holds every row written, the Ed25519 signing key included. A missing directory is made 0700. An existing one must belong to this process's user; it is then closed: the directory
 * and every directory below it 0700, every file 0600 (symbolic links are neither followed nor
 * changed). Refused (WMS_CONFIG, a message without a stack) when it is owned by another user,
 * is not a directory, or is still open to other users afterwards. A warning is logged when
 * something had to be closed: other users may have copied the signing key.
 */
export async function prepareDataDir(dataDir: string, warn: (line: string) => void): Promise<DataDirReport> {
  process.umask(0o077);
  let created = false;
  let top: Stats;
  try {
    top = await stat(dataDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw refuseDataDir(`${dataDir}: cannot be read (${(e as Error).message})`);
    try {
      await mkdir(dataDir, { recursive: true, mode: PRIVATE_DIR });
    } catch (err) {
      throw refuseDataDir(`${dataDir}: cannot be created (${(err as Error).message})`);
    }
    created = true;
    top = await stat(dataDir);
  }
  if (!top.isDirectory()) throw refuseDataDir(`${dataDir} is not a directory`);
  const me = process.getuid?.();
  if (me !== undefined && top.uid !== me) {
    throw refuseDataDir(
      `${dataDir} is owned by ${userName(top.uid)}, not by ${userName(me)} that this server runs as: ` +
        "it holds the signing key and the admin token, so it must be this user's own. " +
        'Change its owner (chown) or choose another --data-dir.',
    );
  }

  // Close the tree: every entry open to group or others is counted; every mode is set exactly.
  const opened: string[] = [];
  const exposedFiles: string[] = [];
  const stuck: string[] = [];
  const close = async (path: string, st: Stats, want: number): Promise<void> => {
    const mode = st.mode & 0o7777;
    if (mode & 0o077) opened.push(path);
    if (!st.isDirectory() && mode & 0o066) exposedFiles.push(path);
    if (mode === want) return;
    try {
      await chmodNoFollow(path, want, path !== dataDir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ELOOP') return; // gone, or a symbolic link now
      if (mode & 0o077) stuck.push(`${path} (${octal(mode)}: ${(e as Error).message})`);
    }
  };
  // The top first: once it is 0700, no other user can reach, swap or add anything below it.
  await close(dataDir, top, PRIVATE_DIR);
  const pending = [dataDir];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw refuseDataDir(`${dataDir}: ${dir} cannot be read (${(e as Error).message})`);
    }
    for (const entry of entries) {
      if (entry.isSymbolicLink()) continue;
      const path = join(dir, entry.name);
      let st: Stats;
      try {
        st = await lstat(path);
      } catch {
        continue; // gone meanwhile
      }
      if (st.isSymbolicLink()) continue;
      if (st.isDirectory()) {
        await close(path, st, PRIVATE_DIR);
        pending.push(path);
      } else {
        await close(path, st, PRIVATE_FILE);
      }
    }
  }
  const after = await stat(dataDir);
  if (after.mode & 0o077) stuck.unshift(`${dataDir} (${octal(after.mode)})`);
  if (stuck.length > 0) {
    throw refuseDataDir(
      `${dataDir} is still open to other users after chmod: ${stuck.slice(0, 3).join('; ')}${stuck.length > 3 ? ` and ${stuck.length - 3} more` : ''}. ` +
        'Make it private (chmod -R go-rwx) or choose another --data-dir.',
    );
  }
  if (opened.length > 0 && !created) {
    const files = exposedFiles.length;
    warn(
      `warning: ${dataDir} was readable by other users (${opened.length} entr${opened.length === 1 ? 'y' : 'ies'}, ` +
        `e.g. ${opened[0]}): tightened to 0700 (directories) and 0600 (files).` +
        (files === 0
          ? ''
          : ` ${files} file(s) were readable or writable by them (e.g. ${exposedFiles[0]}). If other users had access, ` +
            "rotate the signing key (it is in the database, and PGlite's WAL holds it): there is no command for it yet; " +
            'stop every server on this database, delete the key (DELETE FROM signing_keys) and start again: a new key ' +
            'and a new admin.token are made, and every token signed with the old key stops working.'),
    );
  }
  return { created, tightened: opened.length };
}

/**
 * chmod that does not follow a symbolic link put in place of `path` after it was looked at
 * (`noFollow`): through a descriptor opened with O_NOFOLLOW where one can be opened (regular
 * files and directories), else by path (FIFOs, sockets, files this user may not open).
 */
async function chmodNoFollow(path: string, mode: number, noFollow: boolean): Promise<void> {
  if (!noFollow) return chmod(path, mode);
  let handle;
  try {
    handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'ENXIO' && code !== 'EPERM') throw e;
    const st = await lstat(path);
    if (st.isSymbolicLink()) return;
    return chmod(path, mode);
  }
  try {
    await handle.chmod(mode);
  } finally {
    await handle.close();
  }
}

function userName(uid: number): string {
  try {
    if (uid === process.getuid?.()) return `${userInfo().username} (uid ${uid})`;
  } catch {
    // no passwd entry
  }
  return `uid ${uid}`;
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
  /**
   * On PostgreSQL, the background import of the sandbox files an older version kept in
   * `<dataDir>/sandboxes` (`importLegacySandboxes`); null on PGlite or when it failed (logged).
   * Never rejects; `close` stops it between archives and waits for it.
   */
  sandboxImport: Promise<LegacyImport | null>;
  /** Stops accepting requests, drains those in flight, closes the database. */
  close(): Promise<void>;
}

/** Applies the committed migrations to the configured database and closes it. */
export async function migrateDatabase(config: Readonly<ServiceConfig>, warn?: (line: string) => void): Promise<void> {
  if (config.databaseUrl === null) await prepareDataDir(config.dataDir, warn ?? warnOf(config));
  const db = await openDb(databaseTarget(config), { poolSize: 1 });
  await db.close();
}

export async function startServer(
  config: Readonly<ServiceConfig>,
  options: {
    /** The process's root logger, or true (default) for a new one at `config.logLevel`, false for none. */
    logger?: boolean | Logger;
    pilotBundleDir?: string;
    events?: EventEmitter;
    /** Where the data directory's warnings go (default: the logger). */
    warn?: (line: string) => void;
  } = {},
): Promise<RunningServer> {
  const logger =
    typeof options.logger === 'object' ? options.logger : options.logger === false ? null : createRootLogger({ level: config.logLevel });
  const warn = options.warn ?? (logger ? (line: string) => logger.warn(line) : warnOf(config));
  // The data directory holds admin.token and the sandboxes on every database, and PGlite's files.
  await prepareDataDir(config.dataDir, warn);
  const db = await openDb(databaseTarget(config), { poolSize: config.dbPoolSize });
  let app: App | undefined;
  let notices: NoticeBus | undefined;
  try {
    // Hints between replicas (kills, new work, changes): LISTEN/NOTIFY on PostgreSQL.
    const noticeLog = logger ? logger.child({ part: 'notices' }) : undefined;
    notices = db.driver === 'pg' ? await openNoticeBus(databaseTarget(config), db, noticeLog) : localNoticeBus(noticeLog);
    const bus = notices;
    app = buildApp({
      db,
      config,
      notices: bus,
      logger: logger ?? false,
      ...(options.pilotBundleDir !== undefined ? { pilotBundleDir: options.pilotBundleDir } : {}),
      ...(options.events ? { events: options.events } : {}),
    });
    await app.ready();
    const signer = await TokenSigner.open(db, { issuer: config.tokens.issuer });
    const adminTokenWritten = await ensureAdminToken(signer, config);
    const address = await app.listen({ host: config.host, port: config.port });
    const url = address.startsWith('http') ? address : `http://${address}`;
    const running = app;
    const stopImport = new AbortController();
    const sandboxImport = db.driver === 'pg' ? importInBackground(db, config, logger, warn, stopImport.signal) : Promise.resolve(null);
    return {
      app: running,
      db,
      url: displayUrl(config.host, url),
      adminTokenPath: adminTokenPath(config),
      adminTokenWritten,
      sandboxImport,
      close: async () => {
        stopImport.abort();
        await sandboxImport;
        await running.close();
        await bus.close();
        await db.close();
      },
    };
  } catch (e) {
    await app?.close().catch(() => undefined);
    await notices?.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw e;
  }
}

/**
 * Starts the import of the sandbox files of older versions into PostgreSQL (after listening:
 * readiness does not wait for it); its failure is logged, never thrown.
 */
function importInBackground(
  db: DbHandle,
  config: Readonly<ServiceConfig>,
  logger: Logger | null,
  warn: (line: string) => void,
  signal: AbortSignal,
): Promise<LegacyImport | null> {
  const log = logger ? logger.child({ component: 'sandbox-import' }) : { info: () => undefined, warn };
  return importLegacySandboxes(db, join(config.dataDir, 'sandboxes'), log, signal).catch((e: unknown) => {
    log.warn(`the import of the sandbox files in ${config.dataDir} stopped (next start tries again): ${(e as Error).message}`);
    return null;
  });
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
  warn?: (line: string) => void,
): Promise<SignedToken> {
  if (config.databaseUrl === null) await prepareDataDir(config.dataDir, warn ?? warnOf(config));
  const db = await openDb(databaseTarget(config), { poolSize: config.dbPoolSize });
  try {
    const signer = await TokenSigner.open(db, { issuer: config.tokens.issuer });
    return await signer.sign(principal, ttlSeconds);
  } finally {
    await db.close();
  }
}
