/**
 * `wms app list | show | apply | remove` through the real app (listening on a random port, the
 * CLI run in this process), on PGlite and PostgreSQL: the table and --json, a file applied and
 * shown back as written, problems located in the file with nothing sent, refusals (not an admin,
 * unknown names with the nearest one, bad names), and the help.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runWms } from '../helpers/cli.js';
import { defaultAppsDir } from '../../services/logic/applications.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

const ECHO_YAML = `# Echo: says back what it is given (kept as written).
name: echo
title: Echo
parameters:
  - { name: text, label: Text, type: string, maxLength: 20 }
jdl: |
  [ Executable = "/bin/echo"; Arguments = "{{text}}"; ]
`;

describeDb('app CLI', (ctx) => {
  let t: TestApp;
  let url: string;
  let admin: string;
  let alice: string;
  let dir: string;

  beforeAll(async () => {
    await ctx.truncate();
    t = await createTestApp({ db: ctx.handle });
    url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    admin = await t.admin();
    alice = await t.user('alice');
    dir = await mkdtemp(join(tmpdir(), 'wms-app-cli-'));
    await writeFile(join(dir, 'echo.yaml'), ECHO_YAML);
  });
  afterAll(async () => {
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const wms = (token: string, ...args: string[]) => runWms(args, { url, token, dir });

  it('lists the templates as a table and as JSON', async () => {
    const r = await wms(alice, 'app', 'list');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n').map((l) => l.split(/\s{2,}/))).toEqual([
      ['NAME', 'TITLE', 'PARAMETERS'],
      ['hello', 'Hello world', 'who, cpuTime'],
      ['sweep', expect.any(String), 'start, step, count, mode'],
    ]);
    const json = JSON.parse((await wms(alice, 'app', 'list', '--json')).out) as { applications: { name: string }[] };
    expect(json.applications.map((a) => a.name)).toEqual(['hello', 'sweep']);
  });

  it('shows a shipped template as its file says', async () => {
    const r = await wms(alice, 'app', 'show', 'hello');
    expect(r.code, r.err).toBe(0);
    expect(`${r.out}\n`).toBe(await readFile(join(defaultAppsDir(), 'hello.yaml'), 'utf8'));
    const json = JSON.parse((await wms(alice, 'app', 'show', 'hello', '--json')).out) as Record<string, unknown>;
    expect(json).toMatchObject({ name: 'hello', source: 'package', updatedBy: '' });
  });

  it('applies a file (admins) and shows it back as written, comments and all', async () => {
    const refused = await wms(alice, 'app', 'apply', 'echo.yaml');
    expect(refused.code).toBe(1);
    expect(refused.err).toBe('wms: role user may not call this route');
    const r = await wms(admin, 'app', 'apply', 'echo.yaml');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe('application echo applied from echo.yaml');
    const shown = await wms(alice, 'app', 'show', 'echo');
    expect(`${shown.out}\n`).toBe(ECHO_YAML);
    const json = JSON.parse((await wms(alice, 'app', 'show', 'echo', '--json')).out) as Record<string, unknown>;
    expect(json).toMatchObject({ source: 'admin', updatedBy: 'root@vo1' });
    // Applied again with --json: the template as stored.
    const again = JSON.parse((await wms(admin, 'app', 'apply', 'echo.yaml', '--json')).out) as { name: string; title: string };
    expect(again).toMatchObject({ name: 'echo', title: 'Echo' });
    // Every replica's API serves it: the form can be submitted.
    const sub = await t.call('POST', '/api/applications/echo/submit', alice, { values: { text: 'hi' } });
    expect(sub.statusCode, sub.body).toBe(201);
  });

  it('names every problem of a file with its line and column, and sends nothing', async () => {
    await writeFile(join(dir, 'broken.yaml'), 'name: broken\ntitle: x\n- y\n');
    const r = await wms(admin, 'app', 'apply', 'broken.yaml');
    expect(r.code).toBe(1);
    // The first problem first (the parser may add more on the same line).
    expect(r.err.split('\n').slice(0, 2)).toEqual([
      'wms: broken.yaml is not valid YAML; nothing applied',
      '  broken.yaml:3:1: Implicit keys need to be on a single line',
    ]);
    await writeFile(
      join(dir, 'bad.yaml'),
      'name: bad\ntitle: Bad\nparameters:\n  - name: n\n    label: N\n    type: number\n    min: 5\n    max: 1\njdl: "[ Executable = {{x}}; ]"\n',
    );
    const bad = await wms(admin, 'app', 'apply', 'bad.yaml');
    expect(bad.code).toBe(1);
    const lines = bad.err.split('\n');
    expect(lines[0]).toMatch(/^wms: bad\.yaml: \d+ problem\(s\); nothing applied$/);
    expect(lines).toContain('  bad.yaml:8:10: parameters[0].max: must not be below min (5)');
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}bad\.yaml:9:6: jdl: /));
    const missing = await wms(admin, 'app', 'apply', 'none.yaml');
    expect(missing.code).toBe(1);
    expect(missing.err).toBe('wms: none.yaml: cannot read the application template: no such file');
    expect((await wms(alice, 'app', 'list')).out).not.toMatch(/broken|bad/);
  });

  it('removes a template (admins); unknown names get the nearest one', async () => {
    expect((await wms(alice, 'app', 'remove', 'echo')).code).toBe(1);
    const typo = await wms(admin, 'app', 'remove', 'ecoh');
    expect(typo.code).toBe(1);
    expect(typo.err).toBe('wms: no application ecoh (did you mean echo?)');
    const shown = await wms(alice, 'app', 'show', 'helo');
    expect(shown.code).toBe(1);
    expect(shown.err).toBe('wms: no application helo (did you mean hello?)');
    const r = await wms(admin, 'app', 'remove', 'echo');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe('application echo removed');
    expect((await wms(alice, 'app', 'show', 'echo')).code).toBe(1);
    const bad = await wms(admin, 'app', 'remove', 'Not/A/Name');
    expect(bad.code).toBe(2);
    expect(bad.err.split('\n')[0]).toBe('wms: app remove: "Not/A/Name" is not an application name (a-z, 0-9, _ and -)');
  });

  it('has help for the group and each command, and a nearest command for a typo', async () => {
    const group = await wms(alice, 'app', '--help');
    expect(group.code).toBe(0);
    for (const c of ['list', 'show', 'apply', 'remove']) expect(group.out).toMatch(new RegExp(`^ {2}${c} `, 'm'));
    const apply = await wms(alice, 'app', 'apply', '--help');
    expect(apply.out).toContain('Usage: wms app apply FILE.yaml [--json]');
    const typo = await wms(alice, 'app', 'aply');
    expect(typo.code).toBe(2);
    expect(typo.err.split('\n')[0]).toBe('wms: unknown command "app aply" (did you mean "wms app apply"?)');
  });
});
