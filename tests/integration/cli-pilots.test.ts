/**
 * `wms pilot list / show / logs` spawned as users run them, against the real app on a random
 * port; the pilots are written straight into its database (created, registered, failed, with
 * log lines) as the site director and the pilots themselves would.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendPilotLogs, createPilots, registerPilot, updatePilots } from '../../db/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';

const root = resolve(import.meta.dirname, '../..');
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], env: Record<string, string>, cwd: string): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', tsx, join(root, 'cli/main.ts'), ...args], {
    cwd,
    env: { PATH: process.env['PATH'] ?? '', HOME: cwd, XDG_CONFIG_HOME: join(cwd, '.no-config'), ...env },
  });
}

/** A running `wms`: its output so far, a wait for a pattern in it, and its exit. */
function live(args: string[], env: Record<string, string>, cwd: string) {
  const child = start(args, env, cwd);
  const r: Run = { code: null, stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (r.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (r.stderr += d.toString()));
  const exited = new Promise<Run>((done, fail) => {
    child.on('error', fail);
    child.on('close', (code) => done({ ...r, code }));
  });
  return {
    child,
    output: r,
    exited,
    async waitFor(pattern: RegExp, ms = 30_000): Promise<void> {
      const deadline = Date.now() + ms;
      while (!pattern.test(r.stdout)) {
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`no ${pattern} in the output:\n${r.stdout}\n${r.stderr}`);
        }
        await new Promise((ok) => setTimeout(ok, 50));
      }
    },
  };
}

function wms(args: string[], env: Record<string, string>, cwd: string): Promise<Run> {
  return live(args, env, cwd).exited;
}

let t: TestApp;
let work: string;
let env: Record<string, string>;
let registered: number;
let failed: number;
let waiting: number;
let other: number;

const environment = {
  hostname: 'wn042.example.org',
  os: 'Debian GNU/Linux 12',
  kernel: '6.1.0-27-amd64',
  cpuModel: 'AMD EPYC 7742',
  cores: 8,
  memoryMb: 32_000,
  workDir: '/scratch/pilot-abc',
  fsType: 'ext4',
  diskFreeMb: 51_200,
  gpus: [],
  nodeVersion: 'v20.20.0',
  batchSystem: 'slurm',
  batchJobId: '4711',
  db12: { score: 19.4, raw: [194.2, 201.5], copies: 2, method: 'worker-thread' },
};

beforeAll(async () => {
  t = await createTestApp();
  const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
  work = await mkdtemp(join(tmpdir(), 'wms-cli-pilots-'));
  // A site admin of both sites of these pilots (a site admin sees only the pilots of its sites).
  env = {
    WMS_URL: url,
    WMS_TOKEN: await t.tokenFor({
      role: 'site-admin',
      user: 'sam',
      vo: 'vo1',
      group: 'vo1_siteadmin',
      sites: ['LCG.Alpha.org', 'LCG.Beta.org'],
    }),
  };
  const base = { ceType: 'slurm', queue: 'long', queueId: null, vo: 'vo1' };
  [registered, failed, waiting, other] = (await createPilots(t.db, [
    { ...base, stamp: 'stamp-registered', site: 'LCG.Alpha.org', ce: 'ce01.alpha.org' },
    { ...base, stamp: 'stamp-failed', site: 'LCG.Alpha.org', ce: 'ce01.alpha.org' },
    { ...base, stamp: 'stamp-waiting', site: 'LCG.Alpha.org', ce: 'ce02.alpha.org', queue: 'short' },
    { ...base, stamp: 'stamp-other', site: 'LCG.Beta.org', ce: 'ce.beta.org', ceType: 'htcondor' },
  ])) as [number, number, number, number];
  await registerPilot(t.db, registered, { environment, benchmark: 19.4, clockOffsetSeconds: 0.25 }, null);
  await appendPilotLogs(
    t.db,
    registered,
    Array.from({ length: 2500 }, (_, i) => ({ at: new Date(Date.UTC(2026, 10, 22, 10, 0, i)), line: `line ${i + 1}` })),
  );
  await registerPilot(t.db, failed, { environment, benchmark: 3.1, clockOffsetSeconds: -42 }, 'clock skew 42.0 s (limit 30 s)');
});
afterAll(async () => {
  await t?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('wms pilot list', () => {
  it('an aligned table, newest first, with the status reason', async () => {
    const r = await wms(['pilot', 'list'], env, work);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATUS\s+SITE\s+CE\s+QUEUE\s+DB12\s+JOBS\s+REASON\s+UPDATED$/);
    const rows = lines.slice(1, -1);
    expect(rows.map((l) => Number(l.split(/\s+/)[0]))).toEqual([other, waiting, failed, registered]);
    // Every column starts where its header does.
    for (const h of ['STATUS', 'SITE', 'CE', 'QUEUE', 'DB12', 'JOBS', 'REASON', 'UPDATED']) {
      const at = lines[0]!.indexOf(h);
      for (const row of rows) expect(row[at - 1], `${h} in "${row}"`).toBe(' ');
      for (const row of rows) expect(row[at], `${h} in "${row}"`).not.toBe(' ');
    }
    const reg = rows.find((l) => l.startsWith(`${registered} `))!;
    expect(reg).toMatch(/Running\s+LCG\.Alpha\.org\s+ce01\.alpha\.org\s+long\s+19\.4\s+0\s+registered\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    const fail = rows.find((l) => l.startsWith(`${failed} `))!;
    expect(fail).toMatch(/Failed .* 3\.1 .* clock skew 42\.0 s \(limit 30 s\)/);
    expect(rows.find((l) => l.startsWith(`${waiting} `))).toMatch(/Submitted .* short\s+-\s+0\s+waiting for the computing element/);
    expect(lines.at(-1)).toBe('4 pilots');
  });

  it('filters by site, CE and status; --json gives the API shape; a full page names the next one', async () => {
    const bySite = await wms(['pilot', 'list', '--site', 'LCG.Beta.org', '--json'], env, work);
    expect(bySite.code).toBe(0);
    const answer = JSON.parse(bySite.stdout) as { pilots: Record<string, unknown>[] };
    expect(answer.pilots).toHaveLength(1);
    expect(Object.keys(answer.pilots[0]!).sort()).toEqual(
      [
        'id',
        'stamp',
        'reference',
        'site',
        'ce',
        'ceType',
        'queue',
        'vo',
        'status',
        'statusReason',
        'benchmark',
        'clockOffsetSeconds',
        'currentJobId',
        'jobsRun',
        'exitCode',
        'workDir',
        'fsType',
        'createdAt',
        'lastUpdateAt',
      ].sort(),
    );
    expect(answer.pilots[0]).toMatchObject({ id: other, site: 'LCG.Beta.org', ceType: 'htcondor', status: 'Submitted', benchmark: null });

    const byStatus = await wms(['pilot', 'list', '--status', 'running,failed', '--json'], env, work);
    const ids = (JSON.parse(byStatus.stdout) as { pilots: { id: number; workDir: string; fsType: string }[] }).pilots;
    expect(ids.map((p) => p.id)).toEqual([failed, registered]);
    expect(ids[1]).toMatchObject({ workDir: '/scratch/pilot-abc', fsType: 'ext4' });

    const byCe = await wms(['pilot', 'list', '--ce', 'ce02.alpha.org'], env, work);
    expect(byCe.stdout).toMatch(new RegExp(`^${waiting}\\s+Submitted`, 'm'));
    expect(byCe.stdout.trimEnd().split('\n')).toHaveLength(3);

    const page = await wms(['pilot', 'list', '--limit', '2'], env, work);
    expect(page.stdout.trimEnd().split('\n').at(-1)).toBe(`2 pilots; next page: --before ${waiting}`);
    const next = await wms(['pilot', 'list', '--limit', '2', '--before', String(waiting)], env, work);
    expect(next.stdout).toMatch(new RegExp(`^${failed}\\s[\\s\\S]*^${registered}\\s`, 'm'));

    const none = await wms(['pilot', 'list', '--status', 'Aborted'], env, work);
    expect(none.stdout.trim()).toBe('no pilots');
  });

  it('a status that does not exist is a usage error; a user is refused', async () => {
    const bad = await wms(['pilot', 'list', '--status', 'Sleeping'], env, work);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^wms: --status: "Sleeping" is not a pilot status \(Submitted, Waiting, Running/);
    const user = await wms(['pilot', 'list'], { ...env, WMS_TOKEN: await t.user('alice') }, work);
    expect(user.code).toBe(1);
    expect(user.stderr.trim().split('\n')).toHaveLength(1);
    expect(user.stderr).toMatch(/^wms: /);
  });
});

describe('wms pilot show', () => {
  it('the environment report in readable lines, by id, stamp or CE reference', async () => {
    const r = await wms(['pilot', 'show', 'stamp-registered'], env, work);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(new RegExp(`^pilot ${registered}\\n`));
    expect(out).toMatch(/^ {2}status: +Running \(registered\)$/m);
    expect(out).toMatch(/^ {2}CE: +ce01\.alpha\.org \(slurm\), queue long$/m);
    expect(out).toMatch(/^ {2}host: +wn042\.example\.org$/m);
    expect(out).toMatch(/^ {2}OS: +Debian GNU\/Linux 12, kernel 6\.1\.0-27-amd64$/m);
    expect(out).toMatch(/^ {2}CPU: +AMD EPYC 7742$/m);
    expect(out).toMatch(/^ {2}cores: +8$/m);
    expect(out).toMatch(/^ {2}memory: +31\.3 GB$/m);
    expect(out).toMatch(/^ {2}work dir: +\/scratch\/pilot-abc \(ext4\)$/m);
    expect(out).toMatch(/^ {2}disk free: +50\.0 GB$/m);
    expect(out).toMatch(/^ {2}clock offset: +\+0\.25 s \(the node's clock is behind the server's\)$/m);
    expect(out).toMatch(/^ {2}DB12: +19\.4 \(raw 194\.2, 201\.5; 2 copies; worker-thread\)$/m);
    expect(out).toMatch(/^ {2}batch system: +slurm, job 4711$/m);
    // The values of the environment block are aligned on one column.
    const envLines = out.slice(out.indexOf('environment:')).split('\n').slice(1).filter(Boolean);
    const columns = new Set(envLines.map((l) => l.length - l.replace(/^ {2}[^:]+: +/, '').length));
    expect(columns.size).toBe(1);

    const byId = await wms(['pilot', 'show', String(registered)], env, work);
    expect(byId.stdout).toBe(out);
    await t.db.query(`update pilots set reference = 'slurm://ce01.alpha.org/4711' where id = $1`, [registered]);
    const byRef = await wms(['pilot', 'show', 'slurm://ce01.alpha.org/4711'], env, work);
    expect(byRef.code).toBe(0);
    expect(byRef.stdout).toContain(`pilot ${registered}\n`);
    expect(byRef.stdout).toMatch(/^ {2}CE reference: +slurm:\/\/ce01\.alpha\.org\/4711$/m);
  });

  it('a pilot that has not registered says so; --json carries the environment object', async () => {
    const r = await wms(['pilot', 'show', String(waiting)], env, work);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('environment:\n  not reported yet (the pilot has not registered)');
    const j = await wms(['pilot', 'show', String(failed), '--json'], env, work);
    const p = JSON.parse(j.stdout) as Record<string, unknown>;
    expect(p).toMatchObject({ id: failed, status: 'Failed', statusReason: 'clock skew 42.0 s (limit 30 s)', clockOffsetSeconds: -42 });
    expect(p['environment']).toMatchObject({ hostname: 'wn042.example.org', fsType: 'ext4', db12: { score: 19.4 } });
  });

  it('a pilot that does not exist is a one-line error', async () => {
    const r = await wms(['pilot', 'show', 'no-such-pilot'], env, work);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe('wms: no pilot no-such-pilot (give its id, stamp or CE reference)');
    const logs = await wms(['pilot', 'logs', '999999'], env, work);
    expect(logs.code).toBe(1);
    expect(logs.stderr.trim()).toBe('wms: no pilot 999999 (give its id, stamp or CE reference)');
    const follow = await wms(['pilot', 'logs', '999999', '--follow'], env, work);
    expect(follow.code).toBe(1);
    expect(follow.stderr.trim()).toBe('wms: no pilot 999999 (give its id, stamp or CE reference)');
  });
});

describe('wms pilot logs', () => {
  it('prints every line in order, across pages; --json gives them all in one object', async () => {
    const r = await wms(['pilot', 'logs', String(registered)], env, work);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2500);
    expect(lines[0]).toBe('line 1');
    expect(lines[1000]).toBe('line 1001');
    expect(lines[2499]).toBe('line 2500');

    const j = await wms(['pilot', 'logs', 'stamp-registered', '--json'], env, work);
    const answer = JSON.parse(j.stdout) as { pilotId: number; status: string; lines: { id: number; at: string; line: string }[] };
    expect(answer.pilotId).toBe(registered);
    expect(answer.status).toBe('Running');
    expect(answer.lines).toHaveLength(2500);
    expect(answer.lines[0]).toMatchObject({ line: 'line 1', at: '2026-11-22T10:00:00.000Z' });
    const ids = answer.lines.map((l) => l.id);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);

    const empty = await wms(['pilot', 'logs', String(waiting)], env, work);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toBe('');
    expect(empty.stderr.trim()).toBe(`pilot ${waiting} (Submitted) has sent no log lines yet`);
  });

  it('--follow prints lines as they come and ends once the pilot is final and its log quiet', async () => {
    const [id] = (await createPilots(t.db, [
      { stamp: 'stamp-follow', site: 'LCG.Alpha.org', ce: 'ce01.alpha.org', ceType: 'slurm', queue: 'long', queueId: null, vo: 'vo1' },
    ])) as [number];
    await registerPilot(t.db, id, { environment, benchmark: 10, clockOffsetSeconds: 0 }, null);
    await appendPilotLogs(t.db, id, [{ at: new Date(), line: 'first' }]);
    const f = live(['pilot', 'logs', String(id), '--follow'], env, work);
    await f.waitFor(/^first\n/);
    await appendPilotLogs(t.db, id, [
      { at: new Date(), line: 'second' },
      { at: new Date(), line: 'third' },
    ]);
    await f.waitFor(/third\n/);
    expect(f.child.exitCode).toBeNull();
    await appendPilotLogs(t.db, id, [{ at: new Date(), line: 'last words' }]);
    await updatePilots(t.db, [id], { status: 'Done', reason: 'no more work', exitCode: 0 });
    const r = await f.exited;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('first\nsecond\nthird\nlast words\n');
  });

  it('--follow --json prints one object per line; Ctrl-C stops it cleanly', async () => {
    const [id] = (await createPilots(t.db, [
      { stamp: 'stamp-sigint', site: 'LCG.Alpha.org', ce: 'ce01.alpha.org', ceType: 'slurm', queue: 'long', queueId: null, vo: 'vo1' },
    ])) as [number];
    await appendPilotLogs(t.db, id, [{ at: new Date('2026-11-22T10:00:00Z'), line: 'hello' }]);
    const f = live(['pilot', 'logs', String(id), '--follow', '--json'], env, work);
    await f.waitFor(/"hello"/);
    expect(JSON.parse(f.output.stdout.trim())).toMatchObject({ at: '2026-11-22T10:00:00.000Z', line: 'hello' });
    f.child.kill('SIGINT');
    const r = await f.exited;
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
