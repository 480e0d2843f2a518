/**
 * The job wrapper with real payload processes and an in-memory JobChannel that records every
 * call and serves sandboxes from a temporary directory.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { create as tarCreate, Header } from 'tar';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { MINOR, type JobState } from '../../core/job-states.js';
import type { Heartbeat, HeartbeatAnswer, JobCommand, JobStatusAnswer, JobStatusReport } from '../../core/pilot-protocol.js';
import { splitArguments, startJob, type JobChannel, type JobWrapperOptions } from '../../pilot/job-wrapper.js';
import { ISOLATION_UNAVAILABLE, resolvePayloadSandbox, SYSTEM_PATH } from '../../pilot/isolation.js';
import { isAlive } from '../../pilot/process-tree.js';
import { safeUnpack } from '../../pilot/sandbox.js';

const root = mkdtempSync(join(tmpdir(), 'wms-wrapper-test-'));
// A root pilot hands each job dir to the payload user, who must be able to pass through here
// (as through a pilot's work dir on a node: o+x, no listing).
chmodSync(root, 0o711);
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
    env: {},
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
    expect(channel.reports[0]?.report.parameters).toMatchObject({
      HostName: 'wn-test',
      PilotStamp: 'stamp-1',
      CPUNormalizationFactor: '10',
    });
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
      // Host pids written by the payload itself: no PID namespace here (bubblewrap below).
      options({ heartbeatMs: 60_000, isolation: { mode: 'none', hostPath: process.env['PATH'] ?? '' } }),
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
    const job = startJob(
      { jobId, jdl: jdl({ Executable: '/bin/sh', Arguments: "-c 'while :; do :; done'", CPUTime: 100 }) },
      channel,
      options({ db12: 1000 }),
    );
    const outcome = await job.done;
    expect(outcome.status).toBe('Failed');
    expect(outcome.cpuSeconds).toBeGreaterThan(0.12);
    expect(channel.last().minorStatus).toBe(MINOR.jobExceededCpu);
    expect(channel.last().applicationStatus).toMatch(/CPU time .* over the limit of 0\.1 s/);
  });

  describe('refuses a hostile input sandbox before anything runs', () => {
    const cases: [string, (outside: string) => Parameters<typeof rawTarGz>[0], string][] = [
      [
        '../x',
        () => [
          { path: 'ok.txt', body: 'ok' },
          { path: '../x', body: 'x' },
        ],
        'path leaves the directory: ../x',
      ],
      ['an absolute path', (outside) => [{ path: `${outside}/abs.txt`, body: 'abs' }], 'absolute path '],
      [
        'an escaping symbolic link',
        () => [
          { path: 'etc', type: 'SymbolicLink', linkpath: '../../../etc' },
          { path: 'etc/passwd', body: 'x' },
        ],
        'link etc -> ../../../etc escapes the directory',
      ],
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
      expect(channel.steps()).toEqual([
        `Running/${MINOR.jobInitialization}`,
        `Running/${MINOR.downloadingInputSandbox}`,
        `Failed/${MINOR.failedDownloadingInputSandbox}`,
      ]);
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
    const sb = await channel.addSandbox(
      rawTarGz(Array.from({ length: 20 }, (_, i) => ({ path: `f${i}`, body: randomBytes(8).toString('hex') }))),
    );
    const job = startJob(
      { jobId, jdl: jdl({ Executable: '/bin/true', InputSandbox: [sb] }) },
      channel,
      options({ sandboxLimits: { maxEntries: 5, maxBytes: 1_000_000 } }),
    );
    const outcome = await job.done;
    expect(outcome.status).toBe('Failed');
    expect(channel.last().minorStatus).toBe(MINOR.failedDownloadingInputSandbox);
    expect(channel.last().applicationStatus).toContain('more than 5 entries');
    expect(channel.reports.at(-1)?.jobDir).toEqual([]);
  });

  it('fails an InputSandbox entry that is neither SB: nor downloadable, and LFNs', async () => {
    const channel = channelFor(121);
    const outcome = await startJob({ jobId: 121, jdl: jdl({ Executable: '/bin/true', InputSandbox: ['local.txt'] }) }, channel, options())
      .done;
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
    channel.answer = (r) =>
      r.minorStatus === MINOR.application ? { accepted: false, status: 'Killed' } : { accepted: true, status: r.status };
    const outcome = await startJob({ jobId, jdl: jdl({ Executable: '/bin/touch', Arguments: join(base, 'ran') }) }, channel, options())
      .done;
    expect(outcome.status).toBe('Killed');
    expect(existsSync(join(base, 'ran'))).toBe(false);
    expect(channel.steps().at(-1)).toBe(`Running/${MINOR.application}`);
  });

  it('stops as Lost when a heartbeat says the job is no longer running here', async () => {
    const jobId = 126;
    const channel = channelFor(jobId);
    channel.heartbeatStatus = 'Received';
    const outcome = await startJob(
      { jobId, jdl: jdl({ Executable: '/bin/sleep', Arguments: '60' }) },
      channel,
      options({ heartbeatMs: 100 }),
    ).done;
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

/** Live host processes whose command line holds `marker`. */
function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'latin1').split('\0').join(' ').includes(marker)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out.filter(isAlive);
}

const isRoot = process.getuid?.() === 0;
const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
if (!hasBwrap && process.env['CI']) throw new Error('bubblewrap is missing (scripts/test-env.sh installs it) and CI is set');

describe('payload isolation', () => {
  /** Runs `script` (sh) as the payload of a job that uploads `outputs`; answers the outcome and the files. */
  async function runScript(jobId: number, script: string, extra: Partial<JobWrapperOptions> = {}, job: { token?: string } = {}) {
    const channel = channelFor(jobId);
    const src = join(base, `src-${jobId}`);
    mkdirSync(src);
    writeFileSync(join(src, 'payload.sh'), script);
    const archive = join(base, `in-${jobId}.tar.gz`);
    await tarCreate({ gzip: true, cwd: src, file: archive, portable: true }, ['payload.sh']);
    const sb = await channel.addSandbox(readFileSync(archive));
    const handle = startJob(
      {
        jobId,
        jdl: jdl({ Executable: '/bin/sh', Arguments: 'payload.sh', InputSandbox: [sb], OutputSandbox: ['std.out', 'std.err'] }),
        ...job,
      },
      channel,
      options(extra),
    );
    const outcome = await handle.done;
    const files: Record<string, string> = {};
    const stored = [...channel.uploads.values()][0];
    if (stored) {
      const out = join(base, `out-${jobId}`);
      await safeUnpack(stored, out, { maxEntries: 10, maxBytes: 1_000_000 });
      for (const f of readdirSync(out)) files[f] = readFileSync(join(out, f), 'utf8');
    }
    return { outcome, files, channel };
  }

  it.runIf(hasBwrap)('bwrap: own PID namespace, only the job dir and the system visible, a scrubbed environment', async () => {
    const secret = join(base, 'pilot-secret');
    writeFileSync(secret, 'TOPSECRET-PILOT', { mode: 0o600 });
    process.env['WMS_TEST_PILOT_SECRET'] = 'TOPSECRET-ENV';
    try {
      const { outcome, files } = await runScript(
        201,
        [
          'echo "uid=$(id -u)"',
          'echo "pids=$(ls /proc | grep -c "^[0-9]")"',
          'echo "pwd=$(pwd) home=$HOME"',
          `cat ${secret} 2>&1 || true`,
          `ls ${workDir} 2>&1 || true`,
          'ls / | tr "\\n" " "; echo',
          'for d in /root /home /work /var /run; do [ -e "$d" ] && echo "visible $d"; done',
          'echo "tmp-entries=$(ls -A /tmp | tr "\n" " ")"',
          'echo ok > written && echo "write ok"',
          'env | sort',
        ].join('\n'),
        {},
        { token: 'job-token-201' },
      );
      expect(outcome.status, logs.join('\n')).toBe('Done');
      const out = files['std.out'] ?? '';
      expect(out).toContain(`uid=${isRoot ? 65534 : process.getuid?.()}`);
      expect(Number(/pids=(\d+)/.exec(out)?.[1])).toBeLessThanOrEqual(6);
      expect(out).toContain(`pwd=${join(workDir, '201')} home=${join(workDir, '201')}`);
      expect(out).not.toContain('TOPSECRET');
      expect(out).not.toContain('visible ');
      // /tmp is the sandbox's own: empty but for the path down to the job dir when that is under /tmp.
      const tmpTop = workDir.startsWith('/tmp/') ? `${workDir.split('/')[2]} ` : '';
      expect(out).toContain(`tmp-entries=${tmpTop}\n`);
      expect(out).toContain('write ok');
      // The pilot's work dir is an empty directory above the job's: passable but not listable when
      // the payload is another user (root pilot), holding the job dir alone otherwise.
      expect(out).toMatch(isRoot ? new RegExp(`^ls: cannot open directory '${workDir}': Permission denied$`, 'm') : /^201$/m);
      const env = Object.fromEntries(
        out
          .split('\n')
          .filter((l) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(l) && !/^(uid|pids|pwd|tmp-entries)=/.test(l))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      expect(env).toMatchObject({
        PATH: SYSTEM_PATH,
        HOME: join(workDir, '201'),
        TMPDIR: '/tmp',
        DIRACJOBID: '201',
        WMS_JOB_ID: '201',
        WMS_JOB_TOKEN: 'job-token-201',
      });
      const allowed = new Set([
        'PATH',
        'HOME',
        'TMPDIR',
        'USER',
        'LOGNAME',
        'DIRACJOBID',
        'WMS_JOB_ID',
        'DIRAC_JOB_PROCESSORS',
        'WMS_JOB_TOKEN',
        'PWD',
        'SHLVL',
        '_',
        'OLDPWD',
      ]);
      expect(Object.keys(env).filter((k) => !allowed.has(k))).toEqual([]);
    } finally {
      delete process.env['WMS_TEST_PILOT_SECRET'];
    }
  });

  it.runIf(hasBwrap)('bwrap: a Kill takes the whole sandboxed tree at once, double-forked daemons included', async () => {
    const jobId = 202;
    const marker = `98765${jobId}`;
    const channel = channelFor(jobId);
    const job = startJob(
      {
        jobId,
        jdl: jdl({ Executable: '/bin/sh', Arguments: `-c 'sleep ${marker}.1 & (setsid sleep ${marker}.2 &) ; echo started; wait'` }),
      },
      channel,
      options({ heartbeatMs: 60_000 }),
    );
    const sleeps = () => processesWith(`${marker}.`).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('sleep'));
    await until('the sandboxed sleeps', () => sleeps().length >= 2);
    const pids = processesWith(`${marker}.`);
    const t0 = performance.now();
    job.command({ jobId, command: 'Kill', arguments: 'by the test' });
    await until('the sandboxed tree to die', () => processesWith(`${marker}.`).length === 0, 2000);
    console.log(`bwrap kill latency: ${(performance.now() - t0).toFixed(1)} ms for ${pids.length} processes`);
    expect((await job.done).status).toBe('Killed');
    expect(pids.some(isAlive)).toBe(false);
  });

  it.runIf(hasBwrap)('bwrap: the sandbox dies with its parent (SIGKILL of the pilot takes the payload along)', async () => {
    const jobDir = join(workDir, '203');
    mkdirSync(jobDir, { recursive: true });
    const sandbox = await resolvePayloadSandbox({ mode: 'bwrap' });
    await sandbox.prepare(workDir, jobDir);
    const marker = '8765203';
    const cmd = sandbox.command('/bin/sleep', [`${marker}.5`], jobDir, { PATH: SYSTEM_PATH });
    // A stand-in pilot: a shell that starts the sandbox as the job wrapper does, then is SIGKILLed.
    const q = (x: string) => `'${x.replaceAll("'", `'\\''`)}'`;
    const parent = spawn('/bin/sh', ['-c', `${[cmd.file, ...cmd.args].map(q).join(' ')} & wait`], {
      cwd: jobDir,
      env: cmd.env,
      stdio: 'ignore',
      ...(cmd.uid !== undefined ? { uid: cmd.uid, gid: cmd.gid as number } : {}),
    });
    await until('the sandboxed sleep', () =>
      processesWith(`${marker}.5`).some((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('/bin/sleep')),
    );
    const pids = processesWith(`${marker}.5`);
    parent.kill('SIGKILL');
    await until('the sandbox to die with its parent', () => !pids.some(isAlive), 2000);
  });

  const hasSetpriv = existsSync('/usr/bin/setpriv') || existsSync('/bin/setpriv');

  it.runIf(hasSetpriv)('none: the payload starts under setpriv --pdeathsig KILL and dies with its parent (a SIGKILLed pilot)', async () => {
    const jobDir = join(workDir, '230');
    mkdirSync(jobDir, { recursive: true });
    const sandbox = await resolvePayloadSandbox({ mode: 'none', hostPath: SYSTEM_PATH });
    const marker = '8765230';
    const cmd = sandbox.command('/bin/sleep', [`${marker}.5`], jobDir, { PATH: SYSTEM_PATH });
    expect(cmd.args.slice(0, 3)).toEqual(['--pdeathsig', 'KILL', '--']);
    // A stand-in pilot: a shell that starts the payload as the job wrapper does, then is SIGKILLed.
    const q = (x: string) => `'${x.replaceAll("'", `'\\''`)}'`;
    const parent = spawn('/bin/sh', ['-c', `${[cmd.file, ...cmd.args].map(q).join(' ')} & wait`], {
      cwd: jobDir,
      env: cmd.env,
      stdio: 'ignore',
    });
    await until('the payload', () =>
      processesWith(`${marker}.5`).some((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('/bin/sleep')),
    );
    const pids = processesWith(`${marker}.5`);
    parent.kill('SIGKILL');
    await until('the payload to die with its parent', () => !pids.some(isAlive), 2000);
  });

  it.runIf(hasSetpriv)('none: a missing executable is still "Application not found" under setpriv', async () => {
    const channel = channelFor(231);
    const outcome = await startJob(
      { jobId: 231, jdl: jdl({ Executable: 'no-such-program-231' }) },
      channel,
      options({ isolation: { mode: 'none' } }),
    ).done;
    expect(outcome.status).toBe('Failed');
    expect(channel.last().minorStatus).toBe(MINOR.applicationNotFound);
  });

  it("the running payload's session is registered in <work dir>/payload-sessions until its tree is gone", async () => {
    const channel = channelFor(232);
    const registry = join(workDir, 'payload-sessions');
    const job = startJob(
      { jobId: 232, jdl: jdl({ Executable: '/bin/sleep', Arguments: '1.5' }) },
      channel,
      options({ isolation: { mode: 'none' } }),
    );
    await until('the payload registered', () => existsSync(registry) && readFileSync(registry, 'utf8').trim() !== '');
    const sid = Number(readFileSync(registry, 'utf8').trim());
    expect(isAlive(sid)).toBe(true);
    // Registered as soon as spawn returns: its command line may read empty while it still execs.
    await until('the payload exec', () => readFileSync(`/proc/${sid}/cmdline`, 'latin1').includes('sleep'));
    expect((await job.done).status).toBe('Done');
    expect(existsSync(registry)).toBe(false);
    expect(readdirSync(workDir)).toEqual([]);
  });

  it.runIf(hasBwrap)(
    "bwrap: the job's environment reaches the payload only, never bubblewrap or setpriv (outside the sandbox, or root)",
    async () => {
      const jobId = 215;
      const marker = `76543${jobId}`;
      const channel = channelFor(jobId);
      const job = startJob(
        {
          jobId,
          jdl: jdl({
            Executable: '/bin/sh',
            Arguments: `-c 'echo "preload=$LD_PRELOAD gconv=$GCONV_PATH token=$WMS_JOB_TOKEN"; exec sleep 2.${marker}'`,
            ExecutionEnvironment: ['LD_PRELOAD=./no-such.so', 'GCONV_PATH=.'],
            OutputSandbox: ['std.out'],
          }),
          token: 'job-token-215',
        },
        channel,
        options({ heartbeatMs: 60_000 }),
      );
      const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ');
      // The payload itself, not only a command line that names it: until sleep runs, the bash hop
      // inside the sandbox (the payload's user, PATH and bubblewrap's PWD) may still be reading fd 3.
      await until('the sandboxed sleep', () => processesWith(`sleep 2.${marker}`).some((pid) => cmdline(pid).startsWith('sleep ')));
      // bubblewrap's processes (the command line names the payload's), as the host sees them.
      const outside = processesWith(marker).filter((pid) => !/^(sleep|\/bin\/sh) /.test(cmdline(pid)));
      expect(outside.length).toBeGreaterThan(0);
      for (const pid of outside) expect(readFileSync(`/proc/${pid}/environ`, 'latin1')).toBe(`PATH=${SYSTEM_PATH}\0`);
      expect((await job.done).status, logs.join('\n')).toBe('Done');
      const out = join(base, `out-${jobId}`);
      await safeUnpack([...channel.uploads.values()][0] as string, out, { maxEntries: 10, maxBytes: 100_000 });
      expect(readFileSync(join(out, 'std.out'), 'utf8')).toBe('preload=./no-such.so gconv=. token=job-token-215\n');
    },
  );

  it.runIf(hasBwrap)(
    'bwrap: a payload that replaces std.out with a link gets nothing of the target into heartbeats or outputs',
    async () => {
      const secret = join(base, 'linked-secret');
      writeFileSync(secret, 'TOPSECRET-LINKED\n', { mode: 0o600 });
      const { outcome, channel, files } = await runScript(
        204,
        [`echo first line`, `rm -f std.out; ln -s ${secret} std.out`, 'sleep 1'].join('\n'),
        { heartbeatMs: 150 },
      );
      expect(outcome.status).toBe('Done');
      expect(channel.heartbeats.length).toBeGreaterThan(2);
      expect(channel.heartbeats.map((h) => h.stdoutTail ?? '').join('\n')).not.toContain('TOPSECRET');
      expect(channel.heartbeats.map((h) => h.stdoutTail ?? '').join('\n')).toContain('first line');
      expect(Object.values(files).join('\n')).not.toContain('TOPSECRET');
    },
  );

  it.runIf(hasBwrap)('bwrap: an executable outside the sandbox is "Application not found", with the reason', async () => {
    const outside = join(base, 'tool.sh');
    writeFileSync(outside, '#!/bin/sh\necho ran\n', { mode: 0o755 });
    const channel = channelFor(205);
    const outcome = await startJob({ jobId: 205, jdl: jdl({ Executable: outside }) }, channel, options()).done;
    expect(outcome.status).toBe('Failed');
    expect(channel.last().minorStatus).toBe(MINOR.applicationNotFound);
    expect(channel.last().applicationStatus).toContain('is outside the payload sandbox');
    const missing = channelFor(206);
    await startJob({ jobId: 206, jdl: jdl({ Executable: 'no-such-program-xyz' }) }, missing, options()).done;
    expect(missing.last().minorStatus).toBe(MINOR.applicationNotFound);
    expect(missing.last().applicationStatus).toContain("not found on the payload's PATH");
  });

  it.runIf(isRoot)('user: as root, the payload runs as nobody, cannot read a 0600 file of root, and dies with a Kill', async () => {
    const secret = join(base, 'root-secret');
    writeFileSync(secret, 'TOPSECRET-ROOT', { mode: 0o600 });
    const { outcome, files } = await runScript(
      207,
      [
        'echo "uid=$(id -u) gid=$(id -g)"',
        `cat ${secret} 2>&1 || echo "refused"`,
        `touch ${join(workDir, 'x')} 2>&1 || echo "no write"`,
        'touch mine && echo "own dir ok"',
      ].join('\n'),
      {
        isolation: { mode: 'user' },
      },
    );
    expect(outcome.status, logs.join('\n')).toBe('Done');
    const out = files['std.out'] ?? '';
    expect(out).toContain('uid=65534 gid=65534');
    expect(out).not.toContain('TOPSECRET');
    expect(out).toContain('refused');
    expect(out).toContain('no write');
    expect(out).toContain('own dir ok');

    const jobId = 208;
    const marker = `87654${jobId}`;
    const channel = channelFor(jobId);
    const job = startJob(
      { jobId, jdl: jdl({ Executable: '/bin/sh', Arguments: `-c 'sleep ${marker}.1 & wait'` }) },
      channel,
      options({ heartbeatMs: 60_000, isolation: { mode: 'user' } }),
    );
    await until('the payload as nobody', () => processesWith(`sleep ${marker}.1`).length >= 1);
    const pids = processesWith(`sleep ${marker}.1`);
    expect(pids.map((pid) => statSync(`/proc/${pid}`).uid)).toEqual(pids.map(() => 65534));
    job.command({ jobId, command: 'Kill', arguments: 'by the test' });
    await until('the payload to die', () => !pids.some(isAlive), 2000);
    expect((await job.done).status).toBe('Killed');
  });

  it.runIf(isRoot)('auto: as root without bubblewrap, falls back to a separate user', async () => {
    const { outcome, files } = await runScript(209, 'id -u', { isolation: { mode: 'auto', bwrapPath: '/nonexistent/bwrap' } });
    expect(outcome.status).toBe('Done');
    expect(files['std.out']).toBe('65534\n');
    expect(logs.join('\n')).toContain('payload isolation: user: the payload runs as nobody');
  });

  it('refuses the job with the reason when the isolation asked for cannot be had, before anything runs', async () => {
    const jobId = 210;
    const channel = channelFor(jobId);
    const marker = join(base, 'ran');
    const outcome = await startJob(
      { jobId, jdl: jdl({ Executable: '/bin/touch', Arguments: marker }) },
      channel,
      options({ isolation: { mode: 'bwrap', bwrapPath: '/nonexistent/bwrap' } }),
    ).done;
    expect(outcome.status).toBe('Failed');
    expect(outcome.isolationUnavailable).toContain('/nonexistent/bwrap is missing or not executable');
    expect(channel.steps()).toEqual([`Running/${MINOR.jobInitialization}`, `Failed/${ISOLATION_UNAVAILABLE}`]);
    expect(channel.last().applicationStatus).toMatch(
      /^isolation: bwrap, but \/nonexistent\/bwrap is missing or not executable \(install bubblewrap, or set isolation: none on the queue for a single-user machine\)$/,
    );
    expect(existsSync(marker)).toBe(false);
    expect(readdirSync(workDir)).toEqual([]);
  });

  it.runIf(isRoot)('refuses a payload user that is root or unknown', async () => {
    for (const [jobId, payloadUser, reason] of [
      [211, 'root', 'is root: payloads never run as root'],
      [212, 'no-such-user-xyz', 'does not exist on this node'],
    ] as const) {
      const channel = channelFor(jobId);
      const outcome = await startJob(
        { jobId, jdl: jdl({ Executable: '/bin/true' }) },
        channel,
        options({ isolation: { mode: 'user', payloadUser } }),
      ).done;
      expect(outcome.status).toBe('Failed');
      expect(channel.last().minorStatus).toBe(ISOLATION_UNAVAILABLE);
      expect(channel.last().applicationStatus).toContain(reason);
    }
  });

  it.runIf(isRoot)('refuses when the payload user cannot reach the job dir, naming the closed directory', async () => {
    const closed = join(base, 'closed');
    mkdirSync(join(closed, 'work'), { recursive: true });
    chmodSync(closed, 0o700);
    const channel = new MemoryChannel(store, join(closed, 'work', '213'));
    const outcome = await startJob(
      { jobId: 213, jdl: jdl({ Executable: '/bin/true' }) },
      channel,
      options({ workDir: join(closed, 'work'), isolation: { mode: 'user' } }),
    ).done;
    expect(outcome.status).toBe('Failed');
    expect(outcome.isolationUnavailable).toContain(`${closed} (mode 0700, owner 0:0)`);
  });

  it('none: the payload runs as the pilot (a single-user laptop) but still with a scrubbed environment', async () => {
    process.env['WMS_TEST_PILOT_SECRET'] = 'TOPSECRET-ENV';
    try {
      const outside = join(base, 'readable-by-the-pilot');
      writeFileSync(outside, 'pilot file', { mode: 0o600 });
      const { outcome, files } = await runScript(214, [`cat ${outside}; echo`, 'id -u', 'env | sort'].join('\n'), {
        isolation: { mode: 'none', hostPath: '/usr/bin:/bin' },
      });
      expect(outcome.status).toBe('Done');
      const out = files['std.out'] ?? '';
      expect(out).toContain('pilot file');
      expect(out).toContain(`\n${process.getuid?.()}\n`);
      expect(out).toContain('PATH=/usr/bin:/bin\n');
      expect(out).not.toContain('TOPSECRET');
      expect(out).not.toContain('VITEST');
    } finally {
      delete process.env['WMS_TEST_PILOT_SECRET'];
    }
  });
});
