/**
 * Issue 9, point 1 (the server side): local pilots were children of the server with its whole
 * environment (`...process.env`), and ran as the server's Unix user: a job read
 * `<data-dir>/admin.token`, `WMS_METRICS_TOKEN` and whatever secret the server was started with.
 *
 * Now the local site starts each pilot with an environment built from nothing, and, when the
 * server is root, as an unprivileged user (`pilot.localUser`, default `nobody`) in a home of its
 * own. Shown on a whole system (PGlite and PostgreSQL) started with secrets in its environment:
 * the pilot's processes are inspected while its job runs, and the job itself looks for the
 * secrets in its environment, in its ancestors' `/proc/<pid>/environ`, and in the data dir.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSystem } from '../../cli/server-system.js';
import { LocalComputingElement, resolveLocalUser } from '../../agents/computing-elements/local.js';
import { describeSystem, fastConfig, BUNDLE_DIR, waitUntil, type SystemCtx } from '../helpers/system.js';
import { IN_CI } from '../helpers/db.js';

const ROOT = process.getuid?.() === 0;
if (!ROOT) {
  const why = 'the pilot-user checks need the server to run as root';
  if (IN_CI) throw new Error(`${why}; CI is set, so they must not be skipped`);
  console.warn(`[security] SKIPPING the pilot-user checks of local-site.test.ts: ${why}`);
}
const NOBODY = ROOT ? Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim()) : -1;

// The server's secrets: in its environment before the system starts, as an operator sets them.
const CANARY = `canary-${randomBytes(12).toString('hex')}`;
const METRICS = `metrics-${randomBytes(12).toString('hex')}`;
const saved = { canary: process.env['WMS_SECRET_CANARY'], metrics: process.env['WMS_METRICS_TOKEN'] };
process.env['WMS_SECRET_CANARY'] = CANARY;
process.env['WMS_METRICS_TOKEN'] = METRICS;

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wms-sec-local-'));
});
afterAll(async () => {
  for (const [k, v] of [
    ['WMS_SECRET_CANARY', saved.canary],
    ['WMS_METRICS_TOKEN', saved.metrics],
  ] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await rm(scratch, { recursive: true, force: true });
});

/** The job's probe: what it can see of the secrets, printed to its stdout; then it lingers. */
const PROBE = `#!/bin/bash
echo "uid=$(id -u)"
echo "--- env"
env
p=$PPID
while [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != 1 ]; do
  echo "--- environ of $p"
  tr '\\0' '\\n' < "/proc/$p/environ" 2>&1 || echo "(unreadable)"
  p=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$p/status" 2>/dev/null)
done
echo "--- admin.token"
cat "$1/admin.token" 2>&1 || echo "(unreadable)"
echo "--- data dir"
ls -la "$1" 2>&1 || echo "(unreadable)"
echo "--- probe done"
sleep 6
exit 0
`;

/** Uploads the probe as an input sandbox (as alice) and submits it; answers the job id. */
async function submitProbe(sys: SystemCtx): Promise<number> {
  const dir = await mkdtemp(join(scratch, 'probe-'));
  await writeFile(join(dir, 'probe.sh'), PROBE, { mode: 0o755 });
  execFileSync('tar', ['-czf', join(dir, 'probe.tgz'), '-C', dir, 'probe.sh']);
  const bytes = await readFile(join(dir, 'probe.tgz'));
  const sha = (await import('node:crypto')).createHash('sha256').update(bytes).digest('hex');
  const put = await fetch(`${sys.url}/api/sandboxes/${sha}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${await sys.token()}`, 'content-type': 'application/gzip' },
    body: bytes,
  });
  expect(put.status).toBeLessThan(300);
  const [id] = await sys.submit(
    `[ Executable = "/bin/bash"; Arguments = "probe.sh ${sys.dataDir}"; InputSandbox = { "SB:${sha}" };
       StdOutput = "std.out"; StdError = "std.err"; OutputSandbox = { "std.out", "std.err" }; CPUTime = 600; ]`,
  );
  return id!;
}

async function outputOf(sys: SystemCtx, jobId: number): Promise<string> {
  const out = await sys.api('GET', `/api/jobs/${jobId}/output`, undefined, await sys.token());
  const res = await fetch(`${sys.url}/api/sandboxes/${out.sandboxes[0].sha256}`, {
    headers: { authorization: `Bearer ${await sys.token()}` },
  });
  expect(res.status).toBe(200);
  const dir = await mkdtemp(join(scratch, 'out-'));
  await writeFile(join(dir, 'out.tar.gz'), Buffer.from(await res.arrayBuffer()));
  execFileSync('tar', ['-xzf', join(dir, 'out.tar.gz'), '-C', dir]);
  return readFile(join(dir, 'std.out'), 'utf8');
}

/** The process `pid` and all its descendants. */
async function processTree(pid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const status = await readFile(`/proc/${name}/status`, 'utf8').catch(() => '');
    const ppid = Number(/^PPid:\s*(\d+)/m.exec(status)?.[1] ?? -1);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  for (const queue = [pid]; queue.length > 0;) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

async function environOf(pid: number): Promise<Record<string, string>> {
  const raw = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
  return Object.fromEntries(
    raw
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

/** The real, effective, saved and file-system uids of `pid`, and its supplementary groups. */
async function idsOf(pid: number): Promise<{ uids: number[]; groups: number[] }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const uids = /^Uid:[ \t]*(.*)$/m.exec(status)![1]!.trim().split(/\s+/).map(Number);
  const groups = (/^Groups:[ \t]*(.*)$/m.exec(status)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  return { uids, groups };
}

describeSystem("the local site: pilots without the server's environment or user", (sys) => {
  it("neither the pilot nor its job sees the server's secrets; as root, they run as the pilot user", async () => {
    const id = await submitProbe(sys);
    const running = await sys.waitForStatus(id, ['Running', 'Done', 'Failed'], 90_000);
    expect(running.status).toBe('Running');
    const pilot = await sys.api('GET', `/api/pilots/${running.pilotId}`);
    const wrapperPid = Number(/^local:\/\/localhost\/(\d+)$/.exec(pilot.reference)![1]);

    // The wrapper's environment is exactly the one the local CE built, nothing of the server's.
    const env = await environOf(wrapperPid);
    expect(Object.keys(env).sort()).toEqual(['DIRAC_PILOT_STAMP', 'HOME', 'LANG', 'LOGNAME', 'PATH', 'TMPDIR', 'USER']);
    expect(env['DIRAC_PILOT_STAMP']).toBe(pilot.stamp);
    expect(env['PATH']!.split(':')).toContain(dirname(process.execPath));
    expect(env['TMPDIR']).toBe(env['HOME']);
    expect(pilot.environment.workDir.startsWith(`${env['TMPDIR']}/`)).toBe(true);

    // No process of the pilot's tree (wrapper, pilot, job wrapper, payload) holds a secret.
    // "Running" comes at Job Initialization, before the payload starts: wait for its processes.
    const tree = await waitUntil(
      'the payload to start under the pilot',
      async () => {
        const t = await processTree(wrapperPid);
        return t.length >= 3 ? t : null;
      },
      30_000,
      100,
    );
    for (const pid of tree) {
      const raw = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
      expect(raw, `environ of ${pid}`).not.toContain(CANARY);
      expect(raw, `environ of ${pid}`).not.toContain(METRICS);
    }
    if (ROOT) {
      const user = await idsOf(wrapperPid);
      expect(user.uids).toEqual([NOBODY, NOBODY, NOBODY, NOBODY]);
      expect(user.groups.filter((g) => g !== NOBODY)).toEqual([]);
      expect(env['USER']).toBe('nobody');
      for (const pid of tree) {
        const ids = await idsOf(pid).catch(() => null);
        if (ids) expect(ids.uids, `process ${pid}`).not.toContain(0);
      }
      // The pilot's home holds its wrapper (and so its token): its own, 0700; the run dir above
      // it cannot be listed by other users.
      const home = await stat(env['HOME']!);
      expect(home.uid).toBe(NOBODY);
      expect(home.mode & 0o777).toBe(0o700);
      expect((await stat(dirname(env['HOME']!))).mode & 0o777).toBe(0o711);
      const daemon = (cmd: string[]) => {
        try {
          execFileSync('setpriv', ['--reuid=1', '--regid=1', '--clear-groups', '--', ...cmd], { stdio: 'pipe' });
          return 'readable';
        } catch (e) {
          return String((e as { stderr?: Buffer }).stderr ?? '');
        }
      };
      expect(daemon(['ls', dirname(env['HOME']!)])).toMatch(/Permission denied/);
      expect(daemon(['ls', env['HOME']!])).toMatch(/Permission denied/);
    }

    const done = await sys.waitForStatus(id, ['Done', 'Failed'], 60_000);
    expect(done.status).toBe('Done');
    const out = await outputOf(sys, id);
    expect(out).toContain('--- probe done');
    expect(out).not.toContain(CANARY);
    expect(out).not.toContain(METRICS);
    const admin = (await readFile(join(sys.dataDir, 'admin.token'), 'utf8')).trim();
    expect(admin.length).toBeGreaterThan(20);
    expect(out).not.toContain(admin);
    if (ROOT) {
      expect(out).toMatch(/^uid=65534$/m);
      // Denied as the pilot user, or not even there in the payload's sandbox (bubblewrap).
      expect(out).toMatch(/--- admin\.token\n[^\n]*(Permission denied|No such file or directory)/);
    }
  });

  it("a finished pilot's home is removed when the pilot is cleaned up", async () => {
    const [id] = await sys.submit(`[ Executable = "/bin/true"; CPUTime = 600; ]`);
    const job = await sys.waitForStatus(id!, ['Done', 'Failed']);
    expect(job.status).toBe('Done');
    const pilot = await sys.api('GET', `/api/pilots/${job.pilotId}`);
    const home = dirname(pilot.environment.workDir);
    expect((await stat(home)).isDirectory()).toBe(true);
    const ref = pilot.reference as string;
    const ce = sys.system.localCe!;
    await (async () => {
      for (let i = 0; i < 600; i++) {
        const s = (await ce.status([ref])).get(ref);
        if (s && s.status !== 'Running') return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('the pilot did not end');
    })();
    await ce.cleanup([ref]);
    await expect(stat(home)).rejects.toThrow(/ENOENT/);
  });
});

describe('the local site refuses a pilot user that cannot be used', () => {
  it.runIf(ROOT)('a missing pilot.localUser stops the start, with the reason and what to do', async () => {
    const dataDir = await mkdtemp(join(scratch, 'var-'));
    const base = fastConfig(dataDir, null);
    const config = { ...base, pilot: { ...base.pilot, localUser: 'wms-no-such-user' } };
    await expect(startSystem(config, { pilotBundleDir: BUNDLE_DIR, logger: false })).rejects.toThrow(
      /pilot\.localUser: there is no user "wms-no-such-user" on this machine\. The server runs as root.*useradd --system wms-no-such-user/,
    );
    const root = { ...base, pilot: { ...base.pilot, localUser: 'root' } };
    await expect(startSystem(root, { pilotBundleDir: BUNDLE_DIR, logger: false })).rejects.toThrow(
      /"root" is root \(uid 0\), and local pilots must not run as root/,
    );
  });
});

describe('the local CE started again after its server was killed (SIGKILL)', () => {
  it('takes its run dir back: homes whose wrapper ended go at once, the others when their pilot is cleaned up', async () => {
    const workDir = join(await mkdtemp(join(scratch, 'restart-')), 'local-ce');
    const options = { ce: 'restart', workDir, slots: 3, runAs: ROOT ? resolveLocalUser('nobody') : null };
    const queue = {
      site: 'Local.localhost',
      ce: 'restart',
      queue: 'local',
      processors: 1,
      ramMb: 100,
      timeLimitSeconds: 300,
      settings: {},
    };
    const first = new LocalComputingElement(options);
    const started = await first.submit(queue, [
      { stamp: 'ended', wrapper: '#!/bin/bash\nexit 0\n' },
      { stamp: 'running', wrapper: '#!/bin/bash\nsleep 60\n' },
    ]);
    expect(started.failed).toEqual([]);
    const [ended, running] = started.submitted.map((p) => p.reference) as [string, string];
    await waitUntil(
      'the first pilot to end',
      async () => ((await first.status([ended])).get(ended)?.status === 'Done' ? true : null),
      10_000,
      50,
    );
    // The server dies without close(): `first` is forgotten, its sleeping pilot runs on.
    const runDir = (await readFile(join(workDir, 'run-dir'), 'utf8')).trim();
    expect((await readdir(runDir)).sort()).toEqual(['ended', 'running']);
    const aMinuteAgo = new Date(Date.now() - 120_000);
    for (const stamp of ['ended', 'running']) await utimes(join(runDir, stamp, 'pilot.sh'), aMinuteAgo, aMinuteAgo);

    const pid = Number(/\/(\d+)$/.exec(running)![1]);
    const second = new LocalComputingElement(options);
    try {
      expect((await second.submit(queue, [{ stamp: 'next', wrapper: '#!/bin/bash\nexit 0\n' }])).failed).toEqual([]);
      expect((await readFile(join(workDir, 'run-dir'), 'utf8')).trim()).toBe(runDir);
      expect((await readdir(runDir)).sort()).toEqual(['next', 'running']);
      expect((await readdir(workDir)).filter((f) => f.startsWith('ended.'))).toEqual([]);

      await second.cleanup([running]); // still running: kept
      expect(await readdir(runDir)).toContain('running');
      process.kill(-pid, 'SIGKILL');
      await waitUntil(
        'the old pilot to die',
        async () => ((await second.status([running])).get(running)?.status === 'Failed' ? true : null),
        10_000,
        50,
      );
      await second.cleanup([running]);
      expect(await readdir(runDir)).not.toContain('running');
      expect((await readdir(workDir)).filter((f) => f.startsWith('running.'))).toEqual([]);
    } finally {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
      await second.close(0);
      await rm(runDir, { recursive: true, force: true });
    }
  });
  it('counts the pilots it took back against its slots, says they run, and stops them with its own at shutdown', async () => {
    const workDir = join(await mkdtemp(join(scratch, 'adopt-')), 'local-ce');
    const options = { ce: 'adopt', workDir, slots: 2, runAs: ROOT ? resolveLocalUser('nobody') : null };
    const queue = { site: 'Local.localhost', ce: 'adopt', queue: 'local', processors: 1, ramMb: 100, timeLimitSeconds: 300, settings: {} };
    const first = new LocalComputingElement(options);
    // A pilot that ignores SIGTERM (so does its sleep): only the SIGKILL of its group ends it.
    const started = await first.submit(queue, [{ stamp: 'stubborn', wrapper: '#!/bin/bash\ntrap "" TERM\nsleep 60\n' }]);
    expect(started.failed).toEqual([]);
    const ref = started.submitted[0]!.reference;
    const pid = Number(/\/(\d+)$/.exec(ref)![1]);
    const runDir = (await readFile(join(workDir, 'run-dir'), 'utf8')).trim();
    // The server dies without close(); another takes the run dir back.
    const second = new LocalComputingElement(options);
    try {
      expect(await second.availableSlots()).toBe(1);
      expect((await second.status([ref])).get(ref)?.status).toBe('Running');
      expect(second.knownReferences()).toEqual([ref]);
      const live = await second.drain();
      expect(live.map((p) => p.reference)).toEqual([ref]);
      expect((await second.submit(queue, [{ stamp: 'late', wrapper: '#!/bin/bash\nexit 0\n' }])).failed[0]?.reason).toMatch(/stopping/);
      const left = await second.waitForPilots(live, Date.now() + 500);
      expect(left.map((p) => p.reference)).toEqual([ref]);
      const killed = await second.stopPilots(left, 500);
      expect(killed.map((p) => p.reference)).toEqual([ref]);
      expect((await second.status([ref])).get(ref)?.status).toBe('Failed');
      expect(await second.availableSlots()).toBe(2);
    } finally {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
      await second.close(0);
      await rm(runDir, { recursive: true, force: true });
    }
  });
});
