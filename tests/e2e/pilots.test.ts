/**
 * End to end, on PGlite and on PostgreSQL: the one-process system (services, agents, local site)
 * with real pilots (bash wrapper, bundle fetched and checked, node pilot, DB12, registration)
 * running real payloads.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeSystem, waitUntil, type SystemCtx } from '../helpers/system.js';

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wms-e2e-payloads-'));
  // Pilots run as an unprivileged user when the tests run as root: payloads run the scripts
  // here and write their pid files here.
  await chmod(scratch, 0o1777);
});
afterAll(async () => {
  execFileSync('rm', ['-rf', scratch]);
});

/**
 * A script as the payload's input sandbox (payloads are isolated: they see their job dir and the
 * system, not the test's files); answers the JDL attributes that run it.
 */
async function sandboxed(sys: SystemCtx, name: string, body: string): Promise<string> {
  const d = await mkdtemp(join(scratch, 'sb-'));
  await writeFile(join(d, name), `#!/bin/bash\n${body}\n`);
  execFileSync('tar', ['-czf', join(d, 'in.tgz'), '-C', d, name]);
  const bytes = await readFile(join(d, 'in.tgz'));
  const sha = createHash('sha256').update(bytes).digest('hex');
  const put = await fetch(`${sys.url}/api/sandboxes/${sha}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${await sys.token()}`, 'content-type': 'application/gzip' },
    body: bytes,
  });
  expect(put.status).toBe(201);
  return `Executable = "${name}"; InputSandbox = { "SB:${sha}" }`;
}

/** Live processes whose command line starts with `prefix` (the payload's, seen from the host). */
function processesStarting(prefix: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'latin1').split('\0').join(' ').startsWith(prefix)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out.filter(alive);
}

async function outputFiles(sys: SystemCtx, jobId: number): Promise<Record<string, string>> {
  const out = await sys.api('GET', `/api/jobs/${jobId}/output`, undefined, await sys.token());
  expect(out.sandboxes).toHaveLength(1);
  const res = await fetch(`${sys.url}/api/sandboxes/${out.sandboxes[0].sha256}`, {
    headers: { authorization: `Bearer ${await sys.token()}` },
  });
  expect(res.status).toBe(200);
  const dir = await mkdtemp(join(scratch, 'out-'));
  const archive = join(dir, 'out.tar.gz');
  await writeFile(archive, Buffer.from(await res.arrayBuffer()));
  execFileSync('tar', ['-xzf', archive, '-C', dir]);
  const files: Record<string, string> = {};
  for (const f of await readdir(dir)) if (f !== 'out.tar.gz') files[f] = await readFile(join(dir, f), 'utf8');
  return files;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describeSystem('pilots run jobs end to end', (sys) => {
  it('runs hello world to Done and returns its output sandbox', async () => {
    const hello = await readFile(join(import.meta.dirname, '../../examples/hello.jdl'), 'utf8');
    const [id] = await sys.submit(hello);
    const job = await sys.waitForStatus(id!, ['Done', 'Failed']);
    expect(job.status).toBe('Done');
    expect(job.minorStatus).toBe('Execution Complete');
    const files = await outputFiles(sys, id!);
    expect(files['std.out']).toBe('Hello from pilot-wms\n');
    const params = (await sys.api('GET', `/api/jobs/${id}/parameters`)).parameters;
    expect(params).toMatchObject({ ExitCode: '0' });
    expect(Number(params.CPUNormalizationFactor)).toBeGreaterThan(0);
    expect(params.HostName).toBeTruthy();
    // The pilot that ran it registered with its environment and DB12, and its log reached us.
    const pilot = await sys.api('GET', `/api/pilots/${job.pilotId}`);
    expect(pilot.benchmark).toBeGreaterThan(0);
    expect(pilot.environment.workDir).toBeTruthy();
    const logs = await sys.api('GET', `/api/pilots/${job.pilotId}/logs`);
    await waitUntil('the pilot log to name the job', async () => {
      const l = await sys.api('GET', `/api/pilots/${job.pilotId}/logs`);
      return l.lines.some((x: { line: string }) => x.line.includes(`job ${id}: matched`));
    });
    expect(logs.lines.length).toBeGreaterThan(0);
  });

  it('runs a parametric JDL of 50 jobs, all Done', async () => {
    const ids = await sys.submit(
      `[ JobName = "p_%n"; Executable = "/bin/echo"; Arguments = "point %s"; Parameters = 50; ParameterStart = 1; ParameterStep = 1; CPUTime = 600; ]`,
    );
    expect(ids).toHaveLength(50);
    await waitUntil(
      '50 jobs Done',
      async () => {
        const r = await sys.api('GET', `/api/jobs/status?ids=${ids.join(',')}`);
        const failed = r.jobs.filter((j: { status: string }) => j.status === 'Failed');
        if (failed.length > 0) throw new Error(`jobs failed: ${JSON.stringify(failed)}`);
        return r.jobs.filter((j: { status: string }) => j.status === 'Done').length === 50;
      },
      150_000,
      500,
    );
  });

  it('fails a payload that exits non-zero, with its exit code', async () => {
    const payload = await sandboxed(sys, 'exit3.sh', 'echo about to fail; exit 3');
    const [id] = await sys.submit(`[ ${payload}; CPUTime = 600; ]`);
    const job = await sys.waitForStatus(id!, ['Done', 'Failed']);
    expect(job.status).toBe('Failed');
    expect(job.minorStatus).toBe('Application Finished With Errors');
    expect(job.applicationStatus).toBe('Exit code 3');
    const params = (await sys.api('GET', `/api/jobs/${id}/parameters`)).parameters;
    expect(params.ExitCode).toBe('3');
  });

  it('kills a running job: the payload is gone in under 2 s', async () => {
    // The payload runs in its own PID namespace: it is found on the host by its command line.
    const marker = `sleep 60.${Date.now() % 1_000_000}`;
    const payload = await sandboxed(sys, 'sleeper.sh', marker);
    const [id] = await sys.submit(`[ ${payload}; CPUTime = 600; ]`);
    await sys.waitForStatus(id!, ['Running']);
    const pid = await waitUntil('the payload pid', async () => processesStarting(marker)[0] ?? null);
    expect(alive(pid)).toBe(true);
    const t0 = Date.now();
    const r = await sys.api('POST', '/api/jobs/kill', { ids: [id] }, await sys.token());
    expect(r.succeeded).toEqual([id]);
    await waitUntil('the payload to die', async () => !alive(pid), 5000, 20);
    const latency = Date.now() - t0;
    expect(latency).toBeLessThan(2000);
    expect((await sys.api('GET', `/api/jobs/${id}`)).status).toBe('Killed');
  });

  it('a pilot killed with SIGKILL mid-job: the job stalls, is rescheduled and Done on another pilot', async () => {
    const payload = await sandboxed(sys, 'six.sh', 'sleep 6; echo finished');
    const [id] = await sys.submit(`[ ${payload}; CPUTime = 600; ]`);
    const running = await sys.waitForStatus(id!, ['Running']);
    const firstPilot = await sys.api('GET', `/api/pilots/${running.pilotId}`);
    const pid = Number(/\/(\d+)$/.exec(firstPilot.reference)![1]);
    process.kill(-pid, 'SIGKILL'); // the wrapper's whole process group: wrapper, pilot, payload
    const done = await sys.waitForStatus(id!, ['Done', 'Failed'], 120_000);
    expect(done.status).toBe('Done');
    expect(done.pilotId).not.toBe(running.pilotId);
    const history: { status: string }[] = (await sys.api('GET', `/api/jobs/${id}/history`)).history;
    const path = history.map((h) => h.status);
    expect(path).toContain('Stalled');
    expect(path.lastIndexOf('Received')).toBeGreaterThan(path.indexOf('Stalled'));
    expect(path.at(-1)).toBe('Done');
    const dead = await sys.api('GET', `/api/pilots/${firstPilot.id}`);
    expect(['Failed', 'Aborted']).toContain(dead.status);
  });

  it('rejects an input sandbox holding ../x or an absolute path, with a clear error', async () => {
    for (const [label, tarArgs] of [
      ['dot-dot', (d: string) => ['-czPf', join(d, 'evil.tgz'), '-C', join(d, 'sub'), '../x']],
      ['absolute', (d: string) => ['-czPf', join(d, 'evil.tgz'), join(d, 'x')]],
    ] as const) {
      const d = await mkdtemp(join(scratch, `evil-${label}-`));
      await mkdir(join(d, 'sub'));
      await writeFile(join(d, 'x'), 'owned\n');
      execFileSync('tar', tarArgs(d), { stdio: 'ignore' });
      const bytes = await readFile(join(d, 'evil.tgz'));
      const sha = createHash('sha256').update(bytes).digest('hex');
      const put = await fetch(`${sys.url}/api/sandboxes/${sha}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${await sys.token()}`, 'content-type': 'application/gzip' },
        body: bytes,
      });
      expect(put.status).toBe(201);
      const [id] = await sys.submit(`[ Executable = "/bin/true"; InputSandbox = { "SB:${sha}" }; CPUTime = 600; ]`);
      const job = await sys.waitForStatus(id!, ['Done', 'Failed']);
      expect(job.status).toBe('Failed');
      const history = (await sys.api('GET', `/api/jobs/${id}/history`)).history as { minorStatus: string; applicationStatus: string }[];
      const words = history.map((h) => `${h.minorStatus} ${h.applicationStatus}`).join(' | ');
      expect(words).toMatch(label === 'dot-dot' ? /\.\.\/x/ : /absolute/i);
    }
  });
});

describeSystem(
  'a pilot whose clock is 60 s off',
  (sys) => {
    it('refuses work, and the server shows why', async () => {
      const [id] = await sys.submit(`[ Executable = "/bin/true"; CPUTime = 600; ]`);
      const refused = await waitUntil('a refused pilot', async () => {
        const { pilots } = await sys.api('GET', '/api/pilots?status=Failed');
        return pilots.find((p: { statusReason: string }) => /clock skew/.test(p.statusReason));
      });
      expect(refused.statusReason).toMatch(/^clock skew 6\d\.\d s \(limit 5 s\): this node.s clock is ahead of the server.s/);
      expect(refused.jobsRun).toBe(0);
      expect((await sys.api('GET', `/api/jobs/${id}`)).status).toBe('Waiting');
    });

    it('pauses the queue whose pilots all fail, with the reason in the site status', async () => {
      const queue = await waitUntil(
        'the local queue paused',
        async () => {
          const s = await sys.api('GET', '/api/sites/Local.localhost/status');
          return s.queues.find((q: { pausedUntil: string | null }) => q.pausedUntil !== null);
        },
        90_000,
        250,
      );
      expect(queue.pauseReason).toMatch(/^5 pilots in a row failed \(last: clock skew 6\d\.\d s \(limit 5 s\)/);
      expect(queue.pilots.Failed).toBeGreaterThanOrEqual(5);
      expect(queue.lastFailures[0].reason).toMatch(/^clock skew/);
      // Paused: no new pilot while it lasts.
      const before = (await sys.api('GET', '/api/pilots')).pilots.length;
      await new Promise((r) => setTimeout(r, 2500));
      expect((await sys.api('GET', '/api/pilots')).pilots.length).toBe(before);
    });
  },
  { localPilotEnv: { WMS_PILOT_TEST_CLOCK_OFFSET: '60' } },
);

// A fake `stat` first on PATH says the first work-dir candidate ($TMPDIR) is on NFS.
const rejected = await mkdtemp(join(tmpdir(), 'wms-e2e-nfs-'));
const fakeBin = await mkdtemp(join(tmpdir(), 'wms-e2e-bin-'));
// Reachable by the pilot user (tests as root: local pilots run as nobody): the pilot must get as
// far as asking `stat` about the rejected dir, which it may only do in a dir it could write to.
await chmod(rejected, 0o1777);
await chmod(fakeBin, 0o755);
await writeFile(
  join(fakeBin, 'stat'),
  `#!/bin/bash\nfor a in "$@"; do last="$a"; done\nif [ "$last" = "${rejected}" ]; then echo nfs; exit 0; fi\nexec /usr/bin/stat "$@"\n`,
);
await chmod(join(fakeBin, 'stat'), 0o755);

describeSystem(
  'a work dir on a rejected file-system type',
  (sys) => {
    it('is not used: the pilot works elsewhere and says why', async () => {
      const [id] = await sys.submit(`[ Executable = "/bin/true"; CPUTime = 600; ]`);
      const job = await sys.waitForStatus(id!, ['Done', 'Failed']);
      expect(job.status).toBe('Done');
      const pilot = await sys.api('GET', `/api/pilots/${job.pilotId}`);
      expect(pilot.environment.workDir.startsWith(rejected)).toBe(false);
      expect(pilot.environment.fsType).not.toBe('nfs');
      const logs = await sys.api('GET', `/api/pilots/${job.pilotId}/logs`);
      expect(logs.lines.map((l: { line: string }) => l.line).join('\n')).toContain(`${rejected}: nfs`);
    });
  },
  { localPilotEnv: { TMPDIR: rejected, PATH: `${fakeBin}:${process.env.PATH}` } },
);
