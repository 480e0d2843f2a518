/**
 * The pilot wrapper (pilot/wrapper.sh rendered by agents/pilot-wrapper.ts) run with real bash
 * against a small HTTP server: work-dir choice on local disk, the node search, bundle download
 * and checksum, the pilot's environment (the token in a private file, never in an environment),
 * exit codes, failure reports, and SIGTERM handling.
 * File-system types are injected with a fake `stat` first on PATH; PATH is built from links so
 * that node, curl, wget and sha256sum can each be left out.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { packageRoot } from '../../agents/package-root.js';
import { loadWrapperTemplate, renderWrapper, shellQuote, WRAPPER_EXIT, type WrapperParams } from '../../agents/pilot-wrapper.js';
import { PILOT_ENV } from '../../core/pilot-protocol.js';
import {
  buildTestBundle,
  createSandbox,
  pollFor,
  readPilotSeen,
  startWrapperServer,
  within,
  type Sandbox,
  type WrapperServer,
} from '../helpers/wrapper-fixtures.js';

const TOKEN = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJwaWxvdDoxIn0.c2lnbmF0dXJl';
const STAMP = '0123456789abcdef0123456789abcdef';

let template: string;
let bundle: { bytes: Buffer; sha256: string };
let server: WrapperServer;
let sb: Sandbox;

beforeAll(async () => {
  template = await loadWrapperTemplate();
  bundle = await buildTestBundle();
  server = await startWrapperServer(bundle.bytes);
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  sb = await createSandbox();
  server.requests.length = 0;
  server.reports.length = 0;
  server.bundleMode = 'serve';
});
afterEach(async () => {
  await sb.cleanup();
});

type Tool = 'curl' | 'wget' | 'sha256sum' | 'node';

interface Setup {
  params?: Partial<WrapperParams>;
  /** Optional tools on PATH (default curl, sha256sum, node). */
  tools?: Tool[];
  /** Extra variables for the wrapper's own environment (TMPDIR and the like). */
  env?: Record<string, string>;
  pilotExit?: number;
  waitForSignal?: boolean;
  detached?: boolean;
}

async function startWrapper(setup: Setup = {}) {
  const out = join(sb.root, 'pilot-seen.json');
  const tools = setup.tools ?? ['curl', 'sha256sum', 'node'];
  const path = [sb.fakeStatBin, sb.coreBin, ...tools.map((t) => (t === 'node' ? sb.nodeBin : sb.toolBin[t]))];
  const script = renderWrapper(template, {
    serverUrl: server.url,
    token: TOKEN,
    stamp: STAMP,
    bundleSha256: bundle.sha256,
    ...setup.params,
  });
  // What the test pilot is told comes through the wrapper's own environment (the batch job's).
  const testPilot = {
    TEST_PILOT_OUT: out,
    TEST_PILOT_EXIT: String(setup.pilotExit ?? 0),
    TEST_PILOT_WAIT_FOR_SIGNAL: setup.waitForSignal ? '1' : '0',
  };
  const run = await sb.run(
    script,
    { PATH: path.join(':'), HOME: sb.root, ...testPilot, ...setup.env },
    { detached: setup.detached ?? false },
  );
  return { run, out };
}

async function runWrapper(setup: Setup = {}) {
  const { run, out } = await startWrapper(setup);
  const result = await within('the wrapper to end', run.done, 60_000);
  return { ...result, seen: await readPilotSeen(out) };
}

const entries = (dir: string) => readdirSync(dir);

describe('pilot wrapper: happy path', () => {
  it('runs the pilot in a fresh work dir with the pilot environment, propagates its exit code and removes the dir', async () => {
    const tmp = await sb.dir('tmp');
    const r = await runWrapper({ env: { TMPDIR: tmp }, pilotExit: 7 });
    expect(r.code, r.stderr).toBe(7);
    const seen = r.seen!;
    expect(seen.cwd.startsWith(join(tmp, 'wms-pilot.'))).toBe(true);
    expect(seen.env[PILOT_ENV.workDir]).toBe(seen.cwd);
    expect(seen.env[PILOT_ENV.url]).toBe(server.url);
    expect(seen.env[PILOT_ENV.stamp]).toBe(STAMP);
    expect(seen.env[PILOT_ENV.fsType]).toMatch(/\S/);
    expect(seen.env['WMS_PILOT_WRAPPER_LOG']).toBe(join(seen.cwd, 'wrapper.log'));
    // Header parameters stay in the wrapper.
    expect(seen.env['WMS_TOKEN']).toBeUndefined();
    expect(seen.execPath).toBe(process.execPath);
    // The log the pilot forwards tells each step, with UTC times.
    const log = seen.wrapperLog ?? '';
    expect(log).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ pilot wrapper for pilot 0123456789abcdef/m);
    for (const step of ['work dir: ', 'node: ', 'downloading ', 'bundle checksum ok', 'bundle unpacked', 'starting the pilot']) {
      expect(log).toContain(step);
    }
    expect(r.stderr).toContain('pilot ended with exit code 7');
    expect(entries(tmp)).toEqual([]);
    expect(server.reports).toEqual([]);
  });

  it('hands the token over in a 0600 file of the work dir, never in an environment', async () => {
    const tmp = await sb.dir('tmp');
    const r = await runWrapper({ env: { TMPDIR: tmp } });
    expect(r.code, r.stderr).toBe(0);
    const seen = r.seen!;
    // Not in the pilot's environment, under any name.
    expect(seen.env['WMS_PILOT_TOKEN']).toBeUndefined();
    expect(Object.entries(seen.env).filter(([, v]) => v.includes(TOKEN))).toEqual([]);
    // Not in the wrapper's environment either (the header is readonly, not exported).
    expect(seen.parentEnviron).not.toBeNull();
    expect(seen.parentEnviron).not.toContain(TOKEN);
    expect(seen.parentEnviron).toContain('TEST_PILOT_OUT='); // it is the wrapper's environment indeed
    // The file: in the work dir, private, holding exactly the token.
    expect(seen.env[PILOT_ENV.tokenFile]).toBe(join(seen.cwd, '.pilot-token'));
    expect(seen.tokenFile).toEqual({ path: join(seen.cwd, '.pilot-token'), mode: 0o600, content: TOKEN });
    // Nor in the wrapper log the pilot forwards.
    expect(seen.wrapperLog).not.toContain(TOKEN);
    expect(r.stderr).not.toContain(TOKEN);
    expect(entries(tmp)).toEqual([]);
  });

  it('makes what it writes private: the work dir and its files are closed to other users', async () => {
    const tmp = await sb.dir('tmp');
    const r = await runWrapper({ env: { TMPDIR: tmp }, params: { keepWorkDir: true } });
    expect(r.code, r.stderr).toBe(0);
    const dir = r.seen!.cwd;
    expect(statSync(dir).mode & 0o077).toBe(0);
    expect(statSync(join(dir, 'wrapper.log')).mode & 0o077).toBe(0);
    // A token file the pilot did not delete (this test pilot never does) goes with the wrapper.
    expect(existsSync(join(dir, '.pilot-token'))).toBe(false);
  });

  it('works without curl, wget and sha256sum (node downloads and hashes) and keeps the dir when asked', async () => {
    const tmp = await sb.dir('tmp');
    const r = await runWrapper({ env: { TMPDIR: tmp }, tools: ['node'], params: { keepWorkDir: true } });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(r.seen!.cwd, 'pilot.mjs'))).toBe(true);
    expect(r.stderr).toContain(`work dir kept: ${r.seen!.cwd}`);
  });

  it('downloads with wget when curl is missing', async () => {
    const tmp = await sb.dir('tmp');
    const r = await runWrapper({ env: { TMPDIR: tmp }, tools: ['wget', 'sha256sum', 'node'] });
    expect(r.code, r.stderr).toBe(0);
    expect(r.seen!.cwd.startsWith(tmp)).toBe(true);
    expect(server.requests.map((q) => q.headers['user-agent'])).toEqual([expect.stringMatching(/wget/i)]);
  });
});

describe('pilot wrapper: work dir on local disk', () => {
  it('tries the configured candidates first, once each', async () => {
    const configured = await sb.dir('configured');
    const tmp = await sb.dir('tmp');
    const r = await runWrapper({ env: { TMPDIR: tmp }, params: { workDirs: [`${configured}/`, configured] } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.seen!.cwd.startsWith(join(configured, 'wms-pilot.'))).toBe(true);
    expect(entries(configured)).toEqual([]);
  });

  it('skips a candidate on a network file system and says why', async () => {
    const nfs = await sb.dir('nfs');
    const local = await sb.dir('local');
    await sb.setFsType(nfs, 'nfs');
    const r = await runWrapper({ env: { SLURM_TMPDIR: local }, params: { workDirs: [nfs] } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.seen!.cwd.startsWith(join(local, 'wms-pilot.'))).toBe(true);
    expect(r.seen!.wrapperLog).toContain(`${nfs}: nfs (network file system), skipped`);
    expect(entries(nfs)).toEqual([]);
  });

  it('reports exit 10 with every rejected candidate when none is on local disk', async () => {
    const nfs = await sb.dir('nfs');
    const weird = await sb.dir('we"ird\\dir');
    const sshfs = await sb.dir('sshfs');
    const unknown = await sb.dir('unknown');
    await sb.setFsType(nfs, 'nfs');
    await sb.setFsType(weird, 'cephfs');
    await sb.setFsType(sshfs, 'fuse.sshfs');
    await sb.setFsType(unknown, 'UNKNOWN (0x12345678)');
    await sb.setFsType('/scratch', 'lustre');
    await sb.setFsType('/tmp', 'gpfs');
    const missing = join(sb.root, 'no-such-dir');
    const r = await runWrapper({
      env: { TMPDIR: sshfs, SLURM_TMPDIR: missing, _CONDOR_SCRATCH_DIR: unknown },
      params: { workDirs: [nfs, weird] },
    });
    expect(r.code, r.stderr).toBe(WRAPPER_EXIT.noWorkDir);
    expect(r.seen).toBeUndefined();
    expect(server.reports).toHaveLength(1);
    const [report] = server.reports;
    expect(report!.authorization).toBe(`Bearer ${TOKEN}`);
    expect(report!.body).toMatchObject({ status: 'Failed', exitCode: 10 });
    const reason = String(report!.body.reason);
    expect(reason).toMatch(/^no local work dir: /);
    for (const part of [
      `${nfs} nfs`,
      `${weird} cephfs`,
      `${sshfs} fuse.sshfs`,
      `${missing} missing`,
      `${unknown} UNKNOWN (0x12345678)`,
      '/tmp gpfs',
    ]) {
      expect(reason).toContain(part);
    }
    expect(reason).toMatch(/\/scratch (lustre|missing)/);
    expect(r.stderr).toContain(`${sshfs}: fuse.sshfs (FUSE file system, maybe remote), skipped`);
    expect(r.stderr).toContain(`${weird}: cephfs (Ceph, a network file system), skipped`);
    expect(server.requests.filter((q) => q.url === '/pilot/pilot.tar.gz')).toEqual([]);
  });
});

describe('pilot wrapper: node', () => {
  it('skips a node older than 20 from WMS_NODE_PATH and takes the one on PATH', async () => {
    const tmp = await sb.dir('tmp');
    const r = await runWrapper({ env: { TMPDIR: tmp }, params: { nodePath: sb.fakeNodeDir } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.seen!.version).toBe(process.version);
    expect(r.seen!.wrapperLog).toContain(`node candidate ${join(sb.fakeNodeDir, 'bin', 'node')}: v18.19.0, skipped`);
    expect(r.seen!.wrapperLog).toContain(`node: ${join(sb.nodeBin, 'node')} ${process.version}`);
  });

  it('uses WMS_NODE_PATH when it is a recent node binary', async () => {
    const tmp = await sb.dir('tmp');
    const r = await runWrapper({ env: { TMPDIR: tmp }, tools: ['curl', 'sha256sum'], params: { nodePath: process.execPath } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.seen!.execPath).toBe(process.execPath);
  });

  it('reports exit 11 naming every node it tried when none is >= 20', async () => {
    const tmp = await sb.dir('tmp');
    const r = await runWrapper({ env: { TMPDIR: tmp }, tools: ['curl', 'sha256sum'], params: { nodePath: sb.fakeNodeDir } });
    expect(r.code, r.stderr).toBe(WRAPPER_EXIT.noNode);
    expect(server.reports.map((x) => x.body)).toEqual([
      {
        status: 'Failed',
        exitCode: 11,
        reason: `node >= 20 not found (tried ${join(sb.fakeNodeDir, 'bin', 'node')}: v18.19.0; node: not on PATH; nodejs: not on PATH)`,
      },
    ]);
    expect(entries(tmp)).toEqual([]);
  });
});

describe('pilot wrapper: bundle', () => {
  it('reports exit 12 when the bundle cannot be downloaded', async () => {
    server.bundleMode = 'missing';
    const tmp = await sb.dir('tmp');
    const r = await runWrapper({ env: { TMPDIR: tmp } });
    expect(r.code, r.stderr).toBe(WRAPPER_EXIT.downloadFailed);
    expect(server.reports).toHaveLength(1);
    expect(server.reports[0]!.body).toMatchObject({ status: 'Failed', exitCode: 12 });
    expect(String(server.reports[0]!.body.reason)).toMatch(
      /^pilot bundle download failed from http:\/\/127\.0\.0\.1:\d+\/pilot\/pilot\.tar\.gz: curl: .*404/,
    );
    // A 404 is not worth retrying.
    expect(server.requests.filter((q) => q.url === '/pilot/pilot.tar.gz')).toHaveLength(1);
    expect(entries(tmp)).toEqual([]);
  });

  it.each([
    { via: 'curl', tools: ['curl', 'sha256sum', 'node'] as Tool[] },
    { via: 'wget', tools: ['wget', 'sha256sum', 'node'] as Tool[] },
    { via: 'node', tools: ['node'] as Tool[] },
  ])('reports exit 13 with both hashes on a checksum mismatch (HTTP through $via)', async ({ tools }) => {
    const tmp = await sb.dir('tmp');
    const wrong = 'AB'.repeat(32);
    const r = await runWrapper({ env: { TMPDIR: tmp }, tools, params: { bundleSha256: wrong } });
    expect(r.code, r.stderr).toBe(WRAPPER_EXIT.checksumMismatch);
    expect(r.seen).toBeUndefined();
    expect(server.reports).toEqual([
      {
        authorization: `Bearer ${TOKEN}`,
        body: {
          status: 'Failed',
          exitCode: 13,
          reason: `pilot bundle checksum mismatch: expected ${wrong.toLowerCase()} got ${bundle.sha256}`,
        },
      },
    ]);
    expect(r.stderr).toContain('failure reported to the server');
    expect(entries(tmp)).toEqual([]);
  });
});

describe('pilot wrapper: signals', () => {
  it('passes SIGTERM on to the pilot, waits for it and exits with its code', async () => {
    const tmp = await sb.dir('tmp');
    const { run, out } = await startWrapper({ env: { TMPDIR: tmp }, waitForSignal: true, pilotExit: 42 });
    const seen = await pollFor('the pilot to start', () => readPilotSeen(out));
    run.child.kill('SIGTERM');
    await pollFor('the pilot to get SIGTERM', () => existsSync(`${out}.sigterm`));
    const result = await within('the wrapper to end', run.done);
    expect(result.code, result.stderr).toBe(42);
    expect(result.stderr).toContain('got SIGTERM: passing it on to the pilot');
    expect(existsSync(seen.cwd)).toBe(false);
    expect(server.reports).toEqual([]);
  });

  it('passes SIGINT on to the pilot', async () => {
    const tmp = await sb.dir('tmp');
    const { run, out } = await startWrapper({ env: { TMPDIR: tmp }, waitForSignal: true });
    await pollFor('the pilot to start', () => readPilotSeen(out));
    run.child.kill('SIGINT');
    const result = await within('the wrapper to end', run.done);
    // The test pilot has no SIGINT handler: node dies of it, and the wrapper says so.
    expect(result.code, result.stderr).toBe(130);
    expect(result.stderr).toContain('got SIGINT: passing it on to the pilot');
    expect(entries(tmp)).toEqual([]);
  });

  it('reports exit 143 when stopped by SIGTERM before the pilot started', async () => {
    server.bundleMode = 'hold';
    const tmp = await sb.dir('tmp');
    // The batch system signals the whole process group, curl included.
    const { run } = await startWrapper({ env: { TMPDIR: tmp }, detached: true });
    await pollFor('the bundle request', () => server.requests.some((q) => q.url === '/pilot/pilot.tar.gz'));
    process.kill(-run.child.pid!, 'SIGTERM');
    const result = await within('the wrapper to end', run.done);
    expect(result.code, result.stderr).toBe(143);
    expect(server.reports.map((x) => x.body)).toEqual([
      { status: 'Failed', exitCode: 143, reason: 'stopped by SIGTERM before the pilot started' },
    ]);
    expect(entries(tmp)).toEqual([]);
  });
});

describe('pilot wrapper: header', () => {
  it('reports exit 15 when a header parameter is missing', async () => {
    const header = `#!/bin/bash\nreadonly WMS_URL=${shellQuote(server.url)}\nreadonly WMS_TOKEN=${shellQuote(TOKEN)}\n`;
    const result = await (await sb.run(header + template, { PATH: [sb.coreBin, sb.toolBin.curl].join(':') })).done;
    expect(result.code, result.stderr).toBe(WRAPPER_EXIT.misconfigured);
    expect(server.reports.map((x) => x.body)).toEqual([
      { status: 'Failed', exitCode: 15, reason: 'wrapper misconfigured: WMS_BUNDLE_SHA256 not set' },
    ]);
  });
});

describe('renderWrapper', () => {
  const base: WrapperParams = { serverUrl: 'https://wms.example.org', token: 't', stamp: 's', bundleSha256: 'a'.repeat(64) };

  it('quotes every value so that bash reads it back unchanged', async () => {
    const nasty = `it's "$HOME" \`id\` $(id) \\ \n! * ; & |`;
    const body =
      '#!/bin/bash\nprintf "%s\\0" "$WMS_URL" "$WMS_TOKEN" "$WMS_STAMP" "$WMS_NODE_PATH" "$WMS_WORK_DIRS" "$WMS_KEEP_WORK_DIR"\n';
    const script = renderWrapper(body, {
      ...base,
      serverUrl: 'https://wms.example.org/a?b=1&c=$x',
      token: nasty,
      stamp: nasty,
      nodePath: `/cvmfs/x y/${nasty}`,
      workDirs: ['/scratch/a b', "/local/it's"],
      keepWorkDir: true,
    });
    expect(script.startsWith('#!/bin/bash\n')).toBe(true);
    expect(script.match(/^#!/gm)).toHaveLength(1);
    const result = await (await sb.run(script, { PATH: sb.coreBin })).done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString('utf8').split('\0').slice(0, -1)).toEqual([
      'https://wms.example.org/a?b=1&c=$x',
      nasty,
      nasty,
      `/cvmfs/x y/${nasty}`,
      "/scratch/a b:/local/it's",
      '1',
    ]);
  });

  it('makes the header readonly and exports nothing (a queue environment never reaches bash or the pilot)', () => {
    // A caller that still hands an environment (an old one, or a mistake) gets nothing exported.
    const script = renderWrapper('body\n', { ...base, environment: { NODE_OPTIONS: '--import=/tmp/evil.mjs' } } as WrapperParams);
    expect(script).toContain("readonly WMS_TOKEN='t'\n");
    expect(script).toContain("readonly WMS_KEEP_WORK_DIR='0'\n");
    expect(script).not.toMatch(/^export /m);
    expect(script).not.toContain('NODE_OPTIONS');
    expect(script.endsWith('\nbody\n')).toBe(true);
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
  });

  it('refuses values it cannot write safely', () => {
    expect(() => renderWrapper('', { ...base, bundleSha256: 'abc' })).toThrow(/bundleSha256/);
    expect(() => renderWrapper('', { ...base, serverUrl: 'ftp://x' })).toThrow(/serverUrl/);
    expect(() => renderWrapper('', { ...base, workDirs: ['/a:/b'] })).toThrow(/work dir/);
    expect(() => renderWrapper('', { ...base, stamp: 'x\0y' })).toThrow(/NUL/);
  });

  it('loads the template from the package root once', async () => {
    expect(JSON.parse(await readFile(join(packageRoot(), 'package.json'), 'utf8'))).toMatchObject({ name: 'pilot-wms' });
    expect(loadWrapperTemplate()).toBe(loadWrapperTemplate());
    expect(await loadWrapperTemplate()).toBe(await readFile(join(packageRoot(), 'pilot', 'wrapper.sh'), 'utf8'));
  });
});
