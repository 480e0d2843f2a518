/**
 * `wms job kill|reschedule|delete` with ids or with a selection (issue 13, point 9), spawned as
 * users run it (`node --import tsx cli/main.ts`) against a server listening in this process:
 * the per-job table for ids (skipped jobs are not failures), the summary of a selection, ids and
 * a selection together refused, `--dry-run` changing nothing, the confirmation asked on a
 * terminal (a real pseudo-terminal, through `script`) and `--yes` required without one.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { JobState } from '../../core/job-states.js';
import { createTestApp, jdl, type TestApp } from '../helpers/app.js';

const root = resolve(import.meta.dirname, '../..');
/** tsx's loader by absolute URL: the CLI runs in a temporary directory outside the project. */
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

interface Run {
  code: number | null;
  out: string;
}

let t: TestApp;
let work: string;
let env: Record<string, string>;

/**
 * Runs `wms ...args` and waits for it to exit; stdin is a pipe (no terminal), or with
 * `terminal` a pseudo-terminal (`script`) that is sent `terminal.input`. `out` is stdout and
 * stderr together.
 */
function wms(args: string[], o: { token?: string; terminal?: { input: string } } = {}): Promise<Run> {
  const argv = [process.execPath, '--import', tsx, join(root, 'cli/main.ts'), ...args];
  const [cmd, cmdArgs] = o.terminal
    ? ['script', ['-qec', argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' '), '/dev/null']]
    : [argv[0]!, argv.slice(1)];
  return new Promise((done, fail) => {
    const child = spawn(cmd, cmdArgs, {
      cwd: work,
      env: { ...env, ...(o.token ? { WMS_TOKEN: o.token } : {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, out: out.replace(/\r/g, '') }));
    if (o.terminal) child.stdin.write(o.terminal.input);
    else child.stdin.end();
  });
}

async function submit(token: string, group: string, n: number): Promise<number[]> {
  const res = await t.call('POST', '/api/jobs', token, { jdls: Array.from({ length: n }, () => jdl({ JobGroup: group })) });
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ jobIds: number[] }>().jobIds;
}

async function force(ids: readonly number[], status: JobState): Promise<void> {
  await t.db.query(`update jobs set status = $2::text::job_status where id = any($1::bigint[])`, [[...ids], status]);
}

async function statuses(ids: readonly number[]): Promise<string[]> {
  const rows = await t.db.query<{ id: number; status: string }>(`select id, status from jobs where id = any($1::bigint[]) order by id`, [
    [...ids],
  ]);
  return rows.map((r) => r.status);
}

/** The jobs table and the history: what a refused or dry command must leave as it was. */
async function snapshot(): Promise<unknown[]> {
  return Promise.all([
    t.db.query(`select id, status, minor_status, last_update_at from jobs order by id`),
    t.db.query(`select count(*) as n from job_history`),
  ]);
}

let alice: string;
let bob: string;

beforeAll(async () => {
  t = await createTestApp();
  const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
  work = await mkdtemp(join(tmpdir(), 'wms-cli-bulk-'));
  alice = await t.user('alice');
  bob = await t.user('bob');
  env = { PATH: process.env['PATH'] ?? '', HOME: work, XDG_CONFIG_HOME: join(work, '.no-config'), WMS_URL: url, WMS_TOKEN: alice };
});
afterAll(async () => {
  await t?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('wms job kill|reschedule|delete', () => {
  let mine: number[];
  let bobs: number[];
  beforeEach(async () => {
    await t.db.query('delete from jobs');
    mine = await submit(alice, 'sweep', 4);
    bobs = await submit(bob, 'sweep', 2);
    await force([mine[0]!], 'Done');
  });

  it('ids: the per-job table; a final job is skipped, not failed; an unknown id fails (exit 1)', async () => {
    const r = await wms(['job', 'kill', String(mine[0]), String(mine[1])]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(new RegExp(`${mine[0]}\\s+skipped\\s+already final`));
    expect(r.out).toMatch(new RegExp(`${mine[1]}\\s+killed`));
    const bad = await wms(['job', 'delete', String(mine[2]), '999999']);
    expect(bad.code, bad.out).toBe(1);
    expect(bad.out).toMatch(new RegExp(`${mine[2]}\\s+deleted`));
    expect(bad.out).toMatch(/999999\s+failed\s+WMS_JOB_NOT_FOUND/);
  });

  it('ids and a selection together, or neither, is a usage error (exit 2), nothing changed', async () => {
    const before = await snapshot();
    const both = await wms(['job', 'kill', String(mine[1]), '--status', 'Waiting', '--yes']);
    expect(both.code, both.out).toBe(2);
    expect(both.out).toContain('give job ids or a selection (--status, --group, --site, --owner, --since, --until), not both');
    const neither = await wms(['job', 'reschedule', '--yes']);
    expect(neither.code, neither.out).toBe(2);
    expect(neither.out).toContain('give job ids, or select jobs with --status');
    const badStatus = await wms(['job', 'kill', '--status', 'Sleeping', '--yes']);
    expect(badStatus.code, badStatus.out).toBe(2);
    expect(badStatus.out).toContain('"Sleeping" is not a job status');
    const badTime = await wms(['job', 'kill', '--since', 'yesterday', '--yes']);
    expect(badTime.code, badTime.out).toBe(2);
    expect(badTime.out).toContain('--since: "yesterday" is not a date or a duration ago');
    expect(await snapshot()).toEqual(before);
  });

  it('a selection without a terminal and without --yes is refused (exit 2) and changes nothing', async () => {
    const before = await snapshot();
    for (const action of ['kill', 'reschedule', 'delete']) {
      const r = await wms(['job', action, '--group', 'sweep']);
      expect(r.code, r.out).toBe(2);
      expect(r.out).toContain(`wms job ${action} with a selection asks for confirmation and there is no terminal: pass --yes`);
    }
    expect(await snapshot()).toEqual(before);
  });

  it('--dry-run says what would happen and changes nothing', async () => {
    const before = await snapshot();
    const r = await wms(['job', 'kill', '--group', 'sweep', '--dry-run']);
    expect(r.code, r.out).toBe(0);
    expect(r.out.trim()).toBe('would kill 3 jobs; 1 skipped (already final: 1 Done); nothing changed (dry run)');
    const ids = await wms(['job', 'delete', String(mine[1]), '--dry-run']);
    expect(ids.code, ids.out).toBe(0);
    expect(ids.out).toMatch(new RegExp(`${mine[1]}\\s+would be deleted`));
    expect(ids.out).toContain('nothing changed (dry run)');
    expect(await snapshot()).toEqual(before);
  });

  it("--yes: the summary, only the caller's jobs changed; --since/--until take durations and dates", async () => {
    const r = await wms(['job', 'kill', '--group', 'sweep', '--since', '1h', '--yes']);
    expect(r.code, r.out).toBe(0);
    expect(r.out.trim()).toBe('killed 3 jobs; 1 skipped (already final: 1 Done)');
    expect(await statuses(mine)).toEqual(['Done', 'Killed', 'Killed', 'Killed']);
    expect(await statuses(bobs)).toEqual(['Waiting', 'Waiting']);
    const none = await wms(['job', 'reschedule', '--status', 'Killed', '--until', '2000-01-01', '--yes']);
    expect(none.out.trim()).toBe('rescheduled 0 jobs');
    const json = await wms(['job', 'reschedule', '--status', 'Killed', '--json', '--yes']);
    expect(json.code, json.out).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({ succeededCount: 3, matched: 3, skipped: 0, dryRun: false });
    expect(await statuses(mine)).toEqual(['Done', 'Waiting', 'Waiting', 'Waiting']);
  });

  it('a job that fails in a selection is listed, and the exit code is 1; --owner of another user is refused', async () => {
    await force([mine[1]!], 'Completed');
    await force([mine[2]!], 'Deleted');
    const r = await wms(['job', 'delete', '--group', 'sweep', '--yes']);
    expect(r.code, r.out).toBe(1);
    expect(r.out).toContain('deleted 2 jobs; 1 skipped (already deleted: 1 Deleted); 1 failed');
    expect(r.out).toMatch(new RegExp(`${mine[1]}\\s+failed\\s+WMS_JOB_STATE: job ${mine[1]} is Completed: it cannot be deleted`));
    const other = await wms(['job', 'kill', '--owner', 'bob', '--yes']);
    expect(other.code, other.out).not.toBe(0);
    expect(other.out).toContain('only admins may act on the jobs of other users');
    expect(await statuses(bobs)).toEqual(['Waiting', 'Waiting']);
    const admin = await wms(['job', 'kill', '--owner', 'bob', '--yes'], { token: await t.admin() });
    expect(admin.out.trim()).toBe('killed 2 jobs');
  });

  it('on a terminal a selection asks how many first: "n" changes nothing, "y" goes on', async () => {
    const before = await snapshot();
    const no = await wms(['job', 'reschedule', '--group', 'sweep'], { terminal: { input: 'n\n' } });
    expect(no.code, no.out).toBe(0);
    expect(no.out).toContain('reschedule 4 jobs? [y/N]');
    expect(no.out).toContain('nothing done');
    expect(await snapshot()).toEqual(before);
    const yes = await wms(['job', 'kill', '--group', 'sweep'], { terminal: { input: 'y\n' } });
    expect(yes.code, yes.out).toBe(0);
    expect(yes.out).toContain('kill 3 jobs? [y/N]');
    expect(yes.out).toContain('killed 3 jobs; 1 skipped (already final: 1 Done)');
    expect(await statuses(mine)).toEqual(['Done', 'Killed', 'Killed', 'Killed']);
  });
});
