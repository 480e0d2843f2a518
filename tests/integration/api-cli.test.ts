/**
 * The `wms` command line, spawned as users run it (`node --import tsx cli/main.ts`), against a
 * server started in this process on a random port; and `wms server start` itself (admin token,
 * laptop-case token discovery, draining on SIGTERM), plus the token bootstrap without a server.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { list as tarList } from 'tar';
import { createTestApp, type TestApp } from '../helpers/app.js';

const root = resolve(import.meta.dirname, '../..');
/** tsx's loader by absolute URL: the CLI runs in temporary directories outside the project. */
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `wms ...args` and waits for it to exit. */
function wms(args: string[], env: Record<string, string>, cwd = root): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', tsx, join(root, 'cli/main.ts'), ...args], {
      cwd,
      env: { PATH: process.env['PATH'] ?? '', HOME: cwd, XDG_CONFIG_HOME: join(cwd, '.no-config'), ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

let t: TestApp;
let url: string;
let work: string;
let env: Record<string, string>;

beforeAll(async () => {
  t = await createTestApp();
  url = await t.app.listen({ host: '127.0.0.1', port: 0 });
  work = await mkdtemp(join(tmpdir(), 'wms-cli-test-'));
  env = { WMS_URL: url, WMS_TOKEN: await t.user('alice') };
});
afterAll(async () => {
  await t?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('wms job', () => {
  it('submit packs and uploads a local input sandbox file, then status --json', async () => {
    await writeFile(join(work, 'run.sh'), '#!/bin/sh\necho hello\n');
    await writeFile(join(work, 'input.txt'), 'some input\n');
    await writeFile(
      join(work, 'job.jdl'),
      '[\n  Executable = "run.sh";\n  JobName = "cli-job";\n  InputSandbox = { "run.sh", "LFN:/vo1/user/a/alice/big.dat", "input.txt" };\n  CPUTime = 3600;\n]\n',
    );
    const sub = await wms(['job', 'submit', 'job.jdl', '--json'], env, work);
    expect(sub.stderr).toBe('');
    expect(sub.code).toBe(0);
    const { jobIds } = JSON.parse(sub.stdout) as { jobIds: number[] };
    expect(jobIds).toHaveLength(1);
    const id = jobIds[0]!;

    const st = await wms(['job', 'status', String(id), '--json'], env, work);
    expect(st.code).toBe(0);
    const status = JSON.parse(st.stdout) as { jobs: { id: number; status: string; jobName: string }[] };
    expect(status.jobs[0]).toMatchObject({ id, status: 'Waiting', jobName: 'cli-job' });

    // The stored JDL names one SB: archive holding both local files, and keeps the LFN.
    const detail = (await t.call('GET', `/api/jobs/${id}`, env['WMS_TOKEN']!)).json<{ jdl: string }>();
    const m = /"SB:([0-9a-f]{64})"/.exec(detail.jdl);
    expect(m).not.toBeNull();
    expect(detail.jdl).toContain('LFN:/vo1/user/a/alice/big.dat');
    expect(detail.jdl).not.toMatch(/"run\.sh", "LFN/);
    const sha = m![1]!;
    const file = join(t.dataDir, 'sandboxes', sha.slice(0, 2), sha);
    const bytes = await readFile(file);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(sha);
    const names: string[] = [];
    await tarList({ file, onReadEntry: (e) => names.push(e.path) });
    expect(names.sort()).toEqual(['input.txt', 'run.sh']);
  });

  it('readable output without --json', async () => {
    await writeFile(join(work, 'plain.jdl'), '[ Executable = "run.sh"; JobName = "plain"; ]');
    const sub = await wms(['job', 'submit', 'plain.jdl'], env, work);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toMatch(/^plain\.jdl: job \d+\n$/);
    const id = /job (\d+)/.exec(sub.stdout)![1]!;
    const st = await wms(['job', 'status', id], env, work);
    expect(st.stdout).toMatch(/^ID\s+STATUS\s+MINOR STATUS/);
    expect(st.stdout).toMatch(new RegExp(`^${id}\\s+Waiting\\s`, 'm'));
    const list = await wms(['job', 'list', '--status', 'Waiting', '--limit', '1'], env, work);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/1-1 of \d+ jobs/);
    const kill = await wms(['job', 'kill', id, '999999'], env, work);
    expect(kill.code).toBe(1);
    expect(kill.stdout).toMatch(new RegExp(`${id}\\s+killed`));
    expect(kill.stdout).toMatch(/999999\s+failed\s+WMS_JOB_NOT_FOUND/);
    const logging = await wms(['job', 'logging', id], env, work);
    expect(logging.stdout).toMatch(/Received[\s\S]*Waiting[\s\S]*Killed/);
  });

  it('job list ends with the total for the query by status; --since takes a duration ago; job jdl, job heartbeats', async () => {
    await writeFile(join(work, 'totals.jdl'), '[ Executable = "run.sh"; JobGroup = "totals_grp"; Parameters = 3; ParameterStart = 1; ]');
    const sub = await wms(['job', 'submit', 'totals.jdl', '--json'], env, work);
    expect(sub.code, sub.stderr).toBe(0);
    const ids = (JSON.parse(sub.stdout) as { jobIds: number[] }).jobIds;
    expect(ids).toHaveLength(3);
    expect((await wms(['job', 'kill', String(ids[0])], env, work)).code).toBe(0);
    const list = await wms(['job', 'list', '--group', 'totals_grp', '--since', '1h', '--limit', '1'], env, work);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/\n1-1 of 3 jobs\nTotal for query: 3 jobs; 2 Waiting, 1 Killed\n$/);
    const none = await wms(['job', 'list', '--group', 'totals_grp', '--until', '1h'], env, work);
    expect(none.stdout).toBe('0-0 of 0 jobs\nTotal for query: 0 jobs\n');
    const bad = await wms(['job', 'list', '--since', 'yesterdayish'], env, work);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--since: "yesterdayish" is not a date or a duration ago/);

    const jdl = await wms(['job', 'jdl', String(ids[1])], env, work);
    expect(jdl.code).toBe(0);
    expect(jdl.stdout).toMatch(/JobGroup = "totals_grp"/);
    expect(jdl.stdout).not.toContain('ParameterStart');
    // Times say their zone: UTC with Z, or with --local the machine's zone and offset.
    const utc = await wms(['job', 'status', String(ids[1])], { ...env, TZ: 'Asia/Kolkata' }, work);
    expect(utc.stdout).toMatch(/ \d\d:\d\d:\d\dZ\n$/);
    const local = await wms(['job', 'status', String(ids[1]), '--local'], { ...env, TZ: 'Asia/Kolkata' }, work);
    expect(local.stdout).toMatch(/ \d\d:\d\d:\d\d \+05:30\n$/);
    const beats = await wms(['job', 'heartbeats', String(ids[1])], env, work);
    expect(beats.stdout.trim()).toBe(`job ${ids[1]} has sent no heartbeat`);
    const other = await wms(['job', 'jdl', String(ids[1])], { ...env, WMS_TOKEN: await t.user('mallory') }, work);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/no job/);
  });

  it('a malformed JDL prints the file, line and column, and exits 1', async () => {
    await writeFile(join(work, 'bad.jdl'), '[\n  Executable = "run.sh"\n  CPUTime = 3600;\n]\n');
    const r = await wms(['job', 'submit', 'bad.jdl'], env, work);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^wms: .*line 2, column 24/);
    expect(r.stderr).toContain('bad.jdl:2:24: missing');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('several files are one submission; a bad one names its file', async () => {
    await writeFile(join(work, 'a.jdl'), '[ Executable = "a.sh"; ]');
    await writeFile(join(work, 'b.jdl'), '[\n  Executable = "b.sh";\n  CPUTime = 5;\n]');
    const r = await wms(['job', 'submit', 'a.jdl', 'b.jdl'], env, work);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('b.jdl:3:13: CPUTime 5 is out of range');
    const ok = await wms(['job', 'submit', 'a.jdl', 'plain.jdl'], env, work);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^FILE\s+JOB\na\.jdl\s+\d+\nplain\.jdl\s+\d+\n$/);
  });

  it('a missing local sandbox file is a clear error naming it', async () => {
    await writeFile(join(work, 'missing.jdl'), '[ Executable = "run.sh"; InputSandbox = { "nothere.txt" }; ]');
    const r = await wms(['job', 'submit', 'missing.jdl'], env, work);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^wms: missing\.jdl: InputSandbox file "nothere\.txt" not found/);
  });

  it('a JDL file that is not there is named, with the reason', async () => {
    const r = await wms(['job', 'submit', 'nowhere.jdl'], env, work);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('wms: nowhere.jdl: cannot read the JDL file: no such file');
  });

  it('usage errors exit 2; no server is a one-line error', async () => {
    const usage = await wms(['job', 'status'], env, work);
    expect(usage.code).toBe(2);
    const down = await wms(['job', 'list'], { ...env, WMS_URL: 'http://127.0.0.1:9' }, work);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^wms: cannot reach the server at http:\/\/127\.0\.0\.1:9/);
    expect(down.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('--version matches package.json', async () => {
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
    const r = await wms(['--version'], {}, work);
    expect(r.stdout.trim()).toBe(pkg.version);
  });
});

describe('wms server migrate', () => {
  it('migrates an embedded database (again is a no-op) and says clearly when PostgreSQL is unreachable', async () => {
    const dataDir = join(work, 'migrate-data');
    const ok = await wms(['server', 'migrate', '--data-dir', dataDir], {}, work);
    expect(ok.stderr).toBe('');
    expect(ok.stdout.trim()).toBe(`database migrated: ${join(dataDir, 'db')}`);
    expect(ok.code).toBe(0);
    const again = await wms(['server', 'migrate', '--data-dir', dataDir], {}, work);
    expect(again.code).toBe(0);
    const down = await wms(['server', 'migrate', '--db', 'postgres://nobody@127.0.0.1:9/none'], {}, work);
    expect(down.code).toBe(1);
    expect(down.stderr.trim()).toMatch(/^wms: cannot reach the database at postgres:\/\/nobody@127\.0\.0\.1:9\/none/);
  });
});

describe('wms server start and the token bootstrap', () => {
  it('bootstraps a token without a server, then serves with an admin token on disk, drains on SIGTERM', async () => {
    const dataDir = join(work, 'server-data');
    const noServer = { WMS_URL: 'http://127.0.0.1:9', WMS_DATA_DIR: dataDir };
    const issued = await wms(['token', 'issue', '--user', 'zoe', '--vo', 'vo1', '--group', 'vo1_user', '--ttl', '1d'], noServer, work);
    expect(issued.stderr).toMatch(/signed from the database/);
    // How to use it, on stderr (stdout is the token alone).
    expect(issued.stderr).toMatch(/a user token for zoe \(VO vo1, group vo1_user\), expires: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 24 h\)/);
    expect(issued.stderr).toContain('export WMS_TOKEN=');
    expect(issued.code).toBe(0);
    const zoeToken = issued.stdout.trim();
    expect(zoeToken.split('.')).toHaveLength(3);

    const child = spawn(
      process.execPath,
      [
        '--import',
        tsx,
        join(root, 'cli/main.ts'),
        'server',
        'start',
        '--port',
        '0',
        '--data-dir',
        dataDir,
        '--no-agents',
        '--log-level',
        'warn',
      ],
      { cwd: work, env: { PATH: process.env['PATH'] ?? '', HOME: work } },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((done) => child.on('close', done));
    try {
      const deadline = Date.now() + 60_000;
      // The banner is several writes: wait for its last line, not only the first.
      while (!/stop with Ctrl-C/.test(out)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const serverUrl = /listening on (http:\/\/\S+)/.exec(out)![1]!;
      expect(out).toContain(join(dataDir, 'admin.token'));
      expect(out).toMatch(/agents:\s+off \(--no-agents\)/);
      const mode = (await stat(join(dataDir, 'admin.token'))).mode & 0o777;
      expect(mode).toBe(0o600);

      // The laptop case: no WMS_TOKEN, the CLI finds <data-dir>/admin.token.
      const laptop = { WMS_URL: serverUrl, WMS_DATA_DIR: dataDir };
      const who = await wms(['token', 'whoami', '--json'], laptop, work);
      expect(who.code).toBe(0);
      expect(JSON.parse(who.stdout)).toMatchObject({ role: 'admin' });

      // The bootstrapped token was signed with the same key the server uses.
      const zoe = await wms(['token', 'whoami', '--json'], { WMS_URL: serverUrl, WMS_TOKEN: zoeToken }, work);
      expect(JSON.parse(zoe.stdout)).toMatchObject({ role: 'user', user: 'zoe', expiresAt: expect.stringMatching(/Z$/) });
      const zoeText = await wms(['token', 'whoami'], { WMS_URL: serverUrl, WMS_TOKEN: zoeToken }, work);
      expect(zoeText.stdout).toMatch(/^role: user\nuser: zoe\n[\s\S]*\nexpires: \S+Z \(in 24 h\)\n$/);

      // With a server running, issue goes through it.
      const viaServer = await wms(['token', 'issue', '--user', 'yan', '--vo', 'vo1', '--group', 'vo1_user', '--json'], laptop, work);
      expect(viaServer.code).toBe(0);
      expect(viaServer.stderr).toBe('');
      expect(JSON.parse(viaServer.stdout)).toMatchObject({ identity: { user: 'yan', role: 'user' } });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(err).toMatch(/draining/);
  });
});
