/**
 * The database sandbox store on a real PostgreSQL (`describePg`): two services on one database
 * read each other's sandboxes (upload through A, download through B, several chunks); bytes and
 * rows are written in one transaction (a failing record leaves nothing; identical bytes uploaded
 * through both at once are stored once, with both owners); a damaged chunk is never served (500
 * before any byte for a one-chunk archive, a destroyed stream for a longer one); an oversized
 * or refused upload leaves no rows and no temporary file; the job-cleaning agent's removal takes
 * the chunks with the rows. On PGlite the directory store is chosen.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createJobCleaningAgent } from '../../agents/job-cleaning.js';
import { AgentRunner } from '../../agents/runner.js';
import { DEFAULT_SERVICE_CONFIG } from '../../core/config.js';
import { openDb, recordSandbox, SANDBOX_CHUNK_BYTES } from '../../db/index.js';
import { DirectorySandboxStore, sandboxStoreFor } from '../../services/sandbox-store.js';
import { DatabaseSandboxStore } from '../../services/sandbox-store-pg.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { describePg } from '../helpers/db.js';
import { captureLogger } from '../helpers/logs.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** A gzip archive of `bytes` random bytes (stored, not compressed: about that size). */
const bigArchive = (bytes: number) => gzipSync(randomBytes(bytes), { level: 0 });
const MAX = 4 * SANDBOX_CHUNK_BYTES;

/** All of a stream's bytes, and the error that ended it (null when it ended well). */
async function drain(stream: Readable): Promise<{ bytes: Buffer; error: unknown }> {
  const parts: Buffer[] = [];
  try {
    for await (const part of stream) parts.push(part as Buffer);
    return { bytes: Buffer.concat(parts), error: null };
  } catch (e) {
    return { bytes: Buffer.concat(parts), error: e };
  }
}

describePg('sandboxes in PostgreSQL, read by every replica', (ctx) => {
  let a: TestApp;
  let b: TestApp;
  let aliceA: string;
  let aliceB: string;
  let bobB: string;

  const put = (t: TestApp, token: string, body: Buffer) =>
    t.call('PUT', `/api/sandboxes/${sha(body)}`, token, body, { 'content-type': 'application/gzip' });
  const get = (t: TestApp, token: string, hash: string) => t.call('GET', `/api/sandboxes/${hash}`, token);
  const count = async (table: 'sandboxes' | 'sandbox_chunks' | 'sandbox_owners', hash: string) =>
    (await ctx.handle.query<{ n: number }>(`select count(*)::int as n from ${table} where sha256 = $1`, [hash]))[0]?.n;
  /** Files under a service's sandbox directory (temporary files included). */
  const files = async (t: TestApp) =>
    (await readdir(join(t.dataDir, 'sandboxes'), { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile());

  beforeAll(async () => {
    a = await createTestApp({ db: ctx.handle, config: { sandboxMaxBytes: MAX } });
    b = await createTestApp({ db: await ctx.open(), config: { sandboxMaxBytes: MAX } });
    aliceA = await a.user('alice');
    aliceB = await b.user('alice');
    bobB = await b.user('bob');
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('PostgreSQL gets the database store', () => {
    expect(sandboxStoreFor(ctx.handle, a.config, null)).toBeInstanceOf(DatabaseSandboxStore);
  });

  it('an archive uploaded through A is downloaded through B: same bytes, chunks of at most 1 MiB, no file on either disk', async () => {
    const body = bigArchive(Math.floor(2.5 * SANDBOX_CHUNK_BYTES));
    const hash = sha(body);
    const up = await put(a, aliceA, body);
    expect(up.statusCode, up.body).toBe(201);
    expect(up.json()).toEqual({ sha256: hash, size: body.length, reference: `SB:${hash}` });

    const chunks = await ctx.handle.query<{ seq: number; n: number }>(
      'select seq, length(data)::int as n from sandbox_chunks where sha256 = $1 order by seq',
      [hash],
    );
    expect(chunks.map((c) => c.seq)).toEqual([0, 1, 2]);
    expect(chunks.every((c) => c.n <= SANDBOX_CHUNK_BYTES)).toBe(true);
    expect(chunks.reduce((s, c) => s + c.n, 0)).toBe(body.length);

    const down = await get(b, aliceB, hash);
    expect(down.statusCode).toBe(200);
    expect(down.headers['content-length']).toBe(String(body.length));
    expect(sha(down.rawPayload)).toBe(hash);
    expect(Buffer.compare(down.rawPayload, body)).toBe(0);
    expect(await files(a)).toEqual([]);
    expect(await files(b)).toEqual([]);
  });

  it('identical bytes uploaded through A and B at once: one archive, its chunks written once, two owners', async () => {
    const body = bigArchive(Math.floor(1.5 * SANDBOX_CHUNK_BYTES));
    const hash = sha(body);
    const [one, two] = await Promise.all([put(a, aliceA, body), put(b, bobB, body)]);
    expect([one.statusCode, two.statusCode]).toEqual([201, 201]);
    expect(await count('sandboxes', hash)).toBe(1);
    expect(await count('sandbox_chunks', hash)).toBe(2);
    expect(await count('sandbox_owners', hash)).toBe(2);
    expect(sha((await get(a, bobB, hash)).rawPayload)).toBe(hash);
  });

  it('bytes and rows are one transaction: a record that fails leaves no row, no chunk and no temporary file', async () => {
    const store = new DatabaseSandboxStore(ctx.handle, join(a.dataDir, 'sandboxes', 'tmp'), MAX, null);
    const body = bigArchive(SANDBOX_CHUNK_BYTES + 10);
    const hash = sha(body);
    const failing = async (db: Parameters<typeof recordSandbox>[0], stored: { sha256: string; size: number }) => {
      await recordSandbox(db, { ...stored, owner: 'alice', ownerGroup: 'vo1_user', vo: 'vo1' });
      throw new Error('the job link could not be written');
    };
    const { Readable } = await import('node:stream');
    await expect(store.put(hash, Readable.from([body]), failing)).rejects.toThrow(/job link/);
    expect(await count('sandboxes', hash)).toBe(0);
    expect(await count('sandbox_chunks', hash)).toBe(0);
    expect(await files(a)).toEqual([]);
    expect(await store.has(hash)).toBe(false);
    expect(await store.open(hash)).toBeNull();
  });

  describe('a damaged archive is never served', () => {
    it('one chunk changed in SQL: 500 naming the damage, not the bytes', async () => {
      const body = gzipSync(Buffer.from('small and about to be damaged'));
      const hash = sha(body);
      expect((await put(a, aliceA, body)).statusCode).toBe(201);
      expect((await get(b, aliceB, hash)).statusCode).toBe(200);
      await ctx.handle.query(`update sandbox_chunks set data = overlay(data placing '\\x00'::bytea from 12) where sha256 = $1`, [hash]);
      const res = await get(b, aliceB, hash);
      expect(res.statusCode).toBe(500);
      expect(res.headers['content-type']).toMatch(/json/);
      expect(res.json<{ code: string }>().code).toBe('WMS_INTERNAL');
    });

    it('a later chunk changed: the stream is destroyed before its last chunk, never ended with wrong bytes', async () => {
      const body = bigArchive(Math.floor(2.5 * SANDBOX_CHUNK_BYTES));
      const hash = sha(body);
      expect((await put(a, aliceA, body)).statusCode).toBe(201);
      await ctx.handle.query(
        `update sandbox_chunks set data = overlay(data placing '\\xff00ff'::bytea from 100) where sha256 = $1 and seq = 1`,
        [hash],
      );
      const store = sandboxStoreFor(ctx.handle, b.config, null);
      const archive = await store.open(hash);
      expect(archive?.size).toBe(body.length);
      const { bytes, error } = await drain(archive!.stream);
      expect(String(error)).toMatch(new RegExp(`sandbox ${hash} is damaged in the database \\(its bytes hash to [0-9a-f]{64}\\)`));
      expect(bytes.length).toBe(2 * SANDBOX_CHUNK_BYTES); // the first two chunks, not the last

      // Over HTTP: the response is cut off (destroyed), never completed.
      await expect(get(b, aliceB, hash)).rejects.toThrow(/response destroyed before completion/);
    });

    it('a missing chunk or a chunk cut short fails the same way', async () => {
      const body = bigArchive(Math.floor(1.5 * SANDBOX_CHUNK_BYTES));
      const hash = sha(body);
      expect((await put(a, aliceA, body)).statusCode).toBe(201);
      const store = sandboxStoreFor(ctx.handle, b.config, null);
      await ctx.handle.query(`update sandbox_chunks set data = substring(data from 1 for 1000) where sha256 = $1 and seq = 1`, [hash]);
      expect(String((await drain((await store.open(hash))!.stream)).error)).toMatch(/its chunks hold \d+ bytes, its row says \d+/);
      await ctx.handle.query(`delete from sandbox_chunks where sha256 = $1 and seq = 0`, [hash]);
      await expect(store.open(hash)).rejects.toThrow(/chunk 0 of 1 is missing/);
      expect((await get(b, aliceB, hash)).statusCode).toBe(500);
    });
  });

  describe('refusals leave nothing', () => {
    it('too large: 413 WMS_SANDBOX_TOO_LARGE as on disk, no row, no chunk, no temporary file', async () => {
      const body = bigArchive(MAX + 1);
      const hash = sha(body);
      const { Readable } = await import('node:stream');
      const res = await a.app.inject({
        method: 'PUT',
        url: `/api/sandboxes/${hash}`,
        headers: { authorization: `Bearer ${aliceA}`, 'content-type': 'application/octet-stream' },
        payload: Readable.from([body.subarray(0, SANDBOX_CHUNK_BYTES), body.subarray(SANDBOX_CHUNK_BYTES)]),
      });
      expect(res.statusCode).toBe(413);
      expect(res.json<{ code: string }>().code).toBe('WMS_SANDBOX_TOO_LARGE');
      expect(await count('sandboxes', hash)).toBe(0);
      expect(await count('sandbox_chunks', hash)).toBe(0);
      expect(await files(a)).toEqual([]);
    });

    it('an archive that expands too much: 400 WMS_VALIDATION, no row, no chunk', async () => {
      const body = gzipSync(Buffer.alloc(3 * SANDBOX_CHUNK_BYTES), { level: 9 });
      const hash = sha(body);
      const res = await put(b, bobB, body);
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json<{ code: string; message: string }>().message).toMatch(/^unsafe sandbox archive: it /);
      expect(await count('sandboxes', hash)).toBe(0);
      expect(await count('sandbox_chunks', hash)).toBe(0);
      expect(await files(b)).toEqual([]);
    });
  });

  describe('the job-cleaning agent', () => {
    beforeEach(() => ctx.truncate());

    it('removing an unused sandbox removes its chunks (the rows cascade), through the store the server wires', async () => {
      const body = bigArchive(SANDBOX_CHUNK_BYTES + 1);
      const hash = sha(body);
      const alice = await a.user('alice');
      expect((await put(a, alice, body)).statusCode).toBe(201);
      expect(await count('sandbox_chunks', hash)).toBe(2);
      await ctx.handle.query(`update sandboxes set created_at = now() - interval '1 day', last_access_at = now() - interval '1 day'`);

      const config = {
        ...DEFAULT_SERVICE_CONFIG,
        agentSettings: {
          ...DEFAULT_SERVICE_CONFIG.agentSettings,
          jobCleaning: { schedule: '0 * * * * *', retentionSeconds: 50, batchSize: 3 },
        },
      };
      const store = sandboxStoreFor(ctx.handle, { ...config, dataDir: a.dataDir }, null);
      const agent = createJobCleaningAgent({ removeSandboxFiles: (s) => store.remove(s) });
      const runner = new AgentRunner({ db: ctx.handle, config, agents: [agent], logger: captureLogger().logger });
      expect(await runner.runOnce('job-cleaning')).toEqual({ ran: true, outcome: '1 sandbox(es) removed' });
      expect(await count('sandboxes', hash)).toBe(0);
      expect(await count('sandbox_chunks', hash)).toBe(0);
      expect((await get(b, await b.admin(), hash)).statusCode).toBe(404);
    });
  });
});

describe('the store of PGlite', () => {
  it('is the directory store under <data-dir>/sandboxes', async () => {
    const db = await openDb('memory://');
    try {
      const store = sandboxStoreFor(db, { dataDir: '/nonexistent/wms', sandboxMaxBytes: 1024 }, null);
      expect(store).toBeInstanceOf(DirectorySandboxStore);
      expect((store as DirectorySandboxStore).root).toBe('/nonexistent/wms/sandboxes');
    } finally {
      await db.close();
    }
  });
});
