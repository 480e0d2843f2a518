/**
 * Issue 11, the services' side of DIRAC users' JDLs (points 6, 9 and 10), through the API
 * (`app.inject`, on PGlite and on PostgreSQL) and through the real `wms` command line
 * (spawned, against a server listening on a random port):
 *
 * - `%j` becomes the job id in the job record (name and group shown by status and list), as
 *   DIRAC's JobDB replaces it in the JDL before it reads the name from it; plain and parametric;
 * - `Site` names are checked at submission against the site registry, read per submission (a
 *   site registered through another replica is known at once): an unknown one is a 400 at its
 *   line and column with a "did you mean", and nothing is stored; `allowUnregisteredSites`
 *   accepts any name (the other checks on it still apply);
 * - several parametric JDLs in one submission (`jdls`, `wms job submit a.jdl b.jdl`): each
 *   expanded, all stored or none, a problem named by its file, line and column.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveServiceConfig } from '../../core/config.js';
import { getJobs, upsertSite } from '../../db/index.js';
import { countJobs, createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

interface Problem {
  message: string;
  line?: number;
  column?: number;
}
interface ErrorBody {
  code: string;
  message: string;
  problems?: Problem[];
}
interface Summary {
  id: number;
  jobName: string;
  jobGroup: string;
  site: string;
  owner: string;
}

const CERN = 'LCG.CERN.ch';
const JINR = 'LCG.JINR.ru';

/** A plain JDL pinned to `site` (line 3, its value at column 10). */
const pinned = (site: string, name = 'pinned') => `[\n  Executable = "run.sh";\n  Site = "${site}";\n  JobName = "${name}";\n]`;

/** A parametric JDL of `values.length` jobs named `<prefix>_%j_%n`. */
const sweep = (prefix: string, values: string[], extra = '') =>
  `[\n  Executable = "run.sh";\n  JobName = "${prefix}_%j_%n";\n  JobGroup = "${prefix}_group";\n  Arguments = "%s";\n` +
  `  Parameters = { ${values.map((v) => `"${v}"`).join(', ')} };\n${extra}]`;

describeDb('DIRAC JDLs through the jobs API', (ctx) => {
  let t: TestApp;
  /** A second replica on the same database. */
  let other: TestApp;
  let alice: string;
  let bob: string;

  async function submit(app: TestApp, token: string, body: unknown): Promise<{ jobIds: number[]; jobsPerJdl: number[] }> {
    const res = await app.call('POST', '/api/jobs', token, body);
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  }

  async function refused(app: TestApp, token: string, body: unknown): Promise<ErrorBody> {
    const before = await countJobs(app.db);
    const res = await app.call('POST', '/api/jobs', token, body);
    expect(res.statusCode, res.body).toBe(400);
    expect(res.body).not.toMatch(/\n\s+at |node_modules/);
    expect(await countJobs(app.db)).toBe(before); // nothing stored
    return res.json<ErrorBody>();
  }

  async function statusOf(token: string, ids: number[]): Promise<Summary[]> {
    const res = await t.call('GET', `/api/jobs/status?ids=${ids.join(',')}`, token);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ jobs: Summary[] }>().jobs;
  }

  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
    other = await createTestApp({ db: ctx.handle });
    alice = await t.user('alice');
    bob = await t.user('bob');
    for (const name of [CERN, JINR]) await upsertSite(t.db, { name });
  });
  afterAll(async () => {
    await other?.close();
    await t?.close();
  });

  describe('%j in the job record (point 6)', () => {
    it('a plain JDL: name and group shown by status and list carry the id, as the stored JDL does', async () => {
      const text = '[\n  Executable = "run.sh";\n  JobName = "run_%j";\n  JobGroup = "grp_%j";\n]';
      const { jobIds } = await submit(t, alice, { jdl: text });
      const id = jobIds[0]!;
      const [job] = await statusOf(alice, [id]);
      expect(job).toMatchObject({ id, jobName: `run_${id}`, jobGroup: `grp_${id}` });

      const list = await t.call('GET', `/api/jobs?search=${encodeURIComponent(`run_${id}`)}`, alice);
      expect(list.json<{ jobs: Summary[] }>().jobs.map((j) => [j.id, j.jobName])).toEqual([[id, `run_${id}`]]);
      const byGroup = await t.call('GET', `/api/jobs?group=grp_${id}`, alice);
      expect(byGroup.json<{ jobs: Summary[] }>().jobs.map((j) => j.id)).toEqual([id]);
      // Nothing still says %j: not the listing, not the stored JDL.
      expect((await t.call('GET', '/api/jobs?search=%25j', alice)).json<{ total: number }>().total).toBe(0);
      const detail = (await t.call('GET', `/api/jobs/${id}`, alice)).json<{ jdl: string; jobName: string }>();
      expect(detail.jobName).toBe(`run_${id}`);
      expect(detail.jdl).toContain(`"run_${id}"`);
      expect(detail.jdl).not.toContain('%j');
      // The record in the database itself, as the dashboard reads it.
      const [row] = await getJobs(t.db, [id]);
      expect([row!.jobName, row!.jobGroup]).toEqual([`run_${id}`, `grp_${id}`]);
    });

    it('a parametric JDL ("sweep_%j_%n"): each job its own id and number', async () => {
      const { jobIds, jobsPerJdl } = await submit(t, alice, { jdl: sweep('sweep', ['a', 'b', 'c']) });
      expect(jobIds).toHaveLength(3);
      expect(jobsPerJdl).toEqual([3]);
      const jobs = await statusOf(alice, jobIds);
      expect(jobs.map((j) => j.jobName)).toEqual(jobIds.map((id, n) => `sweep_${id}_${n}`));
      const list = await t.call('GET', '/api/jobs?group=sweep_group', alice);
      expect(
        list
          .json<{ jobs: Summary[] }>()
          .jobs.map((j) => j.jobName)
          .sort(),
      ).toEqual(jobIds.map((id, n) => `sweep_${id}_${n}`).sort());
    });

    it("another user sees none of them (the ids are not a way into another's jobs)", async () => {
      const { jobIds } = await submit(t, alice, { jdl: '[ Executable = "run.sh"; JobName = "mine_%j"; ]' });
      const res = await t.call('GET', `/api/jobs/status?ids=${jobIds[0]}`, bob);
      expect(res.json()).toEqual({ jobs: [], notFound: jobIds });
      expect((await t.call('GET', `/api/jobs?search=mine_${jobIds[0]}`, bob)).json<{ total: number }>().total).toBe(0);
    });
  });

  describe('sites checked against the registry (point 9)', () => {
    it('a registered site, and ANY, are accepted', async () => {
      const { jobIds } = await submit(t, alice, { jdl: pinned(CERN) });
      expect((await statusOf(alice, jobIds))[0]!.site).toBe(CERN);
      const any = await submit(t, alice, { jdl: pinned('ANY') });
      expect((await statusOf(alice, any.jobIds))[0]!.site).toBe('ANY');
    });

    it('an unknown site: 400 at its line and column, naming it, with "did you mean"; nothing stored', async () => {
      const body = await refused(t, alice, { jdl: pinned('LCG.CERN.cn') });
      expect(body.code).toMatch(/^WMS_JDL_/);
      const problem = body.problems!.find((p) => p.message.includes('LCG.CERN.cn'));
      expect(problem, JSON.stringify(body)).toBeDefined();
      expect(problem).toMatchObject({ line: 3, column: 10 });
      expect(problem!.message).toMatch(/did you mean/i);
      expect(problem!.message).toContain(CERN);
    });

    it('an unknown site in a list with a registered one is refused too', async () => {
      const text = `[\n  Executable = "run.sh";\n  Site = { "${CERN}", "LCG.Nowhere.org" };\n]`;
      const body = await refused(t, alice, { jdl: text });
      const about = body.problems!.filter((p) => p.message.includes('LCG.Nowhere.org'));
      expect(about, JSON.stringify(body)).toHaveLength(1);
      expect(about[0]!.line).toBe(3);
    });

    it('in a parametric JDL and in a list of JDLs: refused whole, the JDL named', async () => {
      const para = await refused(t, alice, { jdl: sweep('bad', ['a', 'b'], '  Site = "LCG.Unknown.org";\n') });
      expect(para.problems!.some((p) => p.message.includes('LCG.Unknown.org') && p.line === 7)).toBe(true);

      const list = await refused(t, alice, { jdls: [pinned(CERN), pinned('LCG.JINR.ru.fake')] });
      const problem = list.problems!.find((p) => p.message.includes('LCG.JINR.ru.fake'));
      expect(problem, JSON.stringify(list)).toMatchObject({ line: 3, column: 10 });
      expect(problem!.message).toMatch(/^JDL #2: /);
    });

    it("unquoted, as DIRAC's job API writes them: a registered site accepted, an unknown one refused at the word", async () => {
      const ok = await submit(t, alice, { jdl: `Executable = dirac-jobexec;\nJobName = api_%j;\nSite = ${CERN};\n` });
      const [job] = await statusOf(alice, ok.jobIds);
      expect(job).toMatchObject({ site: CERN, jobName: `api_${ok.jobIds[0]}` });
      const body = await refused(t, alice, { jdl: `Executable = dirac-jobexec;\nSite = LCG.CERN.cn;\n` });
      const problem = body.problems!.find((p) => p.message.includes('LCG.CERN.cn'));
      expect(problem, JSON.stringify(body)).toMatchObject({ line: 2, column: 8 });
    });

    it('a site registered through another replica is known at once (no stale cache)', async () => {
      const name = `LCG.Late${randomBytes(3).toString('hex')}.org`;
      await refused(t, alice, { jdl: pinned(name) });
      const admin = await other.admin();
      const put = await other.call('PUT', '/api/sites', admin, {
        sites: [{ name, computingElements: [{ name: `ce.${name}`, type: 'slurm', queues: [{ name: 'long' }] }] }],
      });
      expect(put.statusCode, put.body).toBe(200);
      const { jobIds } = await submit(t, alice, { jdl: pinned(name) });
      expect((await statusOf(alice, jobIds))[0]!.site).toBe(name);
    });

    it('a banned site is still a registered name: accepted, the job waits for the ban to end', async () => {
      const admin = await t.admin();
      expect((await t.call('POST', `/api/sites/${JINR}/ban`, admin, { reason: 'downtime' })).statusCode).toBe(200);
      await submit(t, alice, { jdl: pinned(JINR) });
      expect((await t.call('POST', `/api/sites/${JINR}/allow`, admin)).statusCode).toBe(200);
    });
  });

  describe('allowUnregisteredSites', () => {
    let open: TestApp;
    beforeAll(async () => {
      open = await createTestApp({ db: ctx.handle, config: { allowUnregisteredSites: true } });
    });
    afterAll(async () => {
      await open?.close();
    });

    it('accepts a site the registry does not list yet', async () => {
      const { jobIds } = await submit(open, await open.user('alice'), { jdl: pinned('LCG.Future.org') });
      expect((await statusOf(alice, jobIds))[0]!.site).toBe('LCG.Future.org');
    });

    it('still refuses what no site name may be (too long), with its position; nothing stored', async () => {
      const body = await refused(open, await open.user('alice'), { jdl: pinned(randomBytes(2500).toString('hex')) });
      expect(body.problems!.some((p) => p.line === 3 && p.column === 10 && /longer than|characters/.test(p.message))).toBe(true);
    });

    it('is read from the config file and from WMS_ALLOW_UNREGISTERED_SITES', () => {
      expect(resolveServiceConfig({}).allowUnregisteredSites).toBe(false);
      expect(resolveServiceConfig({ file: { allowUnregisteredSites: true } }).allowUnregisteredSites).toBe(true);
      expect(resolveServiceConfig({ env: { WMS_ALLOW_UNREGISTERED_SITES: '1' } }).allowUnregisteredSites).toBe(true);
      expect(
        resolveServiceConfig({ file: { allowUnregisteredSites: true }, env: { WMS_ALLOW_UNREGISTERED_SITES: 'off' } })
          .allowUnregisteredSites,
      ).toBe(false);
      expect(() => resolveServiceConfig({ env: { WMS_ALLOW_UNREGISTERED_SITES: 'maybe' } })).toThrow(/WMS_ALLOW_UNREGISTERED_SITES/);
      expect(() => resolveServiceConfig({ file: { allowUnregisteredSites: 'yes' } })).toThrow(/allowUnregisteredSites/);
    });
  });

  describe('several parametric JDLs in one submission (point 10)', () => {
    it('each expanded, in order; jobsPerJdl says which ids are whose', async () => {
      const { jobIds, jobsPerJdl } = await submit(t, alice, {
        jdls: [sweep('first', ['a', 'b', 'c']), pinned(CERN, 'plain'), sweep('second', ['x', 'y'])],
      });
      expect(jobsPerJdl).toEqual([3, 1, 2]);
      const jobs = await statusOf(alice, jobIds);
      expect(jobs.map((j) => j.jobName)).toEqual([
        ...jobIds.slice(0, 3).map((id, n) => `first_${id}_${n}`),
        'plain',
        ...jobIds.slice(4).map((id, n) => `second_${id}_${n}`),
      ]);
    });

    it('a bad second JDL: nothing of the first is stored, the problem labelled JDL #2 at its line', async () => {
      const body = await refused(t, alice, { jdls: [sweep('ok', ['a', 'b']), sweep('bad', ['a', 'b'], '  CPUTime = 5;\n')] });
      const problem = body.problems!.find((p) => p.message.includes('CPUTime'));
      expect(problem, JSON.stringify(body)).toMatchObject({ line: 7 });
      expect(problem!.message).toMatch(/^JDL #2: /);
    });

    it('the total is bounded by maxJobsPerSubmission across the list', async () => {
      const small = await createTestApp({ db: ctx.handle, config: { jobLimits: { ...t.config.jobLimits, maxJobsPerSubmission: 4 } } });
      try {
        await refused(small, await small.user('alice'), { jdls: [sweep('m', ['a', 'b', 'c']), sweep('n', ['a', 'b'])] });
        const ok = await submit(small, await small.user('alice'), { jdls: [sweep('m', ['a', 'b']), sweep('n', ['a', 'b'])] });
        expect(ok.jobsPerJdl).toEqual([2, 2]);
      } finally {
        await small.close();
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// The real command line

const root = resolve(import.meta.dirname, '../..');
/** tsx's loader by absolute URL: the CLI runs in a temporary directory outside the project. */
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

function wms(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
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

describeDb('wms job submit with several parametric files', (ctx) => {
  let t: TestApp;
  let work: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
    await upsertSite(t.db, { name: CERN });
    const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    work = await mkdtemp(join(tmpdir(), 'wms-dirac-cli-'));
    env = { WMS_URL: url, WMS_TOKEN: await t.user('alice') };
    await writeFile(join(work, 'run.sh'), '#!/bin/sh\necho "$@"\n');
    await writeFile(join(work, 'a.jdl'), sweep('cli_a', ['1', '2', '3']));
    await writeFile(join(work, 'b.jdl'), sweep('cli_b', ['x', 'y'], `  Site = "${CERN}";\n`));
    // The second file's problems: an unknown site (line 7) and a CPU time out of range (line 8).
    await writeFile(join(work, 'bad.jdl'), sweep('cli_bad', ['x', 'y'], '  Site = "LCG.CERN.cj";\n  CPUTime = 5;\n'));
  });
  afterAll(async () => {
    await t?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('a.jdl b.jdl: every job of both stored; the table gives each file its ids', async () => {
    const r = await wms(['job', 'submit', 'a.jdl', 'b.jdl'], env, work);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const m = /^FILE\s+JOB\na\.jdl\s+(\d+)-(\d+)\nb\.jdl\s+(\d+) (\d+)\n$/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const [a0, a2, b0, b1] = m!.slice(1).map(Number) as [number, number, number, number];
    expect([a2 - a0, b0 - a2, b1 - b0]).toEqual([2, 1, 1]);

    const st = await wms(['job', 'status', String(a0), String(a0 + 1), String(a2), String(b0), String(b1), '--json'], env, work);
    expect(st.code).toBe(0);
    const jobs = (JSON.parse(st.stdout) as { jobs: Summary[] }).jobs;
    expect(jobs.map((j) => [j.jobName, j.site])).toEqual([
      [`cli_a_${a0}_0`, 'ANY'],
      [`cli_a_${a0 + 1}_1`, 'ANY'],
      [`cli_a_${a2}_2`, 'ANY'],
      [`cli_b_${b0}_0`, CERN],
      [`cli_b_${b1}_1`, CERN],
    ]);
    const list = await wms(['job', 'list', '--group', 'cli_b_group'], env, work);
    expect(list.stdout).toContain(`cli_b_${b0}_0`);
    expect(list.stdout).not.toContain('%j');
  });

  it('a.jdl bad.jdl: refused whole, each problem printed as bad.jdl:line:column, nothing stored', async () => {
    const before = await countJobs(t.db);
    const r = await wms(['job', 'submit', 'a.jdl', 'bad.jdl'], env, work);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^wms: bad\.jdl: /);
    expect(r.stderr).toMatch(/\n {2}bad\.jdl:7:10: .*LCG\.CERN\.cj.*did you mean.*LCG\.CERN\.ch/i);
    expect(r.stderr).toMatch(/\n {2}bad\.jdl:8:\d+: .*CPUTime/);
    expect(r.stderr).not.toMatch(/a\.jdl:\d/);
    expect(r.stderr).not.toMatch(/JDL #\d/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await countJobs(t.db)).toBe(before);
  });

  it('bad.jdl first: the problems name it, not the good file after it', async () => {
    const r = await wms(['job', 'submit', 'bad.jdl', 'b.jdl'], env, work);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\n {2}bad\.jdl:7:10: /);
    expect(r.stderr).not.toMatch(/b\.jdl:\d/);
  });
});
