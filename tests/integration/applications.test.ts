/**
 * Application templates through the real app, on PGlite and PostgreSQL: listing, one template,
 * submitting a form's values as the caller (rendered JDL stored, per-parameter problems on 400,
 * nothing stored then); admins storing templates as JSON or YAML text (kept as written) in the
 * database, refusals (bad YAML with line and column, every template problem with its path, too
 * large, not an admin, unknown names) with nothing written; removing; shipped templates
 * inserted when missing at start, never over an admin's edit. On PostgreSQL: two replicas on
 * one database see the same templates at once.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { AppTemplate } from '../../core/app-template.js';
import { buildContext } from '../../services/app.js';
import { defaultAppsDir, installShippedApplications, loadTemplates } from '../../services/logic/applications.js';
import { countJobs, createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb, describePg } from '../helpers/db.js';

const ECHO: AppTemplate = {
  name: 'echo',
  title: 'Echo',
  parameters: [
    { name: 'text', label: 'Text', type: 'string', maxLength: 20 },
    { name: 'cpu', label: 'CPU time', type: 'number', integer: true, min: 100, max: 600, default: 100 },
  ],
  jdl: '[\n  Executable = "/bin/echo";\n  Arguments = "{{text}}";\n  CPUTime = {{cpu}};\n]\n',
};

/** ECHO as YAML text with comments (kept as written). */
const ECHO_YAML = `# Echo: says back what it is given.\n${stringify(ECHO)}# the end\n`;
const YAML = { 'content-type': 'application/yaml' };

interface Problems {
  code: string;
  message: string;
  problems: { path?: string; message: string; line?: number; column?: number }[];
}

const names = (res: { json(): unknown }) => (res.json() as { applications: AppTemplate[] }).applications.map((a) => a.name);

describeDb('application templates API', (ctx) => {
  let t: TestApp;
  let alice: string;
  let admin: string;

  beforeAll(async () => {
    await ctx.truncate();
    t = await createTestApp({ db: ctx.handle });
    alice = await t.user('alice');
    admin = await t.admin();
  });
  afterAll(() => t.close());

  it('lists the shipped templates to any signed-in person, and only to them', async () => {
    const res = await t.call('GET', '/api/applications', alice);
    expect(res.statusCode).toBe(200);
    expect(names(res)).toEqual(['hello', 'sweep']);
    const siteAdmin = await t.tokenFor({ role: 'site-admin', user: 'sam', vo: 'vo1', group: 'admins' });
    expect((await t.call('GET', '/api/applications', siteAdmin)).statusCode).toBe(200);
    expect((await t.call('GET', '/api/applications', null)).statusCode).toBe(401);
    expect((await t.call('GET', '/api/applications', await t.pilot(1))).statusCode).toBe(403);
    const sweep = await t.call('GET', '/api/applications/sweep', alice);
    expect((sweep.json() as AppTemplate).parameters.map((p) => p.name)).toEqual(['start', 'step', 'count', 'mode']);
    const unknown = await t.call('GET', '/api/applications/swep', alice);
    expect(unknown.statusCode).toBe(404);
    expect((unknown.json() as Problems).message).toBe('no application swep (did you mean sweep?)');
  });

  it('keeps a shipped template as its file says, comments and all', async () => {
    const res = await t.call('GET', '/api/applications/hello/yaml', alice);
    expect(res.statusCode).toBe(200);
    const body = res.json() as { name: string; yaml: string; source: string; updatedBy: string; updatedAt: string };
    expect(body).toMatchObject({ name: 'hello', source: 'package', updatedBy: '' });
    expect(body.yaml).toBe(await readFile(join(defaultAppsDir(), 'hello.yaml'), 'utf8'));
    expect(Number.isNaN(Date.parse(body.updatedAt))).toBe(false);
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
    const body = res.json() as Problems;
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

  it('lets admins store a template as JSON, validated, in the database (no file)', async () => {
    expect((await t.call('PUT', '/api/applications/echo', alice, ECHO)).statusCode).toBe(403);
    const bad = await t.call('PUT', '/api/applications/echo', admin, { ...ECHO, parameters: [{ ...ECHO.parameters[1], min: 9, max: 1 }] });
    expect(bad.statusCode).toBe(400);
    const problems = (bad.json() as Problems).problems;
    expect(problems).toContainEqual({ path: 'parameters[0].max', message: 'must not be below min (9)' });
    expect(problems).toContainEqual({ path: 'jdl', message: '{{text}} is not a parameter' });
    expect((await t.call('PUT', '/api/applications/other', admin, ECHO)).statusCode).toBe(400);
    expect((await t.call('GET', '/api/applications/echo', alice)).statusCode).toBe(404);

    const ok = await t.call('PUT', '/api/applications/echo', admin, ECHO);
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toEqual(ECHO);
    const [row] = await t.db.query<{ source: string; updatedBy: string; template: unknown }>(
      `select source, updated_by as "updatedBy", template from app_templates where name = 'echo'`,
    );
    expect(row).toEqual({ source: 'admin', updatedBy: 'root@vo1', template: ECHO });
    await expect(readFile(join(t.dataDir, 'apps', 'echo.yaml'), 'utf8')).rejects.toThrow(/ENOENT/);
    // Stored as JSON: shown as the YAML it makes.
    const shown = (await t.call('GET', '/api/applications/echo/yaml', alice)).json() as { yaml: string };
    expect(shown.yaml).toBe(stringify(ECHO));

    // A value that tries to close the string and set another owner stays one string.
    const sub = await t.call('POST', '/api/applications/echo/submit', alice, { values: { text: 'x"]; Owner = "bob' } });
    expect(sub.statusCode, sub.body).toBe(201);
    const [id] = (sub.json() as { jobIds: number[] }).jobIds;
    const job = (await t.call('GET', `/api/jobs/${id}`, alice)).json() as { owner: string; jdl: string };
    expect(job.owner).toBe('alice');
    expect(job.jdl).toContain('Arguments = "x\\"]; Owner = \\"bob"');
  });

  it('takes a template as YAML text and keeps it as written', async () => {
    const echo2 = ECHO_YAML.replace('name: echo', 'name: echo2');
    const res = await t.call('PUT', '/api/applications/echo2', admin, echo2, YAML);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ ...ECHO, name: 'echo2' });
    const shown = (await t.call('GET', '/api/applications/echo2/yaml', alice)).json() as { yaml: string; source: string };
    expect(shown).toMatchObject({ yaml: echo2, source: 'admin' });
    // text/yaml with a charset, replacing it.
    const retitled = echo2.replace('title: Echo', 'title: Echo again');
    const again = await t.call('PUT', '/api/applications/echo2', admin, retitled, { 'content-type': 'text/yaml; charset=utf-8' });
    expect(again.statusCode, again.body).toBe(200);
    expect(((await t.call('GET', '/api/applications/echo2', alice)).json() as AppTemplate).title).toBe('Echo again');
  });

  it('refuses YAML that does not parse with its line and column, and writes nothing', async () => {
    const text = 'name: broken\ntitle: Broken\nparameters: [\n  { name: x\n';
    const res = await t.call('PUT', '/api/applications/broken', admin, text, YAML);
    expect(res.statusCode).toBe(400);
    const body = res.json() as Problems;
    expect(body.code).toBe('WMS_VALIDATION');
    expect(body.message).toMatch(/^not valid YAML at line \d+, column \d+: /);
    expect(body.problems).toHaveLength(1);
    expect(body.problems[0]).toMatchObject({ path: 'body', line: expect.any(Number), column: expect.any(Number) });
    expect(body.problems[0]!.line).toBeGreaterThanOrEqual(3);
    const bad = await t.call('PUT', '/api/applications/hello', admin, 'name: hello\ntitle: x\n- y\n', YAML);
    expect(bad.statusCode).toBe(400);
    expect((bad.json() as Problems).problems).toEqual([
      { path: 'body', line: 3, column: 1, message: 'Implicit keys need to be on a single line' },
    ]);
    // hello is as it was.
    expect(((await t.call('GET', '/api/applications/hello/yaml', alice)).json() as { source: string }).source).toBe('package');
    expect((await t.call('GET', '/api/applications/broken', alice)).statusCode).toBe(404);
  });

  it('refuses a YAML template that is not valid with every problem and its path', async () => {
    const text =
      'name: bad\ntitle: ""\nparameters:\n  - { name: n, label: N, type: number, min: 5, max: 1 }\njdl: "[ Executable = {{x}}; ]"\nextra: 1\n';
    const res = await t.call('PUT', '/api/applications/bad', admin, text, YAML);
    expect(res.statusCode).toBe(400);
    const paths = (res.json() as Problems).problems.map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['(top)', 'title', 'parameters[0].max', 'jdl']));
    expect((await t.call('GET', '/api/applications/bad', alice)).statusCode).toBe(404);
  });

  it('refuses a body over the limit with 413, YAML or JSON, and writes nothing', async () => {
    const big = ECHO_YAML.replace('name: echo', 'name: big') + `# ${'x'.repeat(300 * 1024)}\n`;
    const res = await t.call('PUT', '/api/applications/big', admin, big, YAML);
    expect(res.statusCode).toBe(413);
    expect((res.json() as Problems).code).toBe('WMS_PAYLOAD_TOO_LARGE');
    const json = await t.call('PUT', '/api/applications/big', admin, { ...ECHO, name: 'big', description: 'x'.repeat(300 * 1024) });
    expect(json.statusCode).toBe(413);
    expect((await t.call('GET', '/api/applications/big', alice)).statusCode).toBe(404);
  });

  it('refuses writes to anyone but admins', async () => {
    const siteAdmin = await t.tokenFor({ role: 'site-admin', user: 'sam', vo: 'vo1', group: 'admins' });
    for (const token of [alice, siteAdmin]) {
      expect((await t.call('PUT', '/api/applications/echo', token, ECHO_YAML, YAML)).statusCode).toBe(403);
      expect((await t.call('DELETE', '/api/applications/echo', token)).statusCode).toBe(403);
    }
    expect((await t.call('DELETE', '/api/applications/echo', null)).statusCode).toBe(401);
    expect((await t.call('GET', '/api/applications/echo', alice)).statusCode).toBe(200);
  });

  it('removes a template (admins); an unknown name is a 404 with the nearest one', async () => {
    const unknown = await t.call('DELETE', '/api/applications/ecko', admin);
    expect(unknown.statusCode).toBe(404);
    expect((unknown.json() as Problems).message).toBe('no application ecko (did you mean echo?)');
    const res = await t.call('DELETE', '/api/applications/echo2', admin);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ name: 'echo2' });
    expect((await t.call('GET', '/api/applications/echo2', alice)).statusCode).toBe(404);
    expect((await t.call('DELETE', '/api/applications/echo2', admin)).statusCode).toBe(404);
    expect(names(await t.call('GET', '/api/applications', alice))).toEqual(['echo', 'hello', 'sweep']);
  });

  it('inserts shipped templates when missing at start, never over an admin edit', async () => {
    const mine = (await readFile(join(defaultAppsDir(), 'hello.yaml'), 'utf8')).replace('title: Hello world', 'title: Our hello');
    expect((await t.call('PUT', '/api/applications/hello', admin, mine, YAML)).statusCode).toBe(200);
    expect((await t.call('DELETE', '/api/applications/sweep', admin)).statusCode).toBe(200);
    const again = await createTestApp({ db: ctx.handle });
    try {
      const hello = (await again.call('GET', '/api/applications/hello/yaml', alice)).json() as { yaml: string; source: string };
      expect(hello).toMatchObject({ yaml: mine, source: 'admin' });
      expect(names(await again.call('GET', '/api/applications', alice))).toEqual(['echo', 'hello', 'sweep']);
      expect(((await again.call('GET', '/api/applications/sweep/yaml', alice)).json() as { source: string }).source).toBe('package');
    } finally {
      await again.close();
    }
  });

  it('says at start that templates of the former <dataDir>/apps are no longer read', async () => {
    await mkdir(join(t.dataDir, 'apps'), { recursive: true });
    await writeFile(join(t.dataDir, 'apps', 'old.yaml'), stringify({ ...ECHO, name: 'old' }));
    const said: { level: string; fields: unknown; message: string }[] = [];
    const log = {
      info: (fields: unknown, message: string) => said.push({ level: 'info', fields, message }),
      warn: (fields: unknown, message: string) => said.push({ level: 'warn', fields, message }),
    };
    const inserted = await installShippedApplications(buildContext({ db: t.db, config: t.config }), defaultAppsDir(), log as never);
    expect(inserted).toEqual([]); // hello and sweep are there already
    expect(said).toEqual([
      {
        level: 'warn',
        fields: { dir: join(t.dataDir, 'apps'), files: ['old.yaml'] },
        message: expect.stringContaining('apply each with "wms app apply FILE"'),
      },
    ]);
    expect((await t.call('GET', '/api/applications/old', alice)).statusCode).toBe(404);
  });

  it('refuses a shipped template file with its file name and line or path, and stops the start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wms-apps-'));
    try {
      await writeFile(join(dir, 'broken.yaml'), 'name: broken\ntitle: [unclosed\n');
      await expect(loadTemplates(dir)).rejects.toThrow(/broken\.yaml:\d+:\d+: not valid YAML/);
      const start = buildContext({ db: t.db, config: t.config });
      await expect(installShippedApplications(start, dir)).rejects.toThrow(/broken\.yaml:\d+:\d+: not valid YAML/);
      await writeFile(join(dir, 'broken.yaml'), 'name: broken\ntitle: B\nparameters: []\njdl: "[ Executable = {{x}}; ]"\n');
      await expect(loadTemplates(dir)).rejects.toThrow(/broken\.yaml: not a valid application template: jdl: \{\{x\}\} is not a parameter/);
      await writeFile(join(dir, 'broken.yaml'), stringify(ECHO));
      await expect(loadTemplates(dir)).rejects.toThrow(/broken\.yaml: name "echo" differs from the file name/);
      expect(await loadTemplates(join(dir, 'none'))).toEqual([]);
      expect(await t.db.query(`select name from app_templates where name = 'broken'`)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describePg('application templates on two replicas', (ctx) => {
  let a: TestApp;
  let b: TestApp;
  let admin: string;
  let alice: string;

  beforeAll(async () => {
    await ctx.truncate();
    // Two replicas, each with its own pool on the same database.
    a = await createTestApp({ db: await ctx.open() });
    b = await createTestApp({ db: await ctx.open() });
    admin = await a.admin();
    alice = await b.user('alice');
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('inserts the shipped templates once when replicas start at once', async () => {
    expect(names(await a.call('GET', '/api/applications', alice))).toEqual(['hello', 'sweep']);
    await ctx.handle.query('delete from app_templates');
    const both = await Promise.all([
      installShippedApplications(buildContext({ db: a.db, config: a.config })),
      installShippedApplications(buildContext({ db: b.db, config: b.config })),
    ]);
    expect(both.flat().sort()).toEqual(['hello', 'sweep']);
    const [{ n }] = (await ctx.handle.query<{ n: number }>('select count(*)::int as n from app_templates')) as [{ n: number }];
    expect(n).toBe(2);
    expect(names(await b.call('GET', '/api/applications', alice))).toEqual(['hello', 'sweep']);
  });

  it('a template applied through one replica is listed, shown and submitted through the other at once', async () => {
    const put = await a.call('PUT', '/api/applications/echo', admin, ECHO_YAML, YAML);
    expect(put.statusCode, put.body).toBe(200);
    expect(names(await b.call('GET', '/api/applications', alice))).toEqual(['echo', 'hello', 'sweep']);
    expect(((await b.call('GET', '/api/applications/echo/yaml', alice)).json() as { yaml: string }).yaml).toBe(ECHO_YAML);
    const sub = await b.call('POST', '/api/applications/echo/submit', alice, { values: { text: 'hi' } });
    expect(sub.statusCode, sub.body).toBe(201);

    const retitled = ECHO_YAML.replace('title: Echo', 'title: Echo 2');
    expect((await b.call('PUT', '/api/applications/echo', admin, retitled, YAML)).statusCode).toBe(200);
    expect(((await a.call('GET', '/api/applications/echo', alice)).json() as AppTemplate).title).toBe('Echo 2');

    expect((await b.call('DELETE', '/api/applications/echo', admin)).statusCode).toBe(200);
    expect((await a.call('GET', '/api/applications/echo', alice)).statusCode).toBe(404);
    expect(names(await a.call('GET', '/api/applications', alice))).toEqual(['hello', 'sweep']);
  });
});
