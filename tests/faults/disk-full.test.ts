/**
 * Issue 10, "Disk": a job that fills its work dir must not break the pilot for the jobs after
 * it. Real parts: a small tmpfs as the pilot's work dir, the services listening on a port
 * (PGlite), and the pilot's job agent with its HTTP client in this process, so that
 * /proc/self/fd shows what the pilot keeps open. Payloads run isolated as on a node.
 *
 * One job fills the disk from its payload and names the huge file in its OutputSandbox (ENOSPC
 * while the outputs are packed), one has an input sandbox that cannot be unpacked on what is
 * left (ENOSPC while unpacking), and `echo hello` comes next on the same pilot and must be
 * Done. A second pilot whose work dir has less free space than `minDiskMb` takes no job and
 * says why.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as tarCreate } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINOR } from '../../core/job-states.js';
import type { PilotConfig } from '../../core/pilot-protocol.js';
import { PilotApi } from '../../pilot/client.js';
import { lowDiskReason } from '../../pilot/disk.js';
import { JobAgent } from '../../pilot/job-agent.js';
import { safeUnpack } from '../../pilot/sandbox.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { pilotAt } from '../helpers/pilots.js';

const MB = 1024 * 1024;
const scratch = mkdtempSync(join(tmpdir(), 'wms-disk-full-'));
chmodSync(scratch, 0o711); // payloads of a root pilot pass through here to their job dirs
const mounts: string[] = [];

/** A tmpfs of `sizeMb` at a new directory (unmounted after the file). */
function tmpfs(name: string, sizeMb: number): string {
  const dir = join(scratch, name);
  execFileSync('mkdir', ['-p', dir]);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0711`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

function freeMb(dir: string): number {
  const s = statfsSync(dir);
  return (s.bavail * s.bsize) / MB;
}

/** This process's descriptors on files under `dir` (a deleted file reads `<path> (deleted)`). */
function descriptorsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${dir}/`)) out.push(`${fd} -> ${target}`);
    } catch {
      // closed meanwhile (readdir's own descriptor)
    }
  }
  return out;
}

let t: TestApp;
let url: string;
let alice: string;

beforeAll(async () => {
  t = await createTestApp();
  url = await t.app.listen({ host: '127.0.0.1', port: 0 });
  alice = await t.user('alice');
});

afterAll(async () => {
  await t?.close();
  for (const dir of mounts.reverse()) {
    try {
      execFileSync('umount', [dir]);
    } catch {
      execFileSync('umount', ['-l', dir]); // something still holds it: detach it anyway
    }
  }
  rmSync(scratch, { recursive: true, force: true });
});

async function submit(jdl: string): Promise<number> {
  const res = await t.call('POST', '/api/jobs', alice, { jdl });
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ jobIds: number[] }>().jobIds[0]!;
}

async function uploadSandbox(bytes: Buffer): Promise<string> {
  const sha = createHash('sha256').update(bytes).digest('hex');
  const res = await t.call('PUT', `/api/sandboxes/${sha}`, alice, bytes, { 'content-type': 'application/gzip' });
  expect(res.statusCode, res.body).toBe(201);
  return `SB:${sha}`;
}

async function job(id: number): Promise<{ status: string; minorStatus: string; applicationStatus: string | null }> {
  const res = await t.call('GET', `/api/jobs/${id}`, alice);
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

/** A job agent of a new pilot record, working in `workDir`, its settings changed by `over`. */
async function agentIn(workDir: string, over: Partial<PilotConfig>, log: string[]): Promise<{ agent: JobAgent; api: PilotApi }> {
  const p = await pilotAt(t, { site: 'LCG.Disk.org', ce: 'ce.disk.org', vo: 'vo1' });
  const api = new PilotApi(url, p.token);
  const config: PilotConfig = {
    ...(await api.config()),
    slots: 1,
    pollSeconds: 0.1,
    maxPollSeconds: 0.2,
    stopAfterFailedMatches: 1,
    heartbeatSeconds: 1,
    ...over,
  };
  const agent = new JobAgent({
    api,
    config,
    db12: 10,
    workDir,
    startedAt: Date.now(),
    now: Date.now,
    log: (line) => log.push(line),
    env: {},
    isolation: { mode: 'auto', payloadUser: 'nobody', bwrapPath: null, hostPath: process.env['PATH'] ?? '' },
    parameters: { HostName: 'wn-disk', PilotReference: 'disk-test' },
  });
  return { agent, api };
}

describe('a job that fills the pilot work dir', () => {
  it('fails with the reason, leaves nothing open or on disk, and the next job is Done', async () => {
    const workDir = tmpfs('work', 32);
    const total = freeMb(workDir);
    const log: string[] = [];

    // 1. The payload fills the disk and stays: the watchdog's disk limit stops it.
    const stayer = await submit(
      `[ Executable = "/bin/sh"; Arguments = "-c 'dd if=/dev/zero of=big bs=1M; sleep 60'"; OutputSandbox = { "std.out" }; ]`,
    );
    // 2. The payload writes until the disk is full, then ends well; its huge file and stdout
    //    are outputs: packing them hits ENOSPC.
    const filler = await submit(
      `[ Executable = "/bin/sh"; Arguments = "-c 'echo filling; dd if=/dev/zero of=big bs=1M; true'"; OutputSandbox = { "big", "std.out" }; ]`,
    );
    // 3. An input sandbox of 20 MB that does not compress: downloaded (20 MB), it cannot be
    //    unpacked in the 12 MB left.
    const src = join(scratch, 'src');
    execFileSync('mkdir', ['-p', src]);
    writeFileSync(join(src, 'data.bin'), randomBytes(20 * MB));
    const archive = join(scratch, 'in.tar.gz');
    await tarCreate({ gzip: true, cwd: src, file: archive, portable: true }, ['data.bin']);
    const sb = await uploadSandbox(readFileSync(archive));
    const unpacker = await submit(`[ Executable = "/bin/true"; InputSandbox = { "${sb}" }; OutputSandbox = { "std.out" }; ]`);
    // 4. The next job.
    const hello = await submit(`[ Executable = "/bin/echo"; Arguments = "hello"; OutputSandbox = { "std.out" }; ]`);

    const { agent, api } = await agentIn(workDir, { minDiskMb: 8 }, log);
    const result = await agent.run();
    api.close();
    const trace = `pilot log:\n${log.join('\n')}`;

    expect(
      result.jobs.map((j) => [j.jobId, j.status]),
      trace,
    ).toEqual([
      [stayer, 'Failed'],
      [filler, 'Failed'],
      [unpacker, 'Failed'],
      [hello, 'Done'],
    ]);
    expect(result.reason, trace).toBe('no work after 1 requests');

    // Each failed with a reason that says the disk was full.
    const s = await job(stayer);
    expect(s.status).toBe('Failed');
    expect(s.minorStatus, trace).toBe(MINOR.jobInsufficientDisk);
    expect(s.applicationStatus).toMatch(/^0 MB free in the job directory, below 10 MB$/);
    const f = await job(filler);
    expect(f.status).toBe('Failed');
    expect(`${f.minorStatus}: ${f.applicationStatus}`, trace).toMatch(
      new RegExp(
        `^(${MINOR.uploadingOutputSandbox}: output sandbox upload failed: .*no space left on device|${MINOR.jobInsufficientDisk}: )`,
        'i',
      ),
    );
    const u = await job(unpacker);
    expect(u.status).toBe('Failed');
    expect(u.minorStatus).toBe(MINOR.failedDownloadingInputSandbox);
    expect(u.applicationStatus, trace).toMatch(/^SB:[0-9a-f]{64} could not be unpacked: .*no space left on device/i);

    // Nothing of any job is held open by the pilot, nor left on disk; the space is back.
    expect(descriptorsUnder(workDir), trace).toEqual([]);
    // (What the pilot itself keeps there, such as its payload-sessions registry, may stay.)
    expect(
      readdirSync(workDir).filter((name) => /^\d+$|^\.job-/.test(name)),
      trace,
    ).toEqual([]);
    expect(freeMb(workDir)).toBeGreaterThan(total - 1);

    // The next job ran and its output is there.
    const h = await job(hello);
    expect(h).toMatchObject({ status: 'Done', minorStatus: MINOR.executionComplete });
    const out = await t.call('GET', `/api/jobs/${hello}/output`, alice);
    const [sandbox] = out.json<{ sandboxes: { sha256: string }[] }>().sandboxes;
    const got = await t.call('GET', `/api/sandboxes/${sandbox!.sha256}`, alice);
    expect(got.statusCode).toBe(200);
    const dest = join(scratch, 'hello-out');
    const file = join(scratch, 'hello-out.tar.gz');
    writeFileSync(file, got.rawPayload);
    await safeUnpack(file, dest, { maxEntries: 10, maxBytes: 100_000 });
    expect(readFileSync(join(dest, 'std.out'), 'utf8')).toBe('hello\n');
  });
});

describe('the files of a job that failed in the wrapper', () => {
  it('are closed and removed even when the wrapper throws between opening stdout and stderr', async () => {
    const workDir = tmpfs('work-throw', 8);
    const log: string[] = [];
    // stderr names the directory stdout is in: stdout is opened, stderr cannot be (EISDIR).
    const broken = await submit(`[ Executable = "/bin/echo"; Arguments = "x"; StdOutput = "out/std.out"; StdError = "out"; ]`);
    const { agent, api } = await agentIn(workDir, { minDiskMb: 1 }, log);
    const result = await agent.run();
    api.close();
    const trace = `pilot log:\n${log.join('\n')}`;

    expect(
      result.jobs.map((j) => [j.jobId, j.status]),
      trace,
    ).toEqual([[broken, 'Failed']]);
    const b = await job(broken);
    expect(b.minorStatus).toBe(MINOR.exceptionDuringExecution);
    expect(b.applicationStatus).toMatch(/EISDIR/);
    expect(descriptorsUnder(workDir), trace).toEqual([]);
    expect(
      readdirSync(workDir).filter((name) => /^\d+$|^\.job-/.test(name)),
      trace,
    ).toEqual([]);
  });
});

describe('free disk before each match', () => {
  it('a pilot whose work dir has less than minDiskMb free takes no job and says why', async () => {
    const workDir = tmpfs('tiny', 4);
    const free = Math.floor(freeMb(workDir));
    const log: string[] = [];
    const waiting = await submit(`[ Executable = "/bin/echo"; Arguments = "not here"; ]`);

    const { agent, api } = await agentIn(workDir, { minDiskMb: 16 }, log);
    const result = await agent.run();
    api.close();

    expect(result.jobs).toEqual([]);
    expect(result.reason).toBe(`free disk ${free} MB below minDiskMb 16 MB in ${workDir}`);
    expect((await job(waiting)).status).toBe('Waiting');
    expect(existsSync(join(workDir, String(waiting)))).toBe(false);
  });

  it('waits briefly for space a finished job is still releasing', async () => {
    const workDir = tmpfs('releasing', 8);
    const held = join(workDir, 'held');
    writeFileSync(held, Buffer.alloc(6 * MB));
    expect(await lowDiskReason(workDir, 4, { waitMs: 300, pollMs: 50 })).toMatch(/^free disk [0-2] MB below minDiskMb 4 MB in /);
    const asked = Date.now();
    setTimeout(() => rmSync(held), 500);
    expect(await lowDiskReason(workDir, 4, { waitMs: 5000, pollMs: 50 })).toBeNull();
    expect(Date.now() - asked).toBeGreaterThanOrEqual(450);
    expect(await lowDiskReason(join(workDir, 'gone'), 4)).toMatch(/cannot be read \(ENOENT\)/);
  });
});
