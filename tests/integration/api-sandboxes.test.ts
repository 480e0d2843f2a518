/**
 * Sandboxes through `app.inject()`: upload and download (on disk on PGlite, in the database's
 * chunks on PostgreSQL), checksum mismatch and size limit (nothing left on disk or in the database), owner checks (several owners for identical bytes), job-token access
 * (through the job's sandbox links), and SB: references at submission.
 */
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, jdl, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

let t: TestApp;
let alice: string;
let bob: string;
let carol: string;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const archive = (text: string) => gzipSync(Buffer.from(text));

function put(token: string | null, hash: string, body: Buffer, type = 'application/octet-stream') {
  return t.call('PUT', `/api/sandboxes/${hash}`, token, body, { 'content-type': type });
}

/** Every file under the sandbox store (temporary files included), and every chunk stored in the database. */
async function filesOnDisk(): Promise<string[]> {
  const root = join(t.dataDir, 'sandboxes');
  const chunks = await t.db.query<{ sha256: string; seq: number }>('SELECT sha256, seq FROM sandbox_chunks ORDER BY 1, 2');
  const stored = chunks.map((c) => `chunk ${c.sha256} ${c.seq}`);
  try {
    const entries = await readdir(root, { recursive: true, withFileTypes: true });
    return [...entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? root, e.name)), ...stored];
  } catch {
    return stored;
  }
}

describeDb('sandboxes API', (ctx) => {
  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle, config: { sandboxMaxBytes: 64 * 1024 } });
    alice = await t.user('alice');
    bob = await t.user('bob');
    carol = await t.user('carol', 'vo2');
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('upload and download', () => {
    it('stores the archive (PGlite: under sandboxes/ab/abcdef...; PostgreSQL: in sandbox_chunks) and gives it back', async () => {
      const body = archive('hello sandbox');
      const hash = sha(body);
      const up = await put(alice, hash, body, 'application/gzip');
      expect(up.statusCode, up.body).toBe(201);
      expect(up.json()).toEqual({ sha256: hash, size: body.length, reference: `SB:${hash}` });
      const where = ctx.driver === 'pg' ? `chunk ${hash} 0` : join(t.dataDir, 'sandboxes', hash.slice(0, 2), hash);
      expect(await filesOnDisk()).toContain(where);

      const down = await t.call('GET', `/api/sandboxes/${hash}`, alice);
      expect(down.statusCode).toBe(200);
      expect(down.headers['content-type']).toBe('application/gzip');
      expect(Buffer.compare(down.rawPayload, body)).toBe(0);
    });

    it('uploading the same archive twice is fine', async () => {
      const body = archive('twice');
      expect((await put(alice, sha(body), body)).statusCode).toBe(201);
      expect((await put(alice, sha(body), body)).statusCode).toBe(201);
    });

    it('a checksum mismatch is 400 WMS_SANDBOX_CHECKSUM and leaves nothing on disk', async () => {
      const before = await filesOnDisk();
      const body = archive('some bytes');
      const wrong = sha(archive('other bytes'));
      const res = await put(alice, wrong, body);
      expect(res.statusCode).toBe(400);
      expect(res.json<{ code: string }>().code).toBe('WMS_SANDBOX_CHECKSUM');
      expect(await filesOnDisk()).toEqual(before);
      expect((await t.call('GET', `/api/sandboxes/${wrong}`, alice)).statusCode).toBe(404);
    });

    it('too large is 413 WMS_SANDBOX_TOO_LARGE and leaves nothing on disk', async () => {
      const before = await filesOnDisk();
      const { randomBytes } = await import('node:crypto');
      const body = gzipSync(randomBytes(128 * 1024), { level: 0 });
      const res = await put(alice, sha(body), body);
      expect(res.statusCode).toBe(413);
      expect(res.json<{ code: string }>().code).toBe('WMS_SANDBOX_TOO_LARGE');
      expect(await filesOnDisk()).toEqual(before);
    });

    it('too large without a Content-Length (streamed) is refused too', async () => {
      const { Readable } = await import('node:stream');
      const { randomBytes } = await import('node:crypto');
      const before = await filesOnDisk();
      const body = gzipSync(randomBytes(128 * 1024), { level: 0 });
      const res = await t.app.inject({
        method: 'PUT',
        url: `/api/sandboxes/${sha(body)}`,
        headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/octet-stream' },
        payload: Readable.from([body.subarray(0, 40_000), body.subarray(40_000)]),
      });
      expect(res.statusCode).toBe(413);
      expect(await filesOnDisk()).toEqual(before);
    });

    it('not gzip is refused', async () => {
      const body = Buffer.from('plain text, not an archive');
      const res = await put(alice, sha(body), body);
      expect(res.statusCode).toBe(400);
      expect(res.json<{ code: string }>().code).toBe('WMS_VALIDATION');
    });

    it('a name that is not a SHA-256 is a validation error', async () => {
      const res = await put(alice, 'abc', archive('x'));
      expect(res.statusCode).toBe(400);
      expect(res.json<{ code: string }>().code).toBe('WMS_VALIDATION');
    });

    it('a JSON body is refused', async () => {
      const body = archive('json?');
      const res = await t.call('PUT', `/api/sandboxes/${sha(body)}`, alice, { a: 1 });
      expect(res.statusCode).toBe(400);
      expect(res.json<{ message: string }>().message).toMatch(/application\/octet-stream/);
    });

    it('an unknown media type is 415', async () => {
      const body = archive('text?');
      const res = await put(alice, sha(body), body, 'text/x-weird');
      expect(res.statusCode).toBe(415);
    });

    it('no token: 401', async () => {
      const body = archive('anon');
      expect((await put(null, sha(body), body)).statusCode).toBe(401);
    });
  });

  describe('owner checks', () => {
    let hash: string;
    beforeAll(async () => {
      const body = archive("alice's inputs");
      hash = sha(body);
      expect((await put(alice, hash, body)).statusCode).toBe(201);
    });

    it("another user gets 404 for alice's sandbox", async () => {
      const res = await t.call('GET', `/api/sandboxes/${hash}`, bob);
      expect(res.statusCode).toBe(404);
      expect(res.json<{ code: string }>().code).toBe('WMS_SANDBOX_NOT_FOUND');
    });

    it('an admin may read it', async () => {
      expect((await t.call('GET', `/api/sandboxes/${hash}`, await t.admin())).statusCode).toBe(200);
    });

    it('a job referencing it (SB:) gets it assigned, and its job token may read it', async () => {
      const sub = await t.call('POST', '/api/jobs', alice, {
        jdl: `[\n  Executable = "run.sh";\n  InputSandbox = { "SB:${hash}", "LFN:/vo1/user/a/alice/x.dat" };\n]`,
      });
      expect(sub.statusCode, sub.body).toBe(201);
      const [jobId] = sub.json<{ jobIds: number[] }>().jobIds as [number];
      const rows = await t.db.query<{ kind: string }>('SELECT kind FROM job_sandboxes WHERE job_id = $1 AND sha256 = $2', [jobId, hash]);
      expect(rows.map((r) => r.kind)).toEqual(['Input']);

      const jobToken = await t.tokenFor({ role: 'job', user: 'alice', vo: 'vo1', group: 'vo1_user', jobId, pilotId: null });
      expect((await t.call('GET', `/api/sandboxes/${hash}`, jobToken)).statusCode).toBe(200);

      // A job token of a job that does not reference it: 404.
      const [otherJob] = (await (await t.call('POST', '/api/jobs', alice, { jdl: jdl() })).json<{ jobIds: number[] }>()).jobIds as [number];
      const otherToken = await t.tokenFor({ role: 'job', user: 'alice', vo: 'vo1', group: 'vo1_user', jobId: otherJob, pilotId: null });
      expect((await t.call('GET', `/api/sandboxes/${hash}`, otherToken)).statusCode).toBe(404);
    });

    it('a job token uploads outputs: owned by the job owner, assigned as Output', async () => {
      const [jobId] = (await (await t.call('POST', '/api/jobs', alice, { jdl: jdl() })).json<{ jobIds: number[] }>()).jobIds as [number];
      const jobToken = await t.tokenFor({ role: 'job', user: 'alice', vo: 'vo1', group: 'vo1_user', jobId, pilotId: null });
      const body = archive('outputs');
      expect((await put(jobToken, sha(body), body)).statusCode).toBe(201);
      const rows = await t.db.query<{ kind: string }>('SELECT kind FROM job_sandboxes WHERE job_id = $1', [jobId]);
      expect(rows.map((r) => r.kind)).toEqual(['Output']);
      expect((await t.call('GET', `/api/sandboxes/${sha(body)}`, alice)).statusCode).toBe(200);
    });

    it("submitting a job that references another user's or an unknown sandbox is refused, nothing stored", async () => {
      const { countJobs } = await import('../helpers/app.js');
      const before = await countJobs(t.db);
      for (const ref of [hash, 'f'.repeat(64)]) {
        const res = await t.call('POST', '/api/jobs', bob, {
          jdl: `[ Executable = "run.sh"; InputSandbox = { "SB:${ref}" }; ]`,
        });
        expect(res.statusCode).toBe(404);
        expect(res.json<{ code: string }>().code).toBe('WMS_SANDBOX_NOT_FOUND');
      }
      expect(await countJobs(t.db)).toBe(before);
    });
  });

  describe('several owners', () => {
    let hash: string;
    const submit = (token: string, ref: string) =>
      t.call('POST', '/api/jobs', token, { jdl: `[ Executable = "run.sh"; InputSandbox = { "SB:${ref}" }; ]` });
    const jobToken = (user: string, jobId: number, vo = 'vo1') =>
      t.tokenFor({ role: 'job', user, vo, group: `${vo}_user`, jobId, pilotId: null });

    beforeAll(async () => {
      const body = archive('identical inputs of alice and bob');
      hash = sha(body);
      expect((await put(alice, hash, body)).statusCode).toBe(201);
      expect((await put(bob, hash, body)).statusCode).toBe(201);
    });

    it('two users uploading identical bytes both own it: both download it, a third user gets 404', async () => {
      for (const who of [alice, bob]) {
        const res = await t.call('GET', `/api/sandboxes/${hash}`, who);
        expect(res.statusCode).toBe(200);
        expect(sha(res.rawPayload)).toBe(hash);
      }
      const res = await t.call('GET', `/api/sandboxes/${hash}`, carol);
      expect(res.statusCode).toBe(404);
      expect(res.json<{ code: string }>().code).toBe('WMS_SANDBOX_NOT_FOUND');
    });

    it('both may reference it in a submission; a third user may not', async () => {
      for (const who of [alice, bob]) {
        const res = await submit(who, hash);
        expect(res.statusCode, res.body).toBe(201);
      }
      const res = await submit(carol, hash);
      expect(res.statusCode).toBe(404);
      expect(res.json<{ code: string }>().code).toBe('WMS_SANDBOX_NOT_FOUND');
    });

    it("a job token reads the sandboxes its job uses (input or output), not another job's", async () => {
      const sub = await submit(bob, hash);
      expect(sub.statusCode, sub.body).toBe(201);
      const [bobJob] = sub.json<{ jobIds: number[] }>().jobIds as [number];
      expect((await t.call('GET', `/api/sandboxes/${hash}`, await jobToken('bob', bobJob))).statusCode).toBe(200);

      // A job of an owner of the sandbox that does not use it: 404.
      const [plainJob] = (await (await t.call('POST', '/api/jobs', bob, { jdl: jdl() })).json<{ jobIds: number[] }>()).jobIds as [number];
      const plainToken = await jobToken('bob', plainJob);
      expect((await t.call('GET', `/api/sandboxes/${hash}`, plainToken)).statusCode).toBe(404);

      // Once that job uploads the same bytes as its output, the link lets it read them.
      const body = archive('identical inputs of alice and bob');
      expect((await put(plainToken, hash, body)).statusCode).toBe(201);
      expect((await t.call('GET', `/api/sandboxes/${hash}`, plainToken)).statusCode).toBe(200);

      // Another user's job that does not use it: 404.
      const [carolJob] = (await (await t.call('POST', '/api/jobs', carol, { jdl: jdl() })).json<{ jobIds: number[] }>()).jobIds as [number];
      expect((await t.call('GET', `/api/sandboxes/${hash}`, await jobToken('carol', carolJob, 'vo2'))).statusCode).toBe(404);
    });

    it('the archive has one row and two owners', async () => {
      expect(await t.db.query('SELECT sha256 FROM sandboxes WHERE sha256 = $1', [hash])).toHaveLength(1);
      const owners = await t.db.query<{ owner: string }>('SELECT owner FROM sandbox_owners WHERE sha256 = $1 ORDER BY owner', [hash]);
      expect(owners.map((o) => o.owner)).toEqual(['alice', 'bob']);
    });
  });
});
