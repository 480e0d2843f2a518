/**
 * Issue 9, points 1 and 2 (the worker-node side): a payload read `<data-dir>/admin.token`, its
 * pilot's token from `/proc/$PPID/environ`, and the server's secrets; and a queue's
 * `environment` (NODE_OPTIONS) ran code in the pilot.
 *
 * Now the job wrapper starts each payload in a sandbox (pilot/isolation.ts: bubblewrap with its
 * own PID and mount namespaces, else a separate user under a root pilot, else the job is refused
 * unless the queue says `isolation: none`), with an environment built from nothing; the pilot
 * holds its token in memory only; the queue's environment reaches payloads only.
 *
 * Shown end to end on whole systems (PGlite and PostgreSQL) with real local pilots:
 * - a hostile payload (a script in its input sandbox) looks for the admin token, the local
 *   CE's wrapper scripts, every `/proc/<pid>/environ` it can list, its pilot's work dir and
 *   token file, and prints its environment: none of the admin token, a pilot token or the
 *   server's secret appears in what it can send back, it sees only its own processes, and the
 *   job is Done;
 * - a queue whose isolation cannot be had (bubblewrap asked for, pointed at a missing binary) has
 *   its job refused with the reason, and the pilot ends saying why;
 * - `isolation: none` (a laptop) still runs, the queue's environment reaching the payload and
 *   never the pilot.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_CI } from '../helpers/db.js';
import { describeSystem, waitUntil, type SystemCtx } from '../helpers/system.js';

const HAS_BWRAP = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
if (!HAS_BWRAP) {
  const why = 'bubblewrap is not installed (scripts/test-env.sh installs it): the default set-up cannot isolate payloads here';
  if (IN_CI) throw new Error(`${why}; CI is set`);
  console.warn(`[security] payload-isolation: ${why}`);
}

// The server's secret, in its environment and its config, as an operator sets it.
const METRICS = `metrics-${randomBytes(12).toString('hex')}`;
const savedMetrics = process.env['WMS_METRICS_TOKEN'];
process.env['WMS_METRICS_TOKEN'] = METRICS;

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wms-sec-isolation-'));
});
afterAll(async () => {
  if (savedMetrics === undefined) delete process.env['WMS_METRICS_TOKEN'];
  else process.env['WMS_METRICS_TOKEN'] = savedMetrics;
  await rm(scratch, { recursive: true, force: true });
});

/**
 * The hostile payload: $1 is the server's data dir (an attacker guesses it; the test hands it
 * over so that a miss proves the sandbox, not a wrong guess).
 */
const HOSTILE = `#!/bin/sh
data="$1"
echo "=== id: $(id)"
echo "=== pids: $(ls /proc | grep '^[0-9]' | tr '\\n' ' ')"
echo "=== pid 1: $(tr '\\0' ' ' < /proc/1/cmdline 2>&1)"
echo "=== admin.token"; cat "$data/admin.token" 2>&1
echo "=== data dir"; ls -la "$data" 2>&1
echo "=== local CE wrappers"; for f in "$data"/local-ce/*.sh "$data"/local-ce/*/*.sh; do echo "--- $f"; cat "$f" 2>&1; done
echo "=== parent environ"; tr '\\0' '\\n' < /proc/$PPID/environ 2>&1
echo "=== every environ"; for f in /proc/[0-9]*/environ; do echo "--- $f"; tr '\\0' '\\n' < "$f" 2>&1; done
work=$(dirname "$PWD")
echo "=== pilot work dir $work"; ls -la "$work" 2>&1
echo "--- token file"; cat "$work/.pilot-token" 2>&1
echo "--- wrapper log"; cat "$work/wrapper.log" 2>&1
echo "--- pilot bundle"; ls -la "$work/pilot.mjs" 2>&1
echo "=== root of the file system: $(ls / | tr '\\n' ' ')"
for d in /root /home /work /var /run /srv /mnt; do [ -e "$d" ] && echo "visible: $d $(ls "$d" 2>&1 | head -5 | tr '\\n' ' ')"; done
echo "=== env"; env
echo "=== end"
`;

async function putSandbox(sys: SystemCtx, files: Record<string, string>): Promise<string> {
  const d = await mkdtemp(join(scratch, 'sb-'));
  for (const [name, body] of Object.entries(files)) await writeFile(join(d, name), body, { mode: 0o755 });
  const archive = join(d, 'in.tar.gz');
  await tar.create({ gzip: true, cwd: d, file: archive, portable: true }, Object.keys(files));
  const bytes = await readFile(archive);
  const sha = createHash('sha256').update(bytes).digest('hex');
  const res = await fetch(`${sys.url}/api/sandboxes/${sha}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${await sys.token()}`, 'content-type': 'application/gzip' },
    body: bytes,
  });
  expect(res.status, await res.text()).toBe(201);
  return `SB:${sha}`;
}

async function outputOf(sys: SystemCtx, jobId: number): Promise<Record<string, string>> {
  const out = await sys.api('GET', `/api/jobs/${jobId}/output`, undefined, await sys.token());
  expect(out.sandboxes).toHaveLength(1);
  const res = await fetch(`${sys.url}/api/sandboxes/${out.sandboxes[0].sha256}`, {
    headers: { authorization: `Bearer ${await sys.token()}` },
  });
  expect(res.status).toBe(200);
  const dir = await mkdtemp(join(scratch, 'out-'));
  await writeFile(join(dir, 'out.tar.gz'), Buffer.from(await res.arrayBuffer()));
  await tar.extract({ file: join(dir, 'out.tar.gz'), cwd: dir });
  const files: Record<string, string> = {};
  for (const f of await readdir(dir)) if (f !== 'out.tar.gz') files[f] = await readFile(join(dir, f), 'utf8');
  return files;
}

/** The claims of every JWT in `text`. */
function jwtsIn(text: string): { token: string; claims: Record<string, unknown> }[] {
  return [...text.matchAll(/eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g)].map((m) => ({
    token: m[0],
    claims: JSON.parse(Buffer.from(m[0].split('.')[1] as string, 'base64url').toString('utf8')) as Record<string, unknown>,
  }));
}

/** Makes the local queue say `queue` (as an admin would with `wms site apply`), through the API. */
async function setLocalQueue(sys: SystemCtx, queue: Record<string, unknown>): Promise<void> {
  await sys.api('PUT', '/api/sites', {
    sites: [
      {
        name: 'Local.localhost',
        computingElements: [
          {
            name: 'localhost',
            type: 'local',
            queues: [
              {
                name: 'local',
                processors: 1,
                maxWaitingPilots: 2,
                maxTotalPilots: 2,
                maxPilotsPerCycle: 2,
                timeLimitSeconds: 86_400,
                ...queue,
              },
            ],
          },
        ],
      },
    ],
  });
}

/** The environments (NUL-separated) of the local pilots' processes now running: wrappers and pilots. */
async function localPilotEnvirons(sys: SystemCtx): Promise<string[]> {
  const { pilots } = await sys.api('GET', '/api/pilots?status=Running');
  const out: string[] = [];
  for (const p of pilots as { reference: string | null }[]) {
    const pid = Number(/\/(\d+)$/.exec(p.reference ?? '')?.[1]);
    if (!pid) continue;
    const kids = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
    for (const q of [pid, ...kids.split(/\s+/).filter(Boolean).map(Number)]) {
      out.push(await readFile(`/proc/${q}/environ`, 'latin1').catch(() => ''));
    }
  }
  return out;
}

describeSystem(
  'payload isolation: a hostile payload on the default set-up',
  (sys) => {
    it('reads none of the admin token, the pilot token or the server secret, sees only its own processes, and is Done', async () => {
      const adminToken = (await readFile(join(sys.dataDir, 'admin.token'), 'utf8')).trim();
      expect(adminToken).toMatch(/^eyJ/);
      const sb = await putSandbox(sys, { 'hostile.sh': HOSTILE });
      const [id] = await sys.submit(
        `[ Executable = "/bin/sh"; Arguments = "hostile.sh ${sys.dataDir}"; InputSandbox = { "${sb}" }; OutputSandbox = { "std.out", "std.err" }; CPUTime = 600; ]`,
      );
      const job = await sys.waitForStatus(id!, ['Done', 'Failed'], 120_000);
      const files = await outputOf(sys, id!);
      const out = files['std.out'] ?? '';
      expect(job.status, out + (files['std.err'] ?? '')).toBe('Done');
      expect(out).toContain('=== end'); // it ran to its end: every probe above was tried

      // None of the secrets.
      expect(out).not.toContain(adminToken);
      expect(out).not.toContain(METRICS);
      // The only token it holds is its own job token.
      const tokens = jwtsIn(out + (files['std.err'] ?? ''));
      expect(tokens.length).toBeGreaterThan(0);
      for (const t of tokens) expect(t.claims, t.token).toMatchObject({ role: 'job', job: id });
      expect(out).toMatch(new RegExp(`^WMS_JOB_ID=${id}$`, 'm'));
      // Nothing of the pilot's own settings or of the server's environment.
      expect(out).not.toMatch(/^WMS_PILOT_/m);
      expect(out).not.toMatch(/^WMS_METRICS_TOKEN=/m);
      // The pilot's work dir is an empty mount point above its job dir: no token file, log or bundle.
      expect(out).toMatch(/\.pilot-token: No such file or directory$/m);
      expect(out).toMatch(/wrapper\.log: No such file or directory$/m);
      expect(out).toMatch(/pilot\.mjs': No such file or directory$/m);
      expect(out).not.toContain('pilot wrapper for pilot');

      // Its own processes only: a handful of small PIDs, init being the sandbox's.
      const pids = (/^=== pids: (.*)$/m.exec(out)?.[1] ?? '').trim().split(/\s+/).map(Number);
      expect(pids.length).toBeGreaterThan(0);
      expect(pids.length, out.slice(0, 500)).toBeLessThanOrEqual(8);
      expect(Math.max(...pids)).toBeLessThan(50);
      expect(out).toMatch(/^=== pid 1: (\S*\/)?bwrap /m);
      // Not the server's user, and none of the host's private directories.
      expect(out).not.toMatch(/^=== id: uid=0\(/m);
      expect(out).not.toMatch(/^visible: /m);

      // The pilot that ran it: Done (isolation worked), its log says how.
      const logs = await waitUntil('the pilot log to say how the payload ran', async () => {
        const l = await sys.api('GET', `/api/pilots/${job.pilotId}/logs`);
        return l.lines.some((x: { line: string }) => x.line.includes(`job ${id}: payload isolation: bubblewrap`)) ? l : null;
      });
      expect(logs.lines.map((x: { line: string }) => x.line).join('\n')).not.toContain(adminToken);
    });

    it("the pilot holds its token in memory only: not in its environment nor its wrapper's, no token file left", async () => {
      const sb = await putSandbox(sys, { 'linger.sh': 'sleep 4\n' });
      const [id] = await sys.submit(`[ Executable = "/bin/sh"; Arguments = "linger.sh"; InputSandbox = { "${sb}" }; CPUTime = 600; ]`);
      const job = await sys.waitForStatus(id!, ['Running']);
      const pilot = await sys.api('GET', `/api/pilots/${job.pilotId}`);
      const environs = await localPilotEnvirons(sys);
      expect(environs.length).toBeGreaterThanOrEqual(2);
      for (const e of environs) {
        expect(e).not.toContain('WMS_PILOT_TOKEN=');
        expect(jwtsIn(e)).toEqual([]);
        expect(e).not.toContain(METRICS);
      }
      expect(existsSync(join(pilot.environment.workDir, '.pilot-token'))).toBe(false);
      expect((await sys.waitForStatus(id!, ['Done', 'Failed'])).status).toBe('Done');
    });
  },
  { config: { metricsToken: METRICS } },
);

describeSystem('payload isolation: a queue whose isolation cannot be had', (sys) => {
  beforeAll(async () => {
    await setLocalQueue(sys, { isolation: 'bwrap', bwrapPath: '/nonexistent/bwrap' });
  });

  it('refuses the job with the reason, runs nothing, and the pilot ends saying why', async () => {
    const marker = join(scratch, `ran-${randomBytes(4).toString('hex')}`);
    const [id] = await sys.submit(`[ Executable = "/bin/touch"; Arguments = "${marker}"; CPUTime = 600; ]`);
    const job = await sys.waitForStatus(id!, ['Done', 'Failed'], 120_000);
    expect(job.status).toBe('Failed');
    expect(job.minorStatus).toBe('Payload isolation unavailable');
    expect(job.applicationStatus).toBe(
      'isolation: bwrap, but /nonexistent/bwrap is missing or not executable (install bubblewrap, or set isolation: none on the queue for a single-user machine)',
    );
    expect(existsSync(marker)).toBe(false);
    const pilot = await waitUntil('the pilot to end', async () => {
      const p = await sys.api('GET', `/api/pilots/${job.pilotId}`);
      return p.status === 'Failed' || p.status === 'Done' ? p : null;
    });
    expect(pilot.status).toBe('Failed');
    expect(pilot.statusReason).toMatch(/^payload isolation unavailable: isolation: bwrap, but \/nonexistent\/bwrap is missing/);
    expect(pilot.exitCode).toBe(24);
  });

  it('refuses a queue setting that is not a mode, with the path of the problem', async () => {
    const res = await fetch(`${sys.url}/api/sites`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${await sys.adminToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        sites: [
          {
            name: 'Local.localhost',
            computingElements: [{ name: 'localhost', type: 'local', queues: [{ name: 'local', isolation: 'off' }] }],
          },
        ],
      }),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('sites[0].computingElements[0].queues[0].isolation');
  });
});

describeSystem('payload isolation: none (a single-user laptop)', (sys) => {
  beforeAll(async () => {
    await setLocalQueue(sys, { isolation: 'none', environment: { VO_SW_DIR: '/cvmfs/vo.example.org' } });
  });

  it('runs the payload as the pilot, with the queue environment, which never reaches the pilot', async () => {
    const outside = join(scratch, `laptop-${randomBytes(4).toString('hex')}.txt`);
    await writeFile(outside, 'a file of the laptop\n', { mode: 0o644 });
    // A root server runs its pilots as another user (and its umask is 077): let that user read it.
    await chmod(outside, 0o644);
    await chmod(scratch, 0o711);
    const sb = await putSandbox(sys, {
      'laptop.sh': `cat ${outside}\necho "VO_SW_DIR=$VO_SW_DIR"\nenv | grep -c . | sed 's/^/vars=/'\nsleep 3\n`,
    });
    const [id] = await sys.submit(
      `[ Executable = "/bin/sh"; Arguments = "laptop.sh"; InputSandbox = { "${sb}" }; OutputSandbox = { "std.out" }; CPUTime = 600; ]`,
    );
    await sys.waitForStatus(id!, ['Running']);
    for (const e of await localPilotEnvirons(sys)) expect(e).not.toContain('VO_SW_DIR');
    const job = await sys.waitForStatus(id!, ['Done', 'Failed']);
    const out = (await outputOf(sys, id!))['std.out'] ?? '';
    expect(job.status, out).toBe('Done');
    expect(out).toContain('a file of the laptop');
    expect(out).toContain('VO_SW_DIR=/cvmfs/vo.example.org');
    expect(out).not.toContain(METRICS);
  });
});

describe('payload isolation: the hostile script', () => {
  it('is a valid sh script', async () => {
    const f = join(scratch, 'hostile-check.sh');
    await writeFile(f, HOSTILE);
    const { execFileSync } = await import('node:child_process');
    expect(() => execFileSync('sh', ['-n', f])).not.toThrow();
  });
});
