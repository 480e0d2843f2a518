/**
 * The upgrade of a PostgreSQL deployment whose sandboxes an older version kept on disk, on a real
 * PostgreSQL (`describePg`): the files at `<data-dir>/sandboxes/ab/abcdef…` whose `sandboxes` row
 * has no chunks (what that version left) are copied into `sandbox_chunks` by `startServer`, in
 * the background, then removed.
 *
 * - after the start, each archive downloads with the same bytes (several chunks too), its file
 *   and its fan-out directory are gone, and one log line says how many were imported;
 * - a file whose bytes do not hash to its name, or whose size is not its row's, is not imported:
 *   it stays on disk untouched, no chunk is written, a warning names it once, and its download
 *   answers 404 as before the upgrade would have failed;
 * - two imports at once (two replicas on one data directory) both succeed and write each archive
 *   once; an import after them finds nothing to do;
 * - files without a row, or whose archive has its chunks already, are left alone.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeEach, expect, it } from 'vitest';
import { resolveServiceConfig, type ServiceConfig } from '../../core/config.js';
import { recordSandbox, SANDBOX_CHUNK_BYTES } from '../../db/index.js';
import { importLegacySandboxes } from '../../services/sandbox-store-pg.js';
import { startServer, type RunningServer } from '../../services/server.js';
import { describePg, postgresProblem, reservePostgresDatabase } from '../helpers/db.js';
import { captureLogger } from '../helpers/logs.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** A gzip archive of about `bytes` random bytes (stored, not compressed). */
const archive = (bytes: number) => gzipSync(randomBytes(bytes), { level: 0 });
const WARN = 40;
const quiet = { info: () => undefined, warn: () => undefined };

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wms-legacy-sandboxes-'));
  dirs.push(dir);
  return dir;
}

function configFor(dir: string, databaseUrl: string | null): ServiceConfig {
  const base = resolveServiceConfig({ env: {}, flags: { port: 0, host: '127.0.0.1', dataDir: dir, logLevel: 'silent' } });
  return { ...base, databaseUrl };
}

/** Where the older version kept archive `name`. */
const fileOf = (dir: string, name: string) => join(dir, 'sandboxes', name.slice(0, 2), name);

/** Writes `bytes` where the older version kept archive `name`. */
async function putFile(dir: string, name: string, bytes: Buffer): Promise<string> {
  const file = fileOf(dir, name);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, bytes);
  return file;
}

async function download(server: RunningServer, dir: string, hash: string): Promise<{ status: number; bytes: Buffer }> {
  const token = (await readFile(join(dir, 'admin.token'), 'utf8')).trim();
  const res = await fetch(`${server.url}/api/sandboxes/${hash}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
}

describePg('sandbox files of an older version, imported into PostgreSQL at start', (ctx) => {
  const databaseUrl = postgresProblem() === null ? reservePostgresDatabase() : null;
  const started: RunningServer[] = [];

  /** What the older version left for `body`: the file under `dir` and its rows (an owner), no chunk. */
  async function legacy(dir: string, body: Buffer, row: { name?: string; size?: number } = {}): Promise<string> {
    const name = row.name ?? sha(body);
    await recordSandbox(ctx.handle, { sha256: name, size: row.size ?? body.length, owner: 'alice', ownerGroup: 'vo1_user', vo: 'vo1' });
    return putFile(dir, name, body);
  }
  const chunks = async (hash: string) =>
    (await ctx.handle.query<{ n: number }>('select count(*)::int as n from sandbox_chunks where sha256 = $1', [hash]))[0]?.n;
  const start = async (dir: string, logger = captureLogger().logger) => {
    const server = await startServer(configFor(dir, await databaseUrl!()), { logger });
    started.push(server);
    return server;
  };

  beforeEach(() => ctx.truncate());
  afterAll(async () => {
    for (const s of started.splice(0)) await s.close();
  });

  it('the start copies the files into chunks and removes them; downloads answer the same bytes', async () => {
    const dir = await dataDir();
    const small = gzipSync(Buffer.from('an input sandbox of an older version'));
    const big = archive(Math.floor(2.5 * SANDBOX_CHUNK_BYTES));
    const files = [await legacy(dir, small), await legacy(dir, big)];
    expect(await chunks(sha(big))).toBe(0);

    const logs = captureLogger();
    const server = await start(dir, logs.logger);
    expect(await server.sandboxImport).toEqual({ found: 2, imported: 2, mismatched: [], failed: 0 });

    expect(await chunks(sha(small))).toBe(1);
    expect(await chunks(sha(big))).toBe(3);
    for (const body of [small, big]) {
      const got = await download(server, dir, sha(body));
      expect(got.status).toBe(200);
      expect(Buffer.compare(got.bytes, body)).toBe(0);
    }
    for (const file of files) await expect(readFile(file)).rejects.toThrow(/ENOENT/);
    expect(await readdir(join(dir, 'sandboxes'))).not.toContain(sha(small).slice(0, 2));
    const lines = logs.messages().filter((m) => m.startsWith('imported '));
    expect(lines).toEqual([`imported 2 sandbox archive file(s) from ${join(dir, 'sandboxes')} into the database`]);
  });

  it('a file whose bytes do not hash to its name, or whose size is not its row, stays on disk, unimported, named once', async () => {
    const dir = await dataDir();
    const claimed = archive(4000);
    const other = archive(4000); // same size, other bytes
    expect(other.length).toBe(claimed.length);
    const wrongBytes = await legacy(dir, other, { name: sha(claimed) });
    const shortRow = archive(3000);
    const wrongSize = await legacy(dir, shortRow, { size: shortRow.length - 1 });
    const good = archive(2000);
    await legacy(dir, good);

    const logs = captureLogger();
    const server = await start(dir, logs.logger);
    const result = await server.sandboxImport;
    expect(result).toEqual({ found: 3, imported: 1, mismatched: [wrongBytes, wrongSize].sort(), failed: 0 });

    expect(Buffer.compare(await readFile(wrongBytes), other)).toBe(0);
    expect(Buffer.compare(await readFile(wrongSize), shortRow)).toBe(0);
    expect(await chunks(sha(claimed))).toBe(0);
    expect(await chunks(sha(shortRow))).toBe(0);
    const warnings = logs.records.filter((r) => r.level === WARN).map((r) => r.msg);
    expect(warnings.filter((w) => w.includes(wrongBytes))).toEqual([
      expect.stringMatching(new RegExp(`^sandbox file ${wrongBytes} is not imported .*: its bytes hash to ${sha(other)}$`)),
    ]);
    expect(warnings.filter((w) => w.includes(wrongSize))).toEqual([
      expect.stringMatching(/is not imported .*: it holds \d+ bytes, its row says \d+$/),
    ]);
    expect(logs.messages()).toContain(
      `imported 1 sandbox archive file(s) from ${join(dir, 'sandboxes')} into the database; 2 left on disk (see the warnings)`,
    );
    expect((await download(server, dir, sha(claimed))).status).toBe(404);
    expect((await download(server, dir, sha(good))).bytes.equals(good)).toBe(true);
  });

  it('two imports at once both succeed and write each archive once; a third finds nothing to do', async () => {
    const dir = await dataDir();
    const bodies = [
      ...Array.from({ length: 6 }, (_, i) => archive(1000 + i)),
      archive(Math.floor(1.5 * SANDBOX_CHUNK_BYTES)),
      archive(Math.floor(2.2 * SANDBOX_CHUNK_BYTES)),
    ];
    for (const body of bodies) await legacy(dir, body);
    const root = join(dir, 'sandboxes');
    const other = await ctx.open({ poolSize: 2 });

    const [one, two] = await Promise.all([importLegacySandboxes(ctx.handle, root, quiet), importLegacySandboxes(other, root, quiet)]);
    expect(one.imported + two.imported).toBe(bodies.length);
    expect([...one.mismatched, ...two.mismatched, one.failed, two.failed]).toEqual([0, 0]);

    for (const body of bodies) expect(await chunks(sha(body))).toBe(Math.ceil(body.length / SANDBOX_CHUNK_BYTES));
    expect(await readdir(root)).toEqual([]);
    expect(await importLegacySandboxes(ctx.handle, root, quiet)).toEqual({ found: 0, imported: 0, mismatched: [], failed: 0 });
  });

  it('files without a row, or whose row has its chunks, are left alone', async () => {
    const dir = await dataDir();
    const orphan = archive(500);
    const orphanFile = await putFile(dir, sha(orphan), orphan);
    const root = join(dir, 'sandboxes');
    expect(await importLegacySandboxes(ctx.handle, root, quiet)).toEqual({ found: 1, imported: 0, mismatched: [], failed: 0 });
    expect(Buffer.compare(await readFile(orphanFile), orphan)).toBe(0);

    const chunked = archive(600);
    await legacy(dir, chunked);
    expect((await importLegacySandboxes(ctx.handle, root, quiet)).imported).toBe(1);
    const again = await putFile(dir, sha(chunked), chunked);
    expect(await importLegacySandboxes(ctx.handle, root, quiet)).toEqual({ found: 2, imported: 0, mismatched: [], failed: 0 });
    expect(await chunks(sha(chunked))).toBe(1);
    expect(Buffer.compare(await readFile(again), chunked)).toBe(0);
  });
});
