/**
 * Issue 14: the embedded database (PGlite) is one process only. `wms server start` on a data
 * directory holds its lock (db/pglite-lock.ts); `wms server agents --once` on the same directory
 * is refused (exit code not 0) with a message naming the data directory, the server's pid and
 * what to do (stop it, or PostgreSQL with --db), and writes nothing. Once the server stopped, the
 * same command works; a lock file left by a process that is gone (SIGKILL) is taken over. In one
 * process the lock is re-entrant: opening the directory twice works, the file goes with the last
 * close. Real processes: `node dist/cli/main.js` (needs `npm run build`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb } from '../../db/index.js';
import { FOREIGN_STALE_SECONDS, lockPgliteDir, PGLITE_LOCK_FILE } from '../../db/pglite-lock.js';
import { freePort } from '../helpers/pg-cluster.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli/main.js');

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('WMS_')) env[k] = v;
  return { ...env, WMS_LOCAL_SITE: 'false', WMS_LOG_LEVEL: 'warn', WMS_LOG_FORMAT: 'json' };
}

/** Runs `wms ARGS` to its end: exit code and output. */
function wms(args: string[], cwd: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('exit', (code) => done({ code, out, err }));
  });
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2000) });
    await res.text();
    return res.status === 200;
  } catch {
    return false;
  }
}

describe('the lock file alone (db/pglite-lock.ts)', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const lockIn = async (info: object, mtime?: Date): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'wms-lockfile-'));
    dirs.push(dir);
    await writeFile(
      join(dir, PGLITE_LOCK_FILE),
      JSON.stringify({ since: '2026-01-01T00:00:00.000Z', command: 'wms server start', ...info }),
    );
    if (mtime) await utimes(join(dir, PGLITE_LOCK_FILE), mtime, mtime);
    return dir;
  };

  it('a live process of this host holds it; once that process ended (reaped or not), it is taken over', async () => {
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    const dir = await lockIn({ pid: holder.pid, host: hostname(), procStart: null });
    expect(() => lockPgliteDir(dir)).toThrow(
      new RegExp(`the embedded database ${dir} is in use by process ${holder.pid} \\("wms server start"`),
    );
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    const stale: string[] = [];
    const release = lockPgliteDir(dir, (line) => stale.push(line));
    expect(stale).toEqual([
      expect.stringContaining(`stale lock of process ${holder.pid} (taken at 2026-01-01T00:00:00.000Z; that process is gone)`),
    ]);
    expect(JSON.parse(await readFile(join(dir, PGLITE_LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
    release();
    expect(existsSync(join(dir, PGLITE_LOCK_FILE))).toBe(false);
  });

  it('a lock of another host is held while renewed, taken over once not renewed for a minute', async () => {
    const fresh = await lockIn({ pid: 1, host: 'elsewhere', procStart: null });
    expect(() => lockPgliteDir(fresh)).toThrow(/in use by process 1 on host elsewhere/);
    const old = await lockIn({ pid: 1, host: 'elsewhere', procStart: null }, new Date(Date.now() - (FOREIGN_STALE_SECONDS + 5) * 1000));
    const stale: string[] = [];
    lockPgliteDir(old, (line) => stale.push(line))();
    expect(stale).toEqual([
      expect.stringContaining(`on host elsewhere (taken at 2026-01-01T00:00:00.000Z; not renewed for ${FOREIGN_STALE_SECONDS} s)`),
    ]);
  });
});

describe('the embedded database is one process only (lock file)', () => {
  let base = '';
  let server: ChildProcess | null = null;
  afterAll(async () => {
    if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('a second process on the data dir of a running server is refused, naming both; after the server stopped it works', async () => {
    base = await mkdtemp(join(tmpdir(), 'wms-pglite-lock-'));
    const dataDir = join(base, 'data');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    let serverErr = '';
    server = spawn(
      process.execPath,
      [CLI, 'server', 'start', '--data-dir', dataDir, '--port', String(port), '--host', '127.0.0.1', '--no-agents', '--no-local-site'],
      { cwd: base, env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
    );
    server.stderr!.on('data', (b: Buffer) => (serverErr += b.toString()));
    const serverExit = new Promise<number | null>((r) => server!.once('exit', (code) => r(code)));
    // Generous: a first start creates and migrates the database (a minute on a loaded machine).
    const deadline = Date.now() + 240_000;
    while (!(await healthy(url))) {
      if (server.exitCode !== null) throw new Error(`server exited (${server.exitCode}):\n${serverErr}`);
      if (Date.now() > deadline) throw new Error(`server did not answer in 240 s:\n${serverErr}`);
      await sleep(200);
    }
    const lock = JSON.parse(await readFile(join(dataDir, 'db', PGLITE_LOCK_FILE), 'utf8')) as { pid: number };
    expect(lock.pid).toBe(server.pid);

    const refused = await wms(['server', 'agents', '--once', '--only', 'stalled-jobs', '--data-dir', dataDir], base);
    expect(refused.code).not.toBe(0);
    expect(refused.out).not.toMatch(/stalled-jobs:/);
    expect(refused.err).toContain(`the embedded database of the data directory ${dataDir} is in use by process ${server.pid}`);
    expect(refused.err).toMatch(/one process only/);
    expect(refused.err).toMatch(/Stop that process first/);
    expect(refused.err).toMatch(/PostgreSQL \(--db postgres:\/\/\.\.\.\)/);
    // The server is untouched.
    expect(await healthy(url)).toBe(true);

    server.kill('SIGTERM');
    expect(await serverExit).toBe(0);
    expect(existsSync(join(dataDir, 'db', PGLITE_LOCK_FILE))).toBe(false);
    const ok = await wms(['server', 'agents', '--once', '--only', 'stalled-jobs', '--data-dir', dataDir], base);
    expect(ok.err).toBe('');
    expect(ok).toMatchObject({ code: 0, out: expect.stringMatching(/^stalled-jobs: /) });
    expect(existsSync(join(dataDir, 'db', PGLITE_LOCK_FILE))).toBe(false);
  }, 420_000);

  it('a stale lock (its process gone) is taken over', async () => {
    const dataDir = join(base, 'data');
    const gone = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await new Promise((r) => gone.once('exit', r));
    const stale = {
      pid: gone.pid,
      host: hostname(),
      procStart: null,
      since: '2026-01-01T00:00:00.000Z',
      command: 'wms server start',
    };
    await writeFile(join(dataDir, 'db', PGLITE_LOCK_FILE), JSON.stringify(stale));
    const ok = await wms(['server', 'agents', '--once', '--only', 'stalled-jobs', '--data-dir', dataDir], base);
    expect(ok).toMatchObject({ code: 0, out: expect.stringMatching(/^stalled-jobs: /) });
    expect(ok.err).toContain(`stale lock of process ${gone.pid}`);
    expect(existsSync(join(dataDir, 'db', PGLITE_LOCK_FILE))).toBe(false);
  }, 240_000);

  it('in one process the lock is re-entrant: two opens of the directory, the file goes with the last close', async () => {
    const dir = join(base, 'in-process');
    const first = await openDb(dir);
    const second = await openDb(dir, { migrate: false });
    const file = join(dir, PGLITE_LOCK_FILE);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ pid: process.pid });
    await second.close();
    expect(existsSync(file)).toBe(true);
    await first.close();
    expect(existsSync(file)).toBe(false);
    // Opened again after closing: fine.
    const again = await openDb(dir, { migrate: false });
    await again.close();
    expect(existsSync(file)).toBe(false);
  }, 180_000);
});
