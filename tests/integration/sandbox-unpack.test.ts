/**
 * Safe unpacking of sandboxes, in the pilot (pilot/sandbox.ts) and in the CLI
 * (cli/sandbox-unpack.ts), on real archives: archives made by tar from real files, and hostile
 * ones written header by header. Also the pilot's packing of OutputSandbox patterns.
 */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { create as tarCreate, Header } from 'tar';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { CliError } from '../../cli/errors.js';
import { unpackSandbox } from '../../cli/sandbox-unpack.js';
import { isArchiveError } from '../../core/archive-safety.js';
import { sha256File } from '../../io/file-hash.js';
import { packOutputs, safeUnpack } from '../../pilot/sandbox.js';

interface RawEntry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'FIFO' | 'CharacterDevice';
  linkpath?: string;
  body?: string | Buffer;
}

/** A tar.gz written header by header, so that it can hold what tar itself would never write. */
function rawTarGz(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const type = e.type ?? 'File';
    const header = new Header({
      path: e.path,
      type,
      size: type === 'File' ? body.length : 0,
      mode: type === 'Directory' ? 0o755 : 0o644,
      uid: 0,
      gid: 0,
      mtime: new Date(0),
      ...(e.linkpath !== undefined ? { linkpath: e.linkpath } : {}),
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (type === 'File' && body.length > 0) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

const root = mkdtempSync(join(tmpdir(), 'wms-unpack-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
let dir: string;
beforeEach(() => {
  dir = join(root, String(++n));
  mkdirSync(dir);
});

function writeArchive(name: string, entries: RawEntry[]): string {
  const file = join(dir, name);
  writeFileSync(file, rawTarGz(entries));
  return file;
}

const limits = { maxEntries: 100, maxBytes: 1_000_000 };

type Unpacker = (
  archive: string,
  dest: string,
  l?: { maxEntries: number; maxBytes: number },
) => Promise<{ entries: number; bytes: number }>;
const unpackers: [string, Unpacker][] = [
  ['pilot safeUnpack', (a, d, l = limits) => safeUnpack(a, d, l)],
  ['cli unpackSandbox', (a, d, l = limits) => unpackSandbox(a, d, { limits: l })],
];

/** The problems of a refused archive, from either unpacker's error. */
async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CliError) return [e.message, ...e.problems.map((x) => x.message)].join('\n');
    if (isArchiveError(e)) return e.message;
    throw e;
  }
  throw new Error('the archive was unpacked');
}

describe.each(unpackers)('%s', (_name, unpack) => {
  it('unpacks an archive made by tar: files, directories, a link inside', async () => {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'data/sub'), { recursive: true });
    writeFileSync(join(src, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    writeFileSync(join(src, 'data/sub/x.txt'), 'x');
    symlinkSync('data/sub/x.txt', join(src, 'x-link'));
    const archive = join(dir, 'good.tar.gz');
    await tarCreate({ gzip: true, cwd: src, file: archive, portable: true }, ['run.sh', 'data', 'x-link']);

    const dest = join(dir, 'dest');
    const r = await unpack(archive, dest);
    expect(r.entries).toBe(5);
    expect(readFileSync(join(dest, 'run.sh'), 'utf8')).toContain('echo hi');
    expect(lstatSync(join(dest, 'run.sh')).mode & 0o100).toBeTruthy();
    expect(readFileSync(join(dest, 'data/sub/x.txt'), 'utf8')).toBe('x');
    expect(readlinkSync(join(dest, 'x-link'))).toBe('data/sub/x.txt');
  });

  it('refuses ../x, absolute paths, escaping links, hard links and FIFOs, naming each, and writes nothing', async () => {
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    const archive = writeArchive('bad.tgz', [
      { path: 'fine.txt', body: 'fine' },
      { path: '../x', body: 'x' },
      { path: `${outside}/abs.txt`, body: 'abs' },
      { path: 'etc', type: 'SymbolicLink', linkpath: '../../etc' },
      { path: 'up', type: 'SymbolicLink', linkpath: '.' },
      { path: 'up/../y', body: 'y' },
      { path: 'h', type: 'Link', linkpath: '/etc/passwd' },
      { path: 'fifo', type: 'FIFO' },
    ]);
    const dest = join(dir, 'job');
    const text = await refusal(unpack(archive, dest));
    expect(text).toContain('bad.tgz');
    expect(text).toContain('path leaves the directory: ../x');
    expect(text).toContain(`absolute path ${outside}/abs.txt`);
    expect(text).toContain('link etc -> ../../etc escapes the directory');
    expect(text).toContain("path contains '..': up/../y");
    expect(text).toContain('hard link h => /etc/passwd points outside the directory');
    expect(text).toContain('device or fifo entry fifo');
    expect(existsSync(dest) ? readdirSync(dest) : []).toEqual([]);
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(join(dir, 'x'))).toBe(false);
  });

  it('refuses an entry written through a symbolic link of the same archive', async () => {
    const archive = writeArchive('through.tgz', [
      { path: 'out', type: 'SymbolicLink', linkpath: 'sub' },
      { path: 'out/file', body: 'x' },
    ]);
    const text = await refusal(unpack(archive, join(dir, 'job')));
    expect(text).toContain('path goes through the symbolic link out: out/file');
  });

  it('refuses an entry written through a symbolic link already in the destination', async () => {
    const outside = join(dir, 'outside');
    const dest = join(dir, 'job');
    mkdirSync(outside);
    mkdirSync(dest);
    symlinkSync(outside, join(dest, 'data'));
    const archive = writeArchive('disk.tgz', [{ path: 'data/evil', body: 'x' }]);
    const text = await refusal(unpack(archive, dest));
    expect(text).toContain('path goes through the symbolic link data already in the destination: data/evil');
    expect(readdirSync(outside)).toEqual([]);
  });

  it('refuses too many entries and too many bytes, extracting nothing', async () => {
    const many = writeArchive(
      'many.tgz',
      Array.from({ length: 30 }, (_, i) => ({ path: `f${i}`, body: 'x' })),
    );
    const dest = join(dir, 'job');
    const text = await refusal(unpack(many, dest, { maxEntries: 10, maxBytes: 1000 }));
    expect(text).toContain('more than 10 entries');
    expect(existsSync(dest) ? readdirSync(dest) : []).toEqual([]);

    const big = writeArchive('big.tgz', [
      { path: 'a', body: randomBytes(600) },
      { path: 'b', body: randomBytes(600) },
    ]);
    const text2 = await refusal(unpack(big, dest, { maxEntries: 10, maxBytes: 1000 }));
    expect(text2).toContain('more than 1000 bytes unpacked');
    expect(existsSync(dest) ? readdirSync(dest) : []).toEqual([]);
  });

  it('lists at most ten problems and counts the rest', async () => {
    const archive = writeArchive(
      'abs.tgz',
      Array.from({ length: 14 }, (_, i) => ({ path: `/tmp/wms-abs-${i}`, body: 'x' })),
    );
    const text = await refusal(unpack(archive, join(dir, 'job')));
    expect(text).toContain('/tmp/wms-abs-9');
    expect(text).not.toContain('/tmp/wms-abs-10');
    expect(text).toContain('and 4 more problems');
  });

  it('says when a file is not a tar archive', async () => {
    const file = join(dir, 'not.tgz');
    writeFileSync(file, 'this is not an archive');
    const text = await refusal(unpack(file, join(dir, 'job')));
    expect(text).toContain('not.tgz is not a readable tar archive');
  });

  it('unpacks a plain (not gzipped) tar too, counted the same way', async () => {
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'a.txt'), 'plain');
    const archive = join(dir, 'plain.tar');
    await tarCreate({ cwd: src, file: archive, portable: true }, ['a.txt']);
    const dest = join(dir, 'dest');
    expect(await unpack(archive, dest)).toEqual({ entries: 1, bytes: 5 });
    expect(readFileSync(join(dest, 'a.txt'), 'utf8')).toBe('plain');
  });

  it('a corrupt gzip stream or a truncated tar is unreadable, and nothing is written', async () => {
    const good = rawTarGz([{ path: 'a.txt', body: 'x'.repeat(5000) }]);
    const corrupt = join(dir, 'corrupt.tgz');
    writeFileSync(corrupt, Buffer.concat([good.subarray(0, 20), Buffer.alloc(200, 0xff), good.subarray(220)]));
    expect(await refusal(unpack(corrupt, join(dir, 'j1')))).toContain('corrupt.tgz is not a readable tar archive');
    const truncated = join(dir, 'truncated.tgz');
    writeFileSync(truncated, gzipSync(gunzipSync(good).subarray(0, 1024)));
    expect(await refusal(unpack(truncated, join(dir, 'j2')))).toContain('truncated.tgz is not a readable tar archive');
    expect(existsSync(join(dir, 'j1'))).toBe(false);
    expect(existsSync(join(dir, 'j2'))).toBe(false);
  });

  it('garbage after the end-of-archive marker is never parsed (counted only)', async () => {
    const tarBytes = gunzipSync(rawTarGz([{ path: 'a.txt', body: 'ok' }]));
    const archive = join(dir, 'trailing.tgz');
    writeFileSync(archive, gzipSync(Buffer.concat([tarBytes, randomBytes(4096)])));
    const dest = join(dir, 'dest');
    expect(await unpack(archive, dest)).toEqual({ entries: 1, bytes: 2 });
    expect(readdirSync(dest)).toEqual(['a.txt']);
  });
});

describe('packOutputs', () => {
  it('packs names and globs relative to the job dir, never leaving it', async () => {
    const job = join(dir, 'job');
    mkdirSync(join(job, 'results/deep'), { recursive: true });
    writeFileSync(join(job, 'std.out'), 'hello\n');
    writeFileSync(join(job, 'results/a.root'), 'a');
    writeFileSync(join(job, 'results/b.root'), 'b');
    writeFileSync(join(job, 'results/c.txt'), 'c');
    writeFileSync(join(job, 'results/deep/d.root'), 'd');
    writeFileSync(join(job, '.hidden.root'), 'h');
    symlinkSync('std.out', join(job, 'link-in'));
    symlinkSync('/etc/passwd', join(job, 'link-out'));
    const outsideDir = join(dir, 'outside');
    mkdirSync(outsideDir);
    writeFileSync(join(outsideDir, 'secret'), 's');
    symlinkSync(outsideDir, join(job, 'dirlink'));

    const out = join(dir, 'out.tar.gz');
    const packed = await packOutputs(
      job,
      ['std.out', 'results/*.root', '*.root', 'missing.txt', '../outside/secret', '/etc/passwd', 'link-*', 'dirlink/secret', 'LFN:/vo/x'],
      out,
    );
    expect(packed).not.toBeNull();
    expect(packed!.files).toEqual(['link-in', 'results/a.root', 'results/b.root', 'std.out']);
    expect(packed!.missing).toEqual([
      '*.root',
      'missing.txt',
      '../outside/secret',
      '/etc/passwd',
      'link-out -> /etc/passwd',
      'dirlink/secret',
      'LFN:/vo/x',
    ]);
    expect(packed!.sha256).toBe(await sha256File(out));
    expect(packed!.size).toBe(lstatSync(out).size);

    // The archive unpacks safely where the user asks for it.
    const dest = join(dir, 'dest');
    await unpackSandbox(out, dest);
    expect(readFileSync(join(dest, 'std.out'), 'utf8')).toBe('hello\n');
    expect(readlinkSync(join(dest, 'link-in'))).toBe('std.out');
    expect(readdirSync(join(dest, 'results')).sort()).toEqual(['a.root', 'b.root']);
  });

  it('packs a directory with what is in it', async () => {
    const job = join(dir, 'job');
    mkdirSync(join(job, 'out/sub'), { recursive: true });
    writeFileSync(join(job, 'out/sub/f'), 'f');
    const packed = await packOutputs(job, ['out'], join(dir, 'o.tgz'));
    expect(packed!.files).toEqual(['out/sub/f']);
    expect(packed!.missing).toEqual([]);
  });

  it('answers null when nothing matched', async () => {
    const job = join(dir, 'job');
    mkdirSync(job);
    expect(await packOutputs(job, ['nothing', '*.x'], join(dir, 'o.tgz'))).toBeNull();
    expect(existsSync(join(dir, 'o.tgz'))).toBe(false);
  });
});
