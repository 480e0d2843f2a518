/**
 * Issue 9, point 6: sandbox bombs. A 16-64 KiB input sandbox (a tar followed by zero padding)
 * pinned a pilot core for minutes and neither a Kill nor SIGTERM stopped the unpack: tar's
 * parser, once past the end-of-archive marker, buffers what follows by copying it again with
 * every chunk (quadratic: 16 MiB of padding took 20 s, 64 MiB minutes).
 *
 * Each bomb is built here, in memory: the padded tar of the issue (64 MiB of zeros, 65 KB),
 * a classic bomb (one entry declaring 10 GiB), a valid tar followed by 4 GiB of zero padding
 * (concatenated gzip members, 4 MB), a gzip of zeros with no tar in it, a gzip inside the gzip.
 * Then:
 * - the pilot's `safeUnpack` and the CLI's `unpackSandbox` refuse each within 2 s, naming why,
 *   and write nothing;
 * - an abort during the unpack of a slow (large, harmless) archive ends it within 2 s and
 *   nothing more is written afterwards;
 * - end to end through the job wrapper (`startJob`, a channel in memory), a Kill during the
 *   unpack ends the job within 2 s and leaves no files;
 * - the services measure each upload in a child process: bombs are refused (400, naming why,
 *   nothing stored), harmless archives are kept (their contents are judged where they are
 *   unpacked), a check over its time limit is killed (with prlimit's CPU limit and without),
 *   and the server's event loop keeps answering /api/health while a check runs. API level on
 *   PGlite and on PostgreSQL (`describeDb`).
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CliError } from '../../cli/errors.js';
import { unpackSandbox } from '../../cli/sandbox-unpack.js';
import { isArchiveError, type ArchiveLimits } from '../../core/archive-safety.js';
import type { Heartbeat, HeartbeatAnswer, JobStatusAnswer, JobStatusReport } from '../../core/pilot-protocol.js';
import { startJob, type JobChannel } from '../../pilot/job-wrapper.js';
import { safeUnpack } from '../../pilot/sandbox.js';
import { ArchiveChecker, findPrlimit } from '../../services/archive-check.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

const MiB = 1024 * 1024;

// ---- archives, block by block ----

interface RawEntry {
  path: string;
  /** Declared size (default: the body's). */
  size?: number;
  body?: Buffer;
}

/** Tar blocks for `entries` (header, body, padding), without the end-of-archive marker. */
function tarEntries(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = e.body ?? Buffer.alloc(0);
    const header = new Header({ path: e.path, type: 'File', size: e.size ?? body.length, mode: 0o644, mtime: new Date(0) });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (body.length > 0) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  return Buffer.concat(blocks);
}

/** A whole tar: entries, then the end-of-archive marker (two zero blocks). */
function tar(entries: RawEntry[]): Buffer {
  return Buffer.concat([tarEntries(entries), Buffer.alloc(1024)]);
}

const hello = (): RawEntry => ({ path: 'hello.txt', body: Buffer.from('hello\n') });

/** `mib` MiB of zeros as concatenated gzip members (1 KiB of gzip per MiB): gunzip reads them as one stream. */
function zeroMembers(mib: number): Buffer {
  const member = gzipSync(Buffer.alloc(MiB), { level: 9 });
  return Buffer.concat(Array.from({ length: mib }, () => member));
}

/** The padded tar: a valid tar.gz whose end is followed by `mib` MiB of zeros, one gzip stream. */
function paddedTar(mib: number): Buffer {
  return gzipSync(Buffer.concat([tar([hello()]), Buffer.alloc(mib * MiB)]), { level: 9 });
}

/** Harmless but slow to unpack: `n` files of 512 bytes in 100 directories. */
function manyFiles(n: number): Buffer {
  const body = Buffer.alloc(512, 'x');
  return gzipSync(tar(Array.from({ length: n }, (_, i) => ({ path: `d${i % 100}/f${i}.txt`, body }))));
}

/** The limits a pilot unpacks with by default (sandboxMaxBytes 100 MiB, 10,000 entries). */
const limits: ArchiveLimits = { maxEntries: 10_000, maxBytes: 100 * MiB };

const BOMBS: { name: string; data: () => Buffer; reason: RegExp }[] = [
  {
    name: "the issue's padded tar (64 MiB of zeros after the end, 65 KB)",
    data: () => paddedTar(64),
    reason: /expands beyond 200 times its size/,
  },
  { name: 'a 16 MiB padded tar (16 KB)', data: () => paddedTar(16), reason: /expands beyond 200 times its size/ },
  {
    name: 'a classic bomb: one entry of 10 GiB of zeros',
    data: () => Buffer.concat([gzipSync(tarEntries([{ path: 'bomb.dat', size: 10 * 1024 * MiB }])), zeroMembers(1024)]),
    reason: /more than 104857600 bytes unpacked/,
  },
  {
    name: 'a valid tar, then 4 GiB of zero padding (4 MB of gzip members)',
    data: () => Buffer.concat([gzipSync(tar([hello()])), zeroMembers(4096)]),
    reason: /expands to more than \d+ bytes/,
  },
  {
    name: 'a gzip of 64 MiB of zeros, no tar in it',
    data: () => gzipSync(Buffer.alloc(64 * MiB), { level: 9 }),
    reason: /expands beyond 200 times its size/,
  },
  { name: 'a gzip inside the gzip', data: () => gzipSync(gzipSync(tar([hello()]))), reason: /a gzip stream inside the gzip stream/ },
];

const root = await mkdtemp(join(tmpdir(), 'wms-bombs-'));
afterAll(() => rm(root, { recursive: true, force: true }));
let n = 0;
let dir: string;
beforeEach(async () => {
  dir = join(root, String(++n));
  await mkdir(dir);
});

async function write(name: string, data: Buffer): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, data);
  return file;
}

/** Files and directories under `d`, or 0 when it does not exist. */
function countFiles(d: string): number {
  return existsSync(d) ? readdirSync(d, { recursive: true }).length : 0;
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** How long `p` takes to settle, and its error (or null). */
async function timed(p: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const t0 = Date.now();
  try {
    await p;
    return { ms: Date.now() - t0, error: null };
  } catch (e) {
    return { ms: Date.now() - t0, error: e };
  }
}

describe('the pilot refuses sandbox bombs (safeUnpack)', () => {
  it.each(BOMBS)('$name: refused within 2 s, nothing written', async ({ data, reason }) => {
    const archive = await write('bomb.tar.gz', data());
    const dest = join(dir, 'job');
    const { ms, error } = await timed(safeUnpack(archive, dest, limits, 'SB:bomb'));
    expect(isArchiveError(error), String(error)).toBe(true);
    expect((error as Error).message).toMatch(reason);
    expect((error as Error).message).toContain('SB:bomb');
    expect(ms).toBeLessThan(2000);
    expect(countFiles(dest)).toBe(0);
  });

  it('the same padded tar below the ratio limit unpacks: the padding is counted, not refused for itself', async () => {
    // 200 KiB of zeros after the end: expands to less than the 1 MiB floor.
    const archive = await write('padded.tar.gz', gzipSync(Buffer.concat([tar([hello()]), Buffer.alloc(200 * 1024)])));
    const dest = join(dir, 'job');
    expect(await safeUnpack(archive, dest, limits)).toEqual({ entries: 1, bytes: 6 });
    expect(readdirSync(dest)).toEqual(['hello.txt']);
  });

  it("the limits are the caller's: a higher ratio lets the padded tar through, quickly", async () => {
    const archive = await write('padded.tar.gz', paddedTar(16));
    const { ms, error } = await timed(safeUnpack(archive, join(dir, 'job'), { ...limits, maxRatio: 2000 }));
    expect(error).toBeNull();
    expect(ms).toBeLessThan(2000); // nothing is handed to tar after its end-of-archive marker
  });

  it('a time limit stops a slow unpack with the reason', async () => {
    const archive = await write('many.tar.gz', manyFiles(20_000));
    const dest = join(dir, 'job');
    const { ms, error } = await timed(safeUnpack(archive, dest, { maxEntries: 50_000, maxBytes: 100 * MiB, maxSeconds: 0.5 }, 'SB:many'));
    expect((error as Error).message).toBe('unsafe archive SB:many: took longer than 0.5 s');
    expect(ms).toBeLessThan(2500);
  });
});

describe('an unpack is interrupted by its AbortSignal within 2 s', () => {
  it('abort during the extraction of a large harmless archive: rejects at once, nothing written after', async () => {
    const archive = await write('many.tar.gz', manyFiles(20_000));
    const dest = join(dir, 'job');
    const stop = new AbortController();
    const unpacking = timed(safeUnpack(archive, dest, { maxEntries: 50_000, maxBytes: 100 * MiB }, 'SB:many', stop.signal));
    await until('the extraction to start', () => countFiles(dest) > 0);
    const t0 = Date.now();
    stop.abort(new Error('Kill from the test'));
    const { error } = await unpacking;
    const ms = Date.now() - t0;
    expect(isArchiveError(error)).toBe(true);
    expect((error as Error).message).toBe('SB:many: unpacking interrupted (Kill from the test)');
    expect(ms).toBeLessThan(2000);
    const written = countFiles(dest);
    expect(written).toBeLessThan(20_100); // it did stop half-way
    await new Promise((r) => setTimeout(r, 500));
    expect(countFiles(dest)).toBe(written); // and tar wrote nothing more once it had returned
  });

  it('abort during the first pass (listing): nothing extracted', async () => {
    const archive = await write('bomb.tar.gz', Buffer.concat([gzipSync(tar([hello()])), zeroMembers(4096)]));
    const dest = join(dir, 'job');
    const stop = new AbortController();
    setTimeout(() => stop.abort(new Error('pilot stopping')), 20);
    const { ms, error } = await timed(
      safeUnpack(archive, dest, { maxEntries: 10, maxBytes: 16 * 1024 * MiB, maxRatio: 1e6 }, 'SB:x', stop.signal),
    );
    expect((error as Error).message).toBe('SB:x: unpacking interrupted (pilot stopping)');
    expect(ms).toBeLessThan(2000);
    expect(countFiles(dest)).toBe(0);
  });

  it('an already aborted signal unpacks nothing', async () => {
    const archive = await write('ok.tar.gz', gzipSync(tar([hello()])));
    const dest = join(dir, 'job');
    const { error } = await timed(safeUnpack(archive, dest, limits, 'SB:ok', AbortSignal.abort(new Error('gone'))));
    expect((error as Error).message).toBe('SB:ok: unpacking interrupted (gone)');
    expect(countFiles(dest)).toBe(0);
  });
});

/** A JobChannel in memory: serves one sandbox file, records reports. */
class Channel implements JobChannel {
  readonly reports: JobStatusReport[] = [];
  constructor(private readonly files: Map<string, string>) {}
  async setStatus(report: JobStatusReport): Promise<JobStatusAnswer> {
    this.reports.push(report);
    return { accepted: true, status: report.status };
  }
  async heartbeat(_hb: Heartbeat): Promise<HeartbeatAnswer> {
    return { status: 'Running', commands: [] };
  }
  async downloadSandbox(sha256: string, destFile: string): Promise<void> {
    await copyFile(this.files.get(sha256) as string, destFile);
  }
  async uploadSandbox(): Promise<void> {}
}

describe('the job wrapper: a Kill during the input sandbox unpack', () => {
  async function jobWith(data: Buffer, jobId: number) {
    const archive = await write('input.tar.gz', data);
    const sha = createHash('sha256').update(data).digest('hex');
    const workDir = join(dir, 'work');
    await mkdir(workDir);
    const channel = new Channel(new Map([[sha, archive]]));
    const log: string[] = [];
    const job = startJob({ jobId, jdl: `[ Executable = "/bin/true"; InputSandbox = { "SB:${sha}" }; ]` }, channel, {
      workDir,
      db12: 10,
      processors: 1,
      heartbeatMs: 200,
      pollMs: 50,
      sandboxLimits: { maxEntries: 50_000, maxBytes: 100 * MiB },
      env: {},
      parameters: {},
      log: (line) => log.push(line),
    });
    return { job, channel, workDir, jobDir: join(workDir, String(jobId)), log };
  }

  it('ends the job within 2 s, Killed, and leaves no files', async () => {
    const { job, channel, workDir, jobDir, log } = await jobWith(manyFiles(20_000), 7);
    await until('the unpack to start writing', () => countFiles(jobDir) > 0);
    const t0 = Date.now();
    job.command({ jobId: 7, command: 'Kill', arguments: 'by the user' });
    const outcome = await job.done;
    const ms = Date.now() - t0;
    expect(outcome.status, log.join('\n')).toBe('Killed');
    expect(ms).toBeLessThan(2000);
    expect(await readdir(workDir)).toEqual([]); // job dir and the downloaded archive are gone
    await new Promise((r) => setTimeout(r, 500));
    expect(await readdir(workDir)).toEqual([]);
    // Killed: the wrapper reports nothing after the unpack began (the server marked the job).
    expect(channel.reports.map((r) => r.minorStatus).at(-1)).toBe('Downloading InputSandbox');
  });

  it("the issue's padded tar: the job fails within 2 s, naming why, and leaves no files", async () => {
    const bomb = paddedTar(64);
    const t0 = Date.now();
    const { job, channel, workDir } = await jobWith(bomb, 8);
    const outcome = await job.done;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(outcome.status).toBe('Failed');
    const last = channel.reports.at(-1) as JobStatusReport;
    expect(last).toMatchObject({ status: 'Failed', minorStatus: 'Failed Downloading InputSandbox' });
    expect(last.applicationStatus).toMatch(/^unsafe archive SB:[0-9a-f]{64}: expands beyond 200 times its size/);
    expect(await readdir(workDir)).toEqual([]);
  });
});

describe('the CLI refuses bombs in output sandboxes (wms job output)', () => {
  it.each(BOMBS.slice(0, 4))('$name: refused within 2 s, nothing written', async ({ data, reason }) => {
    const archive = await write('out.tar.gz', data());
    const dest = join(dir, 'out');
    const { ms, error } = await timed(unpackSandbox(archive, dest, { limits, label: 'output sandbox of job 1' }));
    expect(error).toBeInstanceOf(CliError);
    const { message, problems } = error as CliError;
    expect([message, ...problems.map((p) => p.message)].join('\n')).toMatch(reason);
    expect((error as CliError).message).toContain('output sandbox of job 1');
    expect(ms).toBeLessThan(2000);
    expect(countFiles(dest)).toBe(0);
  });
});

describe('the services measure an archive in a child process', () => {
  /** Expands to `gib` GiB of real content: within generous limits, slow to read. */
  const slow = (gib: number) =>
    Buffer.concat([gzipSync(tarEntries([{ path: 'big.dat', size: gib * 1024 * MiB }])), zeroMembers(gib * 1024)]);
  const generous: ArchiveLimits = { maxEntries: 10, maxBytes: 64 * 1024 * MiB, maxRatio: 1e6, maxSeconds: 1 };

  it.each([
    ['with prlimit (CPU-time limit) and a wall clock', findPrlimit()],
    ['with the wall clock alone (no prlimit)', null],
  ])('%s: a check over its time is stopped, and the event loop is free meanwhile', async (_name, prlimit) => {
    const archive = await write('slow.tar.gz', slow(24));
    const checker = new ArchiveChecker(generous, { prlimit });
    let ticks = 0;
    let maxGap = 0;
    let last = Date.now();
    const timer = setInterval(() => {
      const now = Date.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 10);
    const t0 = Date.now();
    const verdict = await checker.check(archive).finally(() => clearInterval(timer));
    const ms = Date.now() - t0;
    expect(verdict.refused).toBe('took longer than 1 s');
    expect(ms).toBeGreaterThanOrEqual(1000);
    expect(ms).toBeLessThan(6000); // reading all 24 GiB takes far longer
    // The parent went on ticking the whole time (a check in this process would have held it).
    expect(ticks).toBeGreaterThan(5);
    expect(maxGap).toBeLessThan(1000);
  });

  it('answers the same reasons as the unpackers; accepts what is harmless, listing its content problems', async () => {
    const checker = new ArchiveChecker({ maxEntries: 10_000, maxBytes: 100 * MiB, maxSeconds: 30 });
    for (const bomb of BOMBS) {
      const verdict = await checker.check(await write('b.tar.gz', bomb.data()));
      expect(verdict.refused, bomb.name).toMatch(bomb.reason);
    }
    const fine = await checker.check(await write('ok.tar.gz', gzipSync(tar([hello()]))));
    expect(fine).toEqual({ refused: null, problems: [], entries: 1, expanded: 2048 });
    const escaping = await checker.check(await write('esc.tar.gz', gzipSync(tar([{ path: '../escape.txt', body: Buffer.from('x') }]))));
    expect(escaping.refused).toBeNull();
    expect(escaping.problems).toEqual(['path leaves the directory: ../escape.txt']);
    const notTar = await checker.check(await write('text.gz', gzipSync(Buffer.from('plain text'))));
    expect(notTar.refused).toBeNull();
    expect(notTar.problems[0]).toMatch(/^not a readable tar archive/);
  });

  it('more entries than the limit: the parent stops the child at the limit', async () => {
    const checker = new ArchiveChecker({ maxEntries: 100, maxBytes: 100 * MiB, maxSeconds: 30 });
    const verdict = await checker.check(await write('many.tar.gz', manyFiles(5000)));
    expect(verdict.refused).toBe('more than 100 entries');
    expect(verdict.entries).toBeLessThan(5000);
  });
});

describeDb('uploads of sandbox bombs', (ctx) => {
  let t: TestApp;
  let alice: string;
  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
    alice = await t.user('alice');
  });
  afterAll(async () => {
    await t?.close();
  });

  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const put = (body: Buffer) => t.call('PUT', `/api/sandboxes/${sha(body)}`, alice, body, { 'content-type': 'application/gzip' });

  /** Every file under the sandbox store, temporary files included, and every archive with chunks in the database (PostgreSQL). */
  async function stored(): Promise<string[]> {
    const entries = await readdir(join(t.dataDir, 'sandboxes'), { recursive: true, withFileTypes: true }).catch(() => []);
    const inDb = await t.db.query<{ sha256: string }>('SELECT DISTINCT sha256 FROM sandbox_chunks');
    return [...entries.filter((e) => e.isFile()).map((e) => e.name), ...inDb.map((r) => r.sha256)];
  }

  it.each(BOMBS)('$name: 400 naming why, nothing stored', async ({ data, reason }) => {
    const body = data();
    const res = await put(body);
    expect(res.statusCode, res.body).toBe(400);
    const err = res.json<{ code: string; message: string }>();
    expect(err.code).toBe('WMS_VALIDATION');
    expect(err.message).toMatch(/^unsafe sandbox archive: it /);
    expect(err.message).toMatch(reason);
    expect(res.body).not.toMatch(/\n\s+at /);
    expect(await stored()).toEqual([]);
    expect((await t.call('GET', `/api/sandboxes/${sha(body)}`, alice)).statusCode).toBe(404);
  });

  it('the server answers /api/health while an upload is being checked', async () => {
    const upload = put(paddedTar(64));
    let pending = true;
    void upload.finally(() => (pending = false));
    let answeredMeanwhile = 0;
    while (pending) {
      // A client polling every 20 ms (inject alone never leaves the microtask queue).
      await new Promise((r) => setTimeout(r, 20));
      const h = await t.call('GET', '/api/health', null);
      expect(h.statusCode).toBe(200);
      if (pending) answeredMeanwhile++;
    }
    expect((await upload).statusCode).toBe(400);
    expect(answeredMeanwhile).toBeGreaterThan(0);
  });

  it('harmless archives are kept: a real one, and one whose contents the unpackers will refuse', async () => {
    const ok = gzipSync(tar([hello()]));
    expect((await put(ok)).statusCode).toBe(201);
    // Paths are judged where the archive is unpacked (the pilot, `wms job output`), with the
    // destination at hand; the store only refuses what would cost its readers too much.
    const escaping = gzipSync(tar([{ path: '../escape.txt', body: Buffer.from('x') }]));
    expect((await put(escaping)).statusCode).toBe(201);
    expect((await stored()).sort()).toEqual([sha(ok), sha(escaping)].sort());
  });
});
