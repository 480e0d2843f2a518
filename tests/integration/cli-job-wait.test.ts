/**
 * `wms job submit --wait` and `wms job output`, spawned as users run them, against the real app
 * on a random port. The test plays the pilot through the database: it matches the jobs
 * (`matchJob`) and reports their status as a job wrapper would (`reportJobStatus`), and uploads
 * an output archive through the API with a job token.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { create as tarCreate } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobState } from '../../core/job-states.js';
import { ApiClient } from '../../cli/client.js';
import { followJobs, statusFetcher } from '../../cli/commands/job.js';
import { openJobStream } from '../../cli/event-stream.js';
import { createPilots, matchJob, reportJobStatus } from '../../db/index.js';
import { changeFeedOf } from '../../services/plugins/events.js';
import { createTestApp, type TestApp } from '../helpers/app.js';

const root = resolve(import.meta.dirname, '../..');
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A running `wms`: its output so far, a wait for a pattern in its stdout, and its exit. */
function live(args: string[], env: Record<string, string>, cwd: string) {
  const child = spawn(process.execPath, ['--import', tsx, join(root, 'cli/main.ts'), ...args], {
    cwd,
    env: { PATH: process.env['PATH'] ?? '', HOME: cwd, XDG_CONFIG_HOME: join(cwd, '.no-config'), ...env },
  });
  const r: Run = { code: null, stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (r.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (r.stderr += d.toString()));
  const exited = new Promise<Run>((done, fail) => {
    child.on('error', fail);
    child.on('close', (code) => done({ ...r, code }));
  });
  return {
    output: r,
    exited,
    async waitFor(pattern: RegExp, where: 'stdout' | 'stderr' = 'stdout', ms = 30_000): Promise<RegExpExecArray> {
      const deadline = Date.now() + ms;
      for (;;) {
        const m = pattern.exec(r[where]);
        if (m) return m;
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`no ${pattern} in ${where}:\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
        }
        await new Promise((ok) => setTimeout(ok, 50));
      }
    },
  };
}

const wms = (args: string[], env: Record<string, string>, cwd: string) => live(args, env, cwd).exited;

let t: TestApp;
let work: string;
let env: Record<string, string>;
let pilotId: number;

const resource = { site: 'LCG.Alpha.org', tags: [], requiredTags: [], processors: 1, ramMb: 4096, gpus: 0, cpuWork: 10_000_000, vo: 'vo1' };

/** Matches every job of `ids` to the test's pilot (the tests leave no other job waiting). */
async function matchAll(ids: readonly number[]): Promise<void> {
  const want = new Set(ids);
  while (want.size > 0) {
    const m = await matchJob(t.db, resource, { pilotId });
    expect(m, `jobs ${[...want].join(' ')} should be waiting`).not.toBeNull();
    expect(want.has(m!.id), `job ${m!.id} matched, not one of ${ids.join(' ')}`).toBe(true);
    want.delete(m!.id);
  }
}

/** What the job wrapper reports. */
async function report(id: number, status: JobState, minorStatus: string): Promise<void> {
  const r = await reportJobStatus(t.db, id, pilotId, { status, minorStatus }, `JobWrapper:pilot ${pilotId}`);
  expect(r, `job ${id} -> ${status}`).toMatchObject({ accepted: true, status });
}

async function jdlFile(name: string, jobName = name): Promise<string> {
  await writeFile(join(work, name), `[\n  Executable = "run.sh";\n  JobName = "${jobName}";\n  CPUTime = 3600;\n]\n`);
  return name;
}

beforeAll(async () => {
  t = await createTestApp();
  const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
  work = await mkdtemp(join(tmpdir(), 'wms-cli-wait-'));
  env = { WMS_URL: url, WMS_TOKEN: await t.user('alice') };
  [pilotId] = (await createPilots(t.db, [
    { stamp: 'wait-pilot', site: 'LCG.Alpha.org', ce: 'ce01.alpha.org', ceType: 'local', queue: 'default', queueId: null, vo: 'vo1' },
  ])) as [number];
});
afterAll(async () => {
  await t?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('wms job submit --wait', () => {
  it('prints each status change and exits 0 when the job is Done', async () => {
    const f = live(['job', 'submit', await jdlFile('one.jdl'), '--wait'], env, work);
    const id = Number((await f.waitFor(/^one\.jdl: job (\d+)$/m))[1]);
    await f.waitFor(new RegExp(`^${id}  Waiting  \\(Pilot Agent Submission\\)$`, 'm'));
    await matchAll([id]);
    await f.waitFor(new RegExp(`^${id}  Waiting -> Matched  \\(Assigned\\)$`, 'm'));
    await report(id, 'Running', 'Application');
    await f.waitFor(new RegExp(`^${id}  Matched -> Running  \\(Application\\)$`, 'm'));
    await report(id, 'Completing', 'Uploading Output Sandbox');
    await f.waitFor(/Running -> Completing/);
    await report(id, 'Done', 'Execution Complete');
    const r = await f.exited;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        `one.jdl: job ${id}`,
        `${id}  Waiting  (Pilot Agent Submission)`,
        `${id}  Waiting -> Matched  (Assigned)`,
        `${id}  Matched -> Running  (Application)`,
        `${id}  Running -> Completing  (Uploading Output Sandbox)`,
        `${id}  Completing -> Done  (Execution Complete)`,
        `job ${id} Done`,
        '',
      ].join('\n'),
    );
  });

  it('exits 1 when the job Failed, naming it with its minor status', async () => {
    const f = live(['job', 'submit', await jdlFile('fails.jdl'), '--wait'], env, work);
    const id = Number((await f.waitFor(/^fails\.jdl: job (\d+)$/m))[1]);
    await f.waitFor(/Waiting/);
    await matchAll([id]);
    await report(id, 'Running', 'Application');
    await f.waitFor(/-> Running/);
    await report(id, 'Failed', 'Application Finished With Errors');
    const r = await f.exited;
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^${id}  Running -> Failed  \\(Application Finished With Errors\\)$`, 'm'));
    expect(r.stderr).toBe(`wms: 1 of 1 job did not end Done:\n  ${id}  Failed  (Application Finished With Errors)\n`);
  });

  it('many jobs: one line of counts when they change; a killed job makes it exit 1', async () => {
    const files: string[] = [];
    for (let i = 0; i < 12; i++) files.push(await jdlFile(`many-${i}.jdl`));
    const f = live(['job', 'submit', ...files, '--wait'], env, work);
    await f.waitFor(/^12 jobs: 12 Waiting$/m);
    const ids = [...f.output.stdout.matchAll(/^many-\d+\.jdl\s+(\d+)$/gm)].map((m) => Number(m[1]));
    expect(ids).toHaveLength(12);
    await matchAll(ids);
    await f.waitFor(/^12 jobs: 12 Matched$/m);
    for (const id of ids.slice(0, 5)) await report(id, 'Running', 'Application');
    await f.waitFor(/^12 jobs: 7 Matched, 5 Running$/m);
    for (const id of ids.slice(0, 11)) {
      if (!ids.slice(0, 5).includes(id)) await report(id, 'Running', 'Application');
      await report(id, 'Done', 'Execution Complete');
    }
    const killed = ids[11]!;
    const kill = await t.call('POST', '/api/jobs/kill', env['WMS_TOKEN']!, { ids: [killed] });
    expect(kill.statusCode).toBe(200);
    const r = await f.exited;
    expect(r.code).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('12 jobs: 11 Done, 1 Killed');
    // One line per change of the counts, never one line per job.
    const progress = lines.filter((l) => l.startsWith('12 jobs: '));
    expect(new Set(progress).size).toBe(progress.length);
    expect(r.stderr).toMatch(new RegExp(`^wms: 1 of 12 jobs did not end Done:\\n  ${killed}  Killed  \\(.+\\)\\n$`));
  });

  it('--timeout gives up with a clear message and exit code 1; the job goes on', async () => {
    const started = Date.now();
    const r = await wms(['job', 'submit', await jdlFile('slow.jdl'), '--wait', '--timeout', '2'], env, work);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(r.code).toBe(1);
    const id = Number(/^slow\.jdl: job (\d+)$/m.exec(r.stdout)![1]);
    expect(r.stderr).toMatch(
      new RegExp(
        `^wms: gave up after 2 s: 1 of 1 job is not final yet \\(1 Waiting\\); they go on \\("wms job status ID\\.\\.\\." shows them\\)\\n  ${id}  Waiting  \\(Pilot Agent Submission\\)\\n$`,
      ),
    );
    const st = (await t.call('GET', `/api/jobs/${id}`, env['WMS_TOKEN']!)).json<{ status: string }>();
    expect(st.status).toBe('Waiting');
    expect((await t.call('POST', '/api/jobs/kill', env['WMS_TOKEN']!, { ids: [id] })).statusCode).toBe(200);
  });

  it('--json: the progress on stderr, one JSON answer on stdout', async () => {
    const f = live(['job', 'submit', await jdlFile('json.jdl'), '--wait', '--json'], env, work);
    const id = Number((await f.waitFor(/^(\d+) {2}Waiting/m, 'stderr'))[1]);
    await matchAll([id]);
    await report(id, 'Running', 'Application');
    await report(id, 'Done', 'Execution Complete');
    const r = await f.exited;
    expect(r.code).toBe(0);
    const answer = JSON.parse(r.stdout) as {
      jobIds: number[];
      jobs: { id: number; status: string }[];
      notFound: number[];
      timedOut: boolean;
    };
    expect(answer).toMatchObject({ jobIds: [id], notFound: [], timedOut: false });
    expect(answer.jobs).toHaveLength(1);
    expect(answer.jobs[0]).toMatchObject({ id, status: 'Done', minorStatus: 'Execution Complete', jobName: 'json.jdl' });
    expect(r.stderr).toMatch(new RegExp(`-> Done  \\(Execution Complete\\)\\njob ${id} Done\\n$`));
  });

  it('follows over the event stream: the events route saw the subscription', async () => {
    const feed = changeFeedOf(t.db);
    const before = feed.stats.subscriptions;
    const f = live(['job', 'submit', await jdlFile('stream.jdl'), '--wait'], env, work);
    const id = Number((await f.waitFor(/^stream\.jdl: job (\d+)$/m))[1]);
    await f.waitFor(new RegExp(`^${id}  Waiting  \\(Pilot Agent Submission\\)$`, 'm'));
    expect(feed.stats.subscriptions).toBe(before + 1);
    expect(feed.subscribers.size).toBe(1);
    await matchAll([id]);
    await report(id, 'Running', 'Application');
    await report(id, 'Done', 'Execution Complete');
    const r = await f.exited;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${id}  Waiting -> Matched  \\(Assigned\\)\n${id}  Matched -> Running  \\(Application\\)\n`, 'm'));
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe(`job ${id} Done`);
  });

  it('falls back to polling when the stream cannot be opened', async () => {
    expect(await openJobStream(env['WMS_URL']!, 'not-a-token', [1])).toBeNull();
    const sub = await t.call('POST', '/api/jobs', env['WMS_TOKEN']!, { jdl: '[ Executable = "run.sh"; JobName = "fallback"; ]' });
    const id = sub.json<{ jobIds: number[] }>().jobIds[0]!;
    const client = new ApiClient({ url: env['WMS_URL']!, token: env['WMS_TOKEN']! });
    const seen: string[] = [];
    const following = followJobs([id], statusFetcher(client), {
      deadline: Date.now() + 30_000,
      intervalMs: 100,
      openStream: (ids) => openJobStream(env['WMS_URL']!, 'not-a-token', ids),
      onChange: (changes) => seen.push(...changes.map((c) => c.to)),
    });
    await matchAll([id]);
    await report(id, 'Running', 'Application');
    await report(id, 'Done', 'Execution Complete');
    const r = await following;
    expect(r).toMatchObject({ timedOut: false, notFound: [] });
    expect(r.jobs[0]).toMatchObject({ id, status: 'Done', jobName: 'fallback' });
    expect(seen.at(-1)).toBe('Done');
  });

  it('--timeout without --wait is a usage error', async () => {
    const r = await wms(['job', 'submit', 'one.jdl', '--timeout', '5'], env, work);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^wms: job submit: --timeout goes with --wait/);
  });
});

describe('wms job output', () => {
  /** A tar.gz of `files` (name -> content), built in a directory of its own. */
  async function archive(files: Record<string, string>, options: { preservePaths?: boolean } = {}): Promise<Buffer> {
    const src = await mkdtemp(join(work, 'src-'));
    for (const [name, content] of Object.entries(files)) {
      await mkdir(join(src, name, '..'), { recursive: true });
      await writeFile(join(src, name), content);
    }
    const out = join(src, 'archive.tar.gz');
    await tarCreate({ gzip: true, file: out, cwd: src, portable: true, ...options }, Object.keys(files));
    return readFile(out);
  }

  /**
   * Submits a job and brings it to `status` as a pilot would: Running first, then, with an
   * output archive, Completing and the upload (a job token dies with its job's final state).
   */
  async function jobIn(status: JobState, name: string, output?: Buffer): Promise<number> {
    const sub = await t.call('POST', '/api/jobs', env['WMS_TOKEN']!, { jdl: `[ Executable = "run.sh"; JobName = "${name}"; ]` });
    const id = sub.json<{ jobIds: number[] }>().jobIds[0]!;
    await matchAll([id]);
    await report(id, 'Running', 'Application');
    if (output) {
      await report(id, 'Completing', 'Uploading Output Sandbox');
      await uploadOutput(id, output);
    }
    if (status !== 'Running') await report(id, status, status === 'Done' ? 'Execution Complete' : 'Application Finished With Errors');
    return id;
  }

  /** Uploads an output archive of job `id` with its job token, as the job wrapper does. */
  async function uploadOutput(id: number, bytes: Buffer): Promise<string> {
    const sha = createHash('sha256').update(bytes).digest('hex');
    const token = await t.tokenFor({ role: 'job', user: 'alice', vo: 'vo1', group: 'vo1_user', jobId: id, pilotId });
    const put = await t.call('PUT', `/api/sandboxes/${sha}`, token, bytes, { 'content-type': 'application/gzip' });
    expect(put.statusCode, put.body).toBe(201);
    return sha;
  }

  it('unpacks the output sandbox into ./job-<ID>-output and prints the files', async () => {
    const id = await jobIn('Done', 'with-output', await archive({ 'std.out': 'hello\n', 'results/histo.dat': '1 2 3\n' }));
    const r = await wms(['job', 'output', String(id)], env, work);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const dir = `job-${id}-output`;
    expect(r.stdout).toMatch(new RegExp(`^${dir}/std\\.out$`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^${dir}/results/histo\\.dat$`, 'm'));
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe(`job ${id} (Done): 2 files, 12 B, from 1 output sandbox into ${dir}`);
    expect(await readFile(join(work, dir, 'std.out'), 'utf8')).toBe('hello\n');
    expect(await readFile(join(work, dir, 'results/histo.dat'), 'utf8')).toBe('1 2 3\n');

    const j = await wms(['job', 'output', String(id), '--dir', 'elsewhere', '--json'], env, work);
    expect(j.code).toBe(0);
    const answer = JSON.parse(j.stdout) as {
      jobId: number;
      status: string;
      dir: string;
      sandboxes: { sha256: string; size: number }[];
      files: string[];
    };
    expect(answer).toMatchObject({ jobId: id, status: 'Done', dir: join(work, 'elsewhere') });
    expect(answer.sandboxes).toHaveLength(1);
    expect(answer.files.sort()).toEqual(['results/histo.dat', 'std.out']);
    expect(await readFile(join(work, 'elsewhere', 'std.out'), 'utf8')).toBe('hello\n');
  });

  it('no output: says whether the job is still running or ended without one', async () => {
    const running = await jobIn('Running', 'still-running');
    const r1 = await wms(['job', 'output', String(running)], env, work);
    expect(r1.code).toBe(1);
    expect(r1.stderr.trim()).toBe(`wms: job ${running} is Running: no output yet`);
    await report(running, 'Done', 'Execution Complete');
    const r2 = await wms(['job', 'output', String(running)], env, work);
    expect(r2.code).toBe(1);
    expect(r2.stderr.trim()).toBe(`wms: job ${running} is Done but uploaded no output sandbox`);
    expect(await readdir(work)).not.toContain(`job-${running}-output`);
  });

  it('an unsafe archive is refused and nothing is written; another user cannot read the job', async () => {
    await mkdir(join(work, 'inner'), { recursive: true });
    const src = await mkdtemp(join(work, 'inner', 'src-'));
    await writeFile(join(src, 'ok.txt'), 'fine\n');
    await writeFile(join(work, 'inner', 'escape.txt'), 'outside\n');
    const file = join(src, 'bad.tar.gz');
    await tarCreate({ gzip: true, file, cwd: src, preservePaths: true }, ['ok.txt', '../escape.txt']);
    const id = await jobIn('Failed', 'unsafe-output', await readFile(file));
    const r = await wms(['job', 'output', String(id), '--dir', 'unsafe'], env, work);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^wms: output sandbox [0-9a-f]{12} of job \d+: unsafe archive, nothing unpacked into /);
    expect(r.stderr).toContain('../escape.txt');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await readdir(work)).not.toContain('unsafe');
    expect(await readdir(work)).not.toContain('escape.txt');

    const bob = await wms(['job', 'output', String(id)], { ...env, WMS_TOKEN: await t.user('bob') }, work);
    expect(bob.code).toBe(1);
    expect(bob.stderr.trim()).toBe(`wms: no job ${id}`);
  });
});
