/**
 * Issue 13, point 7: at submission the services refuse an InputSandbox entry that is neither an
 * uploaded sandbox (`SB:<sha256>`) nor a logical file (`LFN:<path>`): a file of the submitter's
 * computer would fail on the worker minutes later. 400 WMS_JDL_INVALID naming the entry, at the
 * line and column of the InputSandbox value, saying what to do; nothing stored. Through
 * `POST /api/jobs` (one JDL, a list, parametric JDLs per expanded job) and the applications'
 * submit path, on PGlite and PostgreSQL; and `wms job submit`, which uploads local files and
 * writes `SB:` in their place, still submits such a JDL.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countJobs, createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

interface Problem {
  message: string;
  line: number;
  column: number;
  attribute?: string;
}
interface ErrorBody {
  code: string;
  message: string;
  problems: Problem[];
}

const root = resolve(import.meta.dirname, '../..');
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const WHAT_TO_DO = 'upload it with `wms sandbox put` or let `wms job submit` upload it, then write SB:<sha256>';

let t: TestApp;
let alice: string;

/** POSTs `body` to /api/jobs and expects the refusal of a local entry: 400, nothing stored. */
async function refused(body: unknown): Promise<ErrorBody> {
  const before = await countJobs(t.db);
  const res = await t.call('POST', '/api/jobs', alice, body);
  expect(res.statusCode, res.body).toBe(400);
  expect(await countJobs(t.db)).toBe(before);
  const answer = res.json<ErrorBody>();
  expect(answer.code).toBe('WMS_JDL_INVALID');
  return answer;
}

/** POSTs one JDL to /api/jobs and expects it stored: the stored JDLs. */
async function stored(text: string): Promise<string[]> {
  const res = await t.call('POST', '/api/jobs', alice, { jdl: text });
  expect(res.statusCode, res.body).toBe(201);
  const jdls: string[] = [];
  for (const id of res.json<{ jobIds: number[] }>().jobIds) {
    jdls.push((await t.call('GET', `/api/jobs/${id}`, alice)).json<{ jdl: string }>().jdl);
  }
  return jdls;
}

/** Runs `wms ...args` in `cwd` against `url` as `token`. */
function wms(args: string[], cwd: string, url: string, token: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', tsx, join(root, 'cli/main.ts'), ...args], {
      cwd,
      env: { PATH: process.env['PATH'] ?? '', HOME: cwd, XDG_CONFIG_HOME: join(cwd, '.no-config'), WMS_URL: url, WMS_TOKEN: token },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describeDb('InputSandbox entries at submission', (ctx) => {
  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
    alice = await t.user('alice');
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('refused: 400 at the InputSandbox value, naming the entry and what to do, nothing stored', () => {
    it('a local file beside an LFN', async () => {
      const body = await refused({
        jdl: '[\n  Executable = "run.sh";\n  InputSandbox = { "LFN:/vo1/user/a/alice/big.dat", "run.sh" };\n]',
      });
      expect(body.problems).toHaveLength(1);
      expect(body.problems[0]).toMatchObject({ line: 3, column: 18, attribute: 'InputSandbox' });
      expect(body.problems[0]!.message).toContain('InputSandbox entry run.sh is neither an uploaded sandbox (SB:<sha256>) nor');
      expect(body.problems[0]!.message).toContain(WHAT_TO_DO);
      expect(body.message).toMatch(/run\.sh.* at line 3, column 18$/);
    });

    it('each local entry, a URL and a lower-case sb: too (the worker fetches none of them)', async () => {
      const body = await refused({
        jdl: `[\n  Executable = "run.sh";\n  InputSandbox =\n    { "a.txt", "/home/alice/b.txt", "https://example.org/c.txt", "sb:${'a'.repeat(64)}" };\n]`,
      });
      expect(body.problems.map((p) => [p.line, p.column])).toEqual([
        [4, 5],
        [4, 5],
        [4, 5],
        [4, 5],
      ]);
      expect(body.problems.map((p) => /entry (\S+) is/.exec(p.message)?.[1])).toEqual([
        'a.txt',
        '/home/alice/b.txt',
        'https://example.org/c.txt',
        `sb:${'a'.repeat(64)}`,
      ]);
    });

    it('a single local string, with the other problems of the JDL', async () => {
      const body = await refused({ jdl: '[\n  Executable = "run.sh";\n  CPUTime = 5;\n  InputSandbox = "input.txt";\n]' });
      expect(body.problems.map((p) => [p.attribute, p.line, p.column])).toEqual([
        ['CPUTime', 3, 13],
        ['InputSandbox', 4, 18],
      ]);
    });

    it('in a list of JDLs, named by its place; the good JDL is not stored either', async () => {
      const body = await refused({
        jdls: ['[ Executable = "a"; ]', '[\n  Executable = "b";\n  InputSandbox = { "data.csv" };\n]'],
      });
      expect(body.problems).toHaveLength(1);
      expect(body.problems[0]).toMatchObject({ line: 3, column: 18, attribute: 'InputSandbox' });
      expect(body.problems[0]!.message).toMatch(/^JDL #2: InputSandbox entry data\.csv is neither/);
    });

    it('parametric: per expanded job, naming the job whose value is local', async () => {
      const body = await refused({
        jdl: '[\n  Executable = "run.sh";\n  Parameters = { "LFN:/vo1/user/a/alice/a.dat", "b.dat" };\n  InputSandbox = { "%s" };\n]',
      });
      expect(body.problems).toHaveLength(1);
      expect(body.problems[0]).toMatchObject({ line: 4, column: 18, attribute: 'InputSandbox' });
      expect(body.problems[0]!.message).toMatch(/^parametric job 1: InputSandbox entry b\.dat is neither/);
    });
  });

  describe('accepted, where the same JDL with a local entry is not', () => {
    it('LFN: entries (lfn: as DIRAC writes it too)', async () => {
      const lfns = '"LFN:/vo1/user/a/alice/x.dat", "lfn:/vo1/user/a/alice/y.dat"';
      const body = await refused({ jdl: `[ Executable = "run.sh"; InputSandbox = { ${lfns}, "z.dat" }; ]` });
      expect(body.problems.map((p) => p.message)).toEqual([expect.stringContaining('InputSandbox entry z.dat is neither')]);
      const [text] = await stored(`[ Executable = "run.sh"; InputSandbox = { ${lfns} }; ]`);
      expect(text).toContain(`InputSandbox = { ${lfns} };`);
    });

    it('a placeholder that expands to an LFN in every job', async () => {
      const sweep = (entry: string) =>
        `[\n  Executable = "run.sh";\n  Parameters = { "a.dat", "b.dat" };\n  InputSandbox = { "${entry}" };\n]`;
      const body = await refused({ jdl: sweep('%s') });
      expect(body.problems).toHaveLength(2);
      expect(body.problems.map((p) => p.message)).toEqual([
        expect.stringMatching(/^parametric job 0: InputSandbox entry a\.dat is neither/),
        expect.stringMatching(/^parametric job 1: InputSandbox entry b\.dat is neither/),
      ]);
      const jdls = await stored(sweep('LFN:/vo1/user/a/alice/%s'));
      expect(jdls).toHaveLength(2);
      expect(jdls[0]).toContain('"LFN:/vo1/user/a/alice/a.dat"');
      expect(jdls[1]).toContain('"LFN:/vo1/user/a/alice/b.dat"');
    });

    it("SB: of the submitter's uploaded sandbox", async () => {
      const archive = gzipSync(Buffer.from('inputs'));
      const sha = createHash('sha256').update(archive).digest('hex');
      const up = await t.call('PUT', `/api/sandboxes/${sha}`, alice, archive, { 'content-type': 'application/gzip' });
      expect(up.statusCode, up.body).toBe(201);
      const body = await refused({ jdl: `[ Executable = "run.sh"; InputSandbox = { "SB:${sha}", "inputs.txt" }; ]` });
      expect(body.problems).toHaveLength(1);
      const [text] = await stored(`[ Executable = "run.sh"; InputSandbox = { "SB:${sha}" }; ]`);
      expect(text).toContain(`InputSandbox = { "SB:${sha}" };`);
    });
  });

  describe('the applications submit path', () => {
    beforeAll(async () => {
      const template = {
        name: 'with-input',
        title: 'With an input',
        description: 'Runs with one input sandbox entry given as text.',
        parameters: [{ name: 'input', label: 'Input', type: 'string', maxLength: 200 }],
        jdl: '[\n  Executable = "run.sh";\n  InputSandbox = { "{{input}}" };\n]\n',
      };
      const res = await t.call('PUT', '/api/applications/with-input', await t.admin(), template);
      expect(res.statusCode, res.body).toBe(200);
    });

    it('refuses a local entry at its line and column, nothing stored; takes an LFN', async () => {
      const before = await countJobs(t.db);
      const res = await t.call('POST', '/api/applications/with-input/submit', alice, { values: { input: 'notes.txt' } });
      expect(res.statusCode, res.body).toBe(400);
      const body = res.json<ErrorBody>();
      expect(body.code).toBe('WMS_JDL_INVALID');
      expect(body.problems[0]).toMatchObject({ line: 3, column: 18, attribute: 'InputSandbox' });
      expect(body.problems[0]!.message).toContain('InputSandbox entry notes.txt is neither');
      expect(await countJobs(t.db)).toBe(before);

      const ok = await t.call('POST', '/api/applications/with-input/submit', alice, { values: { input: 'LFN:/vo1/user/a/alice/n.txt' } });
      expect(ok.statusCode, ok.body).toBe(201);
      expect(await countJobs(t.db)).toBe(before + 1);
    });
  });

  describe('wms job submit', () => {
    let work: string;
    let url: string;
    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'wms-input-sandbox-'));
      url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    });
    afterAll(async () => {
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('submits a JDL with a local file, which the API alone refuses: the file uploaded, SB: stored', async () => {
      const text = '[\n  Executable = "run.sh";\n  InputSandbox = { "run.sh", "LFN:/vo1/user/a/alice/big.dat" };\n]\n';
      await writeFile(join(work, 'run.sh'), '#!/bin/sh\necho hello\n');
      await writeFile(join(work, 'job.jdl'), text);
      const direct = await refused({ jdl: text });
      expect(direct.problems[0]).toMatchObject({ line: 3, column: 18 });

      const r = await wms(['job', 'submit', 'job.jdl', '--json'], work, url, alice);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const [id] = (JSON.parse(r.stdout) as { jobIds: number[] }).jobIds;
      const detail = (await t.call('GET', `/api/jobs/${id}`, alice)).json<{ jdl: string }>();
      expect(detail.jdl).toMatch(/InputSandbox = \{ "SB:[0-9a-f]{64}", "LFN:\/vo1\/user\/a\/alice\/big\.dat" \};/);
    });
  });
});
