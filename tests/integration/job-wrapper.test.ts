/**
 * The job wrapper with real payload processes and an in-memory JobChannel that records every
 * call and serves sandboxes from a temporary directory.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { create as tarCreate, Header } from 'tar';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { MINOR, type JobState } from '../../core/job-states.js';
import type { Heartbeat, HeartbeatAnswer, JobCommand, JobStatusAnswer, JobStatusReport } from '../../core/pilot-protocol.js';
import { splitArguments, startJob, type JobChannel, type JobWrapperOptions } from '../../pilot/job-wrapper.js';
import { isAlive } from '../../pilot/process-tree.js';
import { safeUnpack } from '../../pilot/sandbox.js';

const root = mkdtempSync(join(tmpdir(), 'wms-wrapper-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Every file and directory under `dir`, relative, sorted. */
function listing(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, name.name);
      out.push(relative(dir, p));
      if (name.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

interface Recorded {
  report: JobStatusReport;
  /** What the job dir held when the report was sent. */
  jobDir: string[];
}

/** A JobChannel in memory: records reports and heartbeats, serves and stores sandboxes as files. */
class MemoryChannel implements JobChannel {
  readonly reports: Recorded[] = [];
  readonly heartbeats: Heartbeat[] = [];
  readonly uploads = new Map<string, string>();
  /** Commands answered with the next heartbeat. */
  pending: JobCommand[] = [];
  /** Status answered to heartbeats. */
  heartbeatStatus: JobState = 'Running';
  /** Answers a report differently (e.g. refuses it). */
  answer: (r: JobStatusReport) => JobStatusAnswer = (r) => ({ accepted: true, status: r.status });

  constructor(
    readonly store: string,
    readonly jobDir: string,
  ) {}

  async setStatus(report: JobStatusReport): Promise<JobStatusAnswer> {
    this.reports.push({ report, jobDir: listing(this.jobDir) });
    return this.answer(report);
  }

  async heartbeat(hb: Heartbeat): Promise<HeartbeatAnswer> {
    this.heartbeats.push(hb);
    return { status: this.heartbeatStatus, commands: this.pending.splice(0) };
  }

  async downloadSandbox(sha256: string, destFile: string): Promise<void> {
    await copyFile(join(this.store, sha256), destFile);
  }

  async uploadSandbox(file: string, sha256: string): Promise<void> {
    const data = await readFile(file);
    expect(createHash('sha256').update(data).digest('hex')).toBe(sha256);
    const stored = join(this.store, `up-${sha256}`);
    await writeFile(stored, data);
    this.uploads.set(sha256, stored);
  }

  /** Puts an archive in the store; answers its `SB:` reference. */
  async addSandbox(data: Buffer): Promise<string> {
    const sha = createHash('sha256').update(data).digest('hex');
    await writeFile(join(this.store, sha), data);
    return `SB:${sha}`;
  }

  steps(): string[] {
    return this.reports.map((r) => `${r.report.status}/${r.report.minorStatus}`);
  }

  last(): JobStatusReport {
    return (this.reports[this.reports.length - 1] as Recorded).report;
  }
}

function jdl(attrs: Record<string, string | number | string[]>): string {
  const q = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  const lines = Object.entries(attrs).map(([k, v]) => {
    const value = Array.isArray(v) ? `{ ${v.map(q).join(', ')} }` : typeof v === 'number' ? String(v) : q(v);
    return `  ${k} = ${value};`;
  });
  return `[\n${lines.join('\n')}\n]`;
}

/** A tar.gz written header by header, so that it can hold what tar itself would never write. */
function rawTarGz(entries: { path: string; type?: 'File' | 'SymbolicLink'; linkpath?: string; body?: string }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const type = e.type ?? 'File';
    const header = new Header({
      path: e.path,
      type,
      size: type === 'File' ? body.length : 0,
      mode: 0o644,
      mtime: new Date(0),
      ...(e.linkpath !== undefined ? { linkpath: e.linkpath } : {}),
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (body.length > 0) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

let n = 0;
let base: string;
let workDir: string;
let store: string;
const logs: string[] = [];
beforeEach(() => {
  base = join(root, String(++n));
  workDir = join(base, 'work');
  store = join(base, 'store');
  mkdirSync(workDir, { recursive: true });
  mkdirSync(store);
  logs.length = 0;
});

function options(extra: Partial<JobWrapperOptions> = {}): JobWrapperOptions {
  return {
    workDir,
    db12: 10,
    processors: 1,
    heartbeatMs: 200,
    pollMs: 50,
    sandboxLimits: { maxEntries: 100, maxBytes: 1_000_000 },
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    parameters: { HostName: 'wn-test', PilotStamp: 'stamp-1' },
    log: (line) => logs.push(line),
    killGraceMs: 2000,
    ...extra,
  };
}

function channelFor(jobId: number): MemoryChannel {
  return new MemoryChannel(store, join(workDir, String(jobId)));
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log:\n${logs.join('\n')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('splitArguments', () => {
  it.each([
    ['a b  c', ['a', 'b', 'c']],
    ["-c 'echo hello world' x", ['-c', 'echo hello world', 'x']],
    ['"a \\"b\\" c" d', ['a "b" c', 'd']],
    ["'' x", ['', 'x']],
    ['a\\ b', ['a b']],
    ["it's", ['its']],
    ['  ', []],
  ])('%j', (input, expected) => {
    expect(splitArguments(input)).toEqual(expected);
  });
});

describe('startJob', () => {
  it('runs hello world from its input sandbox to Done, outputs uploaded', async () => {
    const jobId = 101;
    const channel = channelFor(jobId);
    const src = join(base, 'src');
    mkdirSync(src);
    writeFileSync(
      join(src, 'run.sh'),
      '#!/bin/sh\necho "hello world"\necho "args: $# [$1] [$2]"\necho "env: $FOO $DIRACJOBID $WMS_JOB_ID"\necho warning >&2\necho 42 > result.json\n',
      { mode: 0o644 }, // not executable: the wrapper makes it so, as DIRAC does
    );
    const archive = join(base, 'in.tar.gz');
    await tarCreate({ gzip: true, cwd: src, file: archive, portable: true }, ['run.sh']);
    const sb = await channel.addSandbox(readFileSync(archive));

    const job = startJob(
      {
        jobId,
        jdl: jdl({
          Executable: 'run.sh',
          Arguments: "'one two' three",
          InputSandbox: [sb],
          OutputSandbox: ['std.out', 'std.err', 'result.json', 'missing.dat'],
          ExecutionEnvironment: ['FOO=bar'],
          CPUTime: 86400,
        }),
      },
      channel,
      options(),
    );
    const outcome = await job.done;

    expect(outcome).toMatchObject({ jobId, status: 'Done', exitCode: 0, reason: MINOR.executionComplete });
    expect(channel.steps()).toEqual([
      `Running/${MINOR.jobInitialization}`,
      `Running/${MINOR.downloadingInputSandbox}`,
      `Running/${MINOR.application}`,
      `Completing/${MINOR.applicationSuccess}`,
      `Completing/${MINOR.uploadingOutputSandbox}`,
      `Completing/${MINOR.outputSandboxUploaded}`,
      `Done/${MINOR.executionComplete}`,
    ]);
    expect(channel.reports[0]?.report.parameters).toMatchObject({ HostName: 'wn-test', PilotStamp: 'stamp-1', CPUNormalizationFactor: '10' });
    const final = channel.last().parameters ?? {};
    for (const p of ['TotalCPUTime(s)', 'WallClockTime(s)', 'MaxRSS(MB)', 'CPUNormalizationFactor', 'ExitCode', 'PayloadPID']) {
      expect(final[p], p).toBeDefined();
    }
    expect(final['ExitCode']).toBe('0');
    expect(final['OutputSandboxMissingFiles']).toBe('missing.dat');

    // The uploaded archive holds the outputs.
    expect(channel.uploads.size).toBe(1);
    const [sha, stored] = [...channel.uploads][0] as [string, string];
    expect(channel.reports[5]?.report.parameters?.['OutputSandbox']).toBe(`SB:${sha}`);
    const out = join(base, 'out');
    await safeUnpack(stored, out, { maxEntries: 10, maxBytes: 100_000 });
    expect(readdirSync(out).sort()).toEqual(['result.json', 'std.err', 'std.out']);
    expect(readFileSync(join(out, 'std.out'), 'utf8')).toBe(`hello world\nargs: 2 [one two] [three]\nenv: bar ${jobId} ${jobId}\n`);
    expect(readFileSync(join(out, 'std.err'), 'utf8')).toBe('warning\n');

    // The job dir and the temporary archives are gone.
    expect(readdirSync(workDir)).toEqual([]);
  });

  it('fails a payload that exits with 3, after uploading its outputs', async () => {
    const jobId = 102;
    const channel = channelFor(jobId);
    const job = startJob(
      { jobId, jdl: jdl({ Executable: '/bin/sh', Arguments: "-c 'echo bye; exit 3'", OutputSandbox: ['std.out'] }) },
      channel,
      options(),
    );
    const outcome = await job.done;
    expect(outcome).toMatchObject({ status: 'Failed', exitCode: 3 });
    expect(channel.steps()).toEqual([
      `Running/${MINOR.jobInitialization}`,
      `Running/${MINOR.application}`,
      `Completing/${MINOR.applicationErrors}`,
      `Completing/${MINOR.uploadingOutputSandbox}`,
      `Completing/${MINOR.outputSandboxUploaded}`,
      `Failed/${MINOR.applicationErrors}`,
    ]);
    expect(channel.last().applicationStatus).toBe('Exit code 3');
    expect(channel.last().parameters?.['ExitCode']).toBe('3');
    expect(channel.uploads.size).toBe(1);
    expect(readdirSync(workDir)).toEqual([]);
  });

  it('kills a sleeping payload and its children at once on a pushed Kill, and reports nothing more', async () => {
    const jobId = 103;
    const channel = channelFor(jobId);
    const job = startJob(
      {
        jobId,
        jdl: jdl({ Executable: '/bin/sh', Arguments: "-c 'echo $$ > pids; sleep 60 & echo $! >> pids; wait'", OutputSandbox: ['std.out'] }),
      },
      channel,
      options({ heartbeatMs: 60_000 }),
    );
    const pidsFile = join(workDir, String(jobId), 'pids');
    await until('the payload and its child', () => existsSync(pidsFile) && readFileSync(pidsFile, 'utf8').trim().split('\n').length === 2);
    const pids = readFileSync(pidsFile, 'utf8').trim().split('\n').map(Number);
    expect(pids.every(isAlive)).toBe(true);
    const reportsBefore = channel.reports.length;

    const t0 = performance.now();
    job.command({ jobId, command: 'Kill', arguments: 'by the test' });
    await until('the payload tree to die', () => !pids.some(isAlive), 5000);
    const latencyMs = performance.now() - t0;
    console.log(`kill latency (command -> payload and child gone): ${latencyMs.toFixed(1)} ms`);
    expect(latencyMs).toBeLessThan(2000);

    const outcome = await job.done;
    expect(outcome.status).toBe('Killed');
    expect(outcome.reason).toContain(MINOR.receivedKillSignal);
    expect(channel.reports.length).toBe(reportsBefore);
    expect(channel.uploads.size).toBe(0);
    expect(readdirSync(workDir)).toEqual([]);
  });

  it('kills the payload on a Kill carried by a heartbeat answer', async () => {
    const jobId = 104;
    const channel = channelFor(jobId);
    channel.pending.push({ jobId, command: 'Kill', arguments: '' });
    const started = Date.now();
    const job = startJob({ jobId, jdl: jdl({ Executable: '/bin/sleep', Arguments: '60' }) }, channel, options({ heartbeatMs: 100 }));
    const outcome = await job.done;
    expect(outcome.status).toBe('Killed');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(channel.heartbeats.length).toBeGreaterThanOrEqual(1);
    const hb = channel.heartbeats[0] as Heartbeat;
    expect(hb.wallSeconds).toBeGreaterThan(0);
    expect(hb.diskFreeMb).toBeGreaterThan(0);
    expect(typeof hb.loadAverage).toBe('number');
    expect(channel.steps().at(-1)).toBe(`Running/${MINOR.application}`);
    expect(readdirSync(workDir)).toEqual([]);
  });

  it('sends the last lines of stdout with heartbeats', async () => {
    const jobId = 105;
    const channel = channelFor(jobId);
    const job = startJob(
      { jobId, jdl: jdl({ Executable: '/bin/sh', Arguments: "-c 'for i in $(seq 1 30); do echo line $i; done; sleep 1'" }) },
      channel,
      options({ heartbeatMs: 300 }),
    );
    await job.done;
    const tail = channel.heartbeats.map((h) => h.stdoutTail).find((t) => t?.includes('line 30'));
    expect(tail).toBeDefined();
    const lines = (tail as string).split('\n');
    expect(lines).toHaveLength(20);
    expect(lines[0]).toBe('line 11');
  });

  it('fails a payload over the wall-clock limit', async () => {
    const jobId = 106;
    const channel = channelFor(jobId);
    const job = startJob(
      { jobId, jdl: jdl({ Executable: '/bin/sleep', Arguments: '60', OutputSandbox: ['std.out'] }) },
      channel,
      options({ wallClockLimitSeconds: 1 }),
    );
    const outcome = await job.done;
    expect(outcome.status).toBe('Failed');
    expect(outcome.wallSeconds).toBeGreaterThanOrEqual(1);
    expect(outcome.wallSeconds).toBeLessThan(10);
    expect(channel.last().status).toBe('Failed');
    expect(channel.last().minorStatus).toBe(MINOR.jobExceededWallClock);
    expect(channel.last().applicationStatus).toMatch(/wall-clock time .* over the limit of 1 s/);
    expect(channel.steps()).toContain(`Completing/${MINOR.jobExceededWallClock}`);
  });

  it('fails a payload over its CPU time (CPUTime / DB12 x processors, +20 %)', async () => {
    const jobId = 107;
    const channel = channelFor(jobId);
    // 100 DB12·s on a node doing 1000 per core: 0.12 s of CPU with the margin.
    const job = startJob({ jobId, jdl: jdl({ Executable: '/bin/sh', Arguments: "-c 'while :; do :; done'", CPUTime: 100 }) }, channel, options({ db12: 1000 }));
    const outcome = await job.done;
    expect(outcome.status).toBe('Failed');
    expect(outcome.cpuSeconds).toBeGreaterThan(0.12);
    expect(channel.last().minorStatus).toBe(MINOR.jobExceededCpu);
    expect(channel.last().applicationStatus).toMatch(/CPU time .* over the limit of 0\.1 s/);
  });

  describe('refuses a hostile input sandbox before anything runs', () => {
    const cases: [string, (outside: string) => Parameters<typeof rawTarGz>[0], string][] = [
      ['../x', () => [{ path: 'ok.txt', body: 'ok' }, { path: '../x', body: 'x' }], 'path leaves the directory: ../x'],
      ['an absolute path', (outside) => [{ path: `${outside}/abs.txt`, body: 'abs' }], 'absolute path '],
      ['an escaping symbolic link', () => [{ path: 'etc', type: 'SymbolicLink', linkpath: '../../../etc' }, { path: 'etc/passwd', body: 'x' }], 'link etc -> ../../../etc escapes the directory'],
    ];
    it.each(cases)('%s', async (_name, entries, problem) => {
      const jobId = 110 + n;
      const channel = channelFor(jobId);
      const outside = join(base, 'outside');
      mkdirSync(outside);
      const sb = await channel.addSandbox(rawTarGz(entries(outside)));
      const job = startJob({ jobId, jdl: jdl({ Executable: '/bin/touch', Arguments: 'ran', InputSandbox: [sb] }) }, channel, options());
      const outcome = await job.done;
      expect(outcome.status).toBe('Failed');
      expect(channel.steps()).toEqual([`Running/${MINOR.jobInitialization}`, `Running/${MINOR.downloadingInputSandbox}`, `Failed/${MINOR.failedDownloadingInputSandbox}`]);
      const failed = channel.reports[2] as Recorded;
      expect(failed.report.applicationStatus).toContain(`unsafe archive ${sb}`);
      expect(failed.report.applicationStatus).toContain(problem);
      // Nothing written inside the job dir (as it was when the failure was reported) nor outside.
      expect(failed.jobDir).toEqual([]);
      expect(readdirSync(outside)).toEqual([]);
      expect(existsSync(join(workDir, 'x'))).toBe(false);
      expect(existsSync(join(base, 'x'))).toBe(false);
      expect(readdirSync(workDir)).toEqual([]);
    });
  });

  it('refuses an input sandbox with too many entries', async () => {
    const jobId = 120;
    const channel = channelFor(jobId);
    const sb = await channel.addSandbox(rawTarGz(Array.from({ length: 20 }, (_, i) => ({ path: `f${i}`, body: randomBytes(8).toString('hex') }))));
    const job = startJob({ jobId, jdl: jdl({ Executable: '/bin/true', InputSandbox: [sb] }) }, channel, options({ sandboxLimits: { maxEntries: 5, maxBytes: 1_000_000 } }));
    const outcome = await job.done;
    expect(outcome.status).toBe('Failed');
    expect(channel.last().minorStatus).toBe(MINOR.failedDownloadingInputSandbox);
    expect(channel.last().applicationStatus).toContain('more than 5 entries');
    expect(channel.reports.at(-1)?.jobDir).toEqual([]);
  });

  it('fails an InputSandbox entry that is neither SB: nor downloadable, and LFNs', async () => {
    const channel = channelFor(121);
    const outcome = await startJob({ jobId: 121, jdl: jdl({ Executable: '/bin/true', InputSandbox: ['local.txt'] }) }, channel, options()).done;
    expect(outcome.status).toBe('Failed');
    expect(channel.last().applicationStatus).toContain('"local.txt" is not an uploaded sandbox');

    const lfn = channelFor(122);
    await startJob({ jobId: 122, jdl: jdl({ Executable: '/bin/true', InputSandbox: ['LFN:/vo/x.tgz'] }) }, lfn, options()).done;
    expect(lfn.last().minorStatus).toBe(MINOR.failedDownloadingInputSandboxLfn);
  });

  it('fails when the executable cannot be started', async () => {
    const jobId = 123;
    const channel = channelFor(jobId);
    const outcome = await startJob({ jobId, jdl: jdl({ Executable: '/nonexistent/prog' }) }, channel, options()).done;
    expect(outcome.status).toBe('Failed');
    expect(channel.last().minorStatus).toBe(MINOR.applicationNotFound);
    expect(channel.last().applicationStatus).toContain('/nonexistent/prog');
  });

  it('fails an illegal JDL (an output file outside the job dir)', async () => {
    const jobId = 124;
    const channel = channelFor(jobId);
    const outcome = await startJob({ jobId, jdl: jdl({ Executable: '/bin/true', StdOutput: '../../x' }) }, channel, options()).done;
    expect(outcome.status).toBe('Failed');
    expect(channel.steps()).toEqual([`Failed/${MINOR.illegalJobJdl}`]);
  });

  it('stops when the services refuse a report (the job was killed meanwhile): the payload never starts', async () => {
    const jobId = 125;
    const channel = channelFor(jobId);
    channel.answer = (r) => (r.minorStatus === MINOR.application ? { accepted: false, status: 'Killed' } : { accepted: true, status: r.status });
    const outcome = await startJob({ jobId, jdl: jdl({ Executable: '/bin/touch', Arguments: join(base, 'ran') }) }, channel, options()).done;
    expect(outcome.status).toBe('Killed');
    expect(existsSync(join(base, 'ran'))).toBe(false);
    expect(channel.steps().at(-1)).toBe(`Running/${MINOR.application}`);
  });

  it('stops as Lost when a heartbeat says the job is no longer running here', async () => {
    const jobId = 126;
    const channel = channelFor(jobId);
    channel.heartbeatStatus = 'Received';
    const outcome = await startJob({ jobId, jdl: jdl({ Executable: '/bin/sleep', Arguments: '60' }) }, channel, options({ heartbeatMs: 100 })).done;
    expect(outcome.status).toBe('Lost');
    expect(outcome.reason).toContain('Received');
  });

  it('creates missing directories for StdOutput and runs in the job dir', async () => {
    const jobId = 127;
    const channel = channelFor(jobId);
    await mkdir(join(workDir, String(jobId), 'stale'), { recursive: true }); // a previous life: removed first
    const outcome = await startJob(
      { jobId, jdl: jdl({ Executable: '/bin/sh', Arguments: "-c 'pwd; ls'", StdOutput: 'logs/out.txt', OutputSandbox: ['logs/*'] }) },
      channel,
      options(),
    ).done;
    expect(outcome.status).toBe('Done');
    const [, stored] = [...channel.uploads][0] as [string, string];
    const out = join(base, 'out');
    await safeUnpack(stored, out, { maxEntries: 10, maxBytes: 100_000 });
    const text = readFileSync(join(out, 'logs/out.txt'), 'utf8');
    expect(text.split('\n')[0]).toBe(join(workDir, String(jobId)));
    expect(text).not.toContain('stale');
  });
});
