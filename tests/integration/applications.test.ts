/**
 * Application templates through the real app, on PGlite and PostgreSQL: listing, one template,
 * submitting a form's values as the caller (rendered JDL stored, per-parameter problems on 400,
 * nothing stored then), and admins storing a template that a restarted app loads again.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AppTemplate } from '../../core/app-template.js';
import { loadTemplates } from '../../services/logic/applications.js';
import { countJobs, createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

const ECHO: AppTemplate = {
  name: 'echo',
  title: 'Echo',
  parameters: [
    { name: 'text', label: 'Text', type: 'string', maxLength: 20 },
    { name: 'cpu', label: 'CPU time', type: 'number', integer: true, min: 100, max: 600, default: 100 },
  ],
  jdl: '[\n  Executable = "/bin/echo";\n  Arguments = "{{text}}";\n  CPUTime = {{cpu}};\n]\n',
};

describeDb('application templates API', (ctx) => {
  let t: TestApp;
  let alice: string;

  beforeAll(async () => {
    await ctx.truncate();
    t = await createTestApp({ db: ctx.handle });
    alice = await t.user('alice');
  });
  afterAll(() => t.close());

  it('lists the shipped templates to any signed-in person, and only to them', async () => {
    const res = await t.call('GET', '/api/applications', alice);
    expect(res.statusCode).toBe(200);
    const names = (res.json() as { applications: AppTemplate[] }).applications.map((a) => a.name);
    expect(names).toEqual(expect.arrayContaining(['hello', 'sweep']));
    const siteAdmin = await t.tokenFor({ role: 'site-admin', user: 'sam', vo: 'vo1', group: 'admins' });
    expect((await t.call('GET', '/api/applications', siteAdmin)).statusCode).toBe(200);
    expect((await t.call('GET', '/api/applications', null)).statusCode).toBe(401);
    expect((await t.call('GET', '/api/applications', await t.pilot(1))).statusCode).toBe(403);
    const sweep = await t.call('GET', '/api/applications/sweep', alice);
    expect((sweep.json() as AppTemplate).parameters.map((p) => p.name)).toEqual(['start', 'step', 'count', 'mode']);
    expect((await t.call('GET', '/api/applications/nope', alice)).statusCode).toBe(404);
  });

  it('submits hello as the caller with the rendered JDL', async () => {
    const res = await t.call('POST', '/api/applications/hello/submit', alice, { values: { who: 'Ann, the tester!' } });
    expect(res.statusCode, res.body).toBe(201);
    const { jobIds, jdl } = res.json() as { jobIds: number[]; jdl: string };
    expect(jobIds).toHaveLength(1);
    const job = (await t.call('GET', `/api/jobs/${jobIds[0]}`, alice)).json() as { owner: string; jdl: string; jobName: string };
    expect(job.owner).toBe('alice');
    expect(job.jobName).toBe('hello');
    expect(job.jdl).toContain('Arguments = "Hello from Ann, the tester!"');
    expect(jdl).toContain('CPUTime = 600');
  });

  it('submits the sweep as count jobs', async () => {
    const res = await t.call('POST', '/api/applications/sweep/submit', alice, {
      values: { start: '5', step: 2.5, count: 3, mode: 'full' },
    });
    expect(res.statusCode, res.body).toBe(201);
    expect((res.json() as { jobIds: number[] }).jobIds).toHaveLength(3);
  });

  it('answers 400 with a problem per parameter and stores nothing', async () => {
    const before = await countJobs(t.db);
    const res = await t.call('POST', '/api/applications/sweep/submit', alice, { values: { count: 1000, mode: 'slow', step: 'x' } });
    expect(res.statusCode).toBe(400);
    const body = res.json() as { code: string; problems: { path: string; message: string }[] };
    expect(body.code).toBe('WMS_VALIDATION');
    expect(body.problems).toEqual([
      { path: 'step', message: 'Step (GeV) must be a number' },
      { path: 'count', message: 'Number of jobs must be at most 100' },
      { path: 'mode', message: 'Mode must be one of fast, full' },
    ]);
    const injected = await t.call('POST', '/api/applications/hello/submit', alice, { values: { who: 'x";\nOwner = "bob' } });
    expect(injected.statusCode).toBe(400);
    expect(await countJobs(t.db)).toBe(before);
  });

  it('lets admins store a template (validated, written to <dataDir>/apps) that a restart loads', async () => {
    const admin = await t.admin();
    expect((await t.call('PUT', '/api/applications/echo', alice, ECHO)).statusCode).toBe(403);
    const bad = await t.call('PUT', '/api/applications/echo', admin, { ...ECHO, parameters: [{ ...ECHO.parameters[1], min: 9, max: 1 }] });
    expect(bad.statusCode).toBe(400);
    const problems = (bad.json() as { problems: { path: string; message: string }[] }).problems;
    expect(problems).toContainEqual(expect.objectContaining({ path: 'parameters[0].max' }));
    expect(problems).toContainEqual(expect.objectContaining({ path: 'jdl', message: 'jdl: {{text}} is not a parameter' }));
    expect((await t.call('PUT', '/api/applications/other', admin, ECHO)).statusCode).toBe(400);

    const ok = await t.call('PUT', '/api/applications/echo', admin, ECHO);
    expect(ok.statusCode, ok.body).toBe(200);
    expect(await readFile(join(t.dataDir, 'apps', 'echo.yaml'), 'utf8')).toContain('name: echo');
    // A value that tries to close the string and set another owner stays one string.
    const sub = await t.call('POST', '/api/applications/echo/submit', alice, { values: { text: 'x"]; Owner = "bob' } });
    expect(sub.statusCode, sub.body).toBe(201);
    const [id] = (sub.json() as { jobIds: number[] }).jobIds;
    const job = (await t.call('GET', `/api/jobs/${id}`, alice)).json() as { owner: string; jdl: string };
    expect(job.owner).toBe('alice');
    expect(job.jdl).toContain('Arguments = "x\\"]; Owner = \\"bob"');

    const again = await createTestApp({ db: ctx.handle, config: { dataDir: t.dataDir } });
    try {
      const list = (await again.call('GET', '/api/applications', alice)).json() as { applications: AppTemplate[] };
      expect(list.applications.find((a) => a.name === 'echo')).toEqual(ECHO);
    } finally {
      await again.app.close();
    }
  });
});

it('refuses a template file with its file name and line or path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wms-apps-'));
  try {
    await writeFile(join(dir, 'broken.yaml'), 'name: broken\ntitle: [unclosed\n');
    await expect(loadTemplates(dir)).rejects.toThrow(/broken\.yaml:\d+:\d+: not valid YAML/);
    await writeFile(join(dir, 'broken.yaml'), 'name: broken\ntitle: B\nparameters: []\njdl: "[ Executable = {{x}}; ]"\n');
    await expect(loadTemplates(dir)).rejects.toThrow(/broken\.yaml: not a valid application template: jdl: \{\{x\}\} is not a parameter/);
    expect(await loadTemplates(join(dir, 'none'))).toEqual([]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
