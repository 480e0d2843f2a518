/**
 * `wms site apply --check FILE`: the shipped site configs checked on this machine, applying
 * nothing (no server is needed): secrets present, the backend's commands installed, the
 * endpoint answering, one line per problem naming the CE once and the real cause; exit 0 only
 * when all is well. `--set PATH=VALUE` points a shipped file at a local endpoint without
 * editing it.
 */
import { createServer, type Server } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../cli/command.js';
import { exitCodeOf, formatError } from '../../cli/errors.js';
import { run } from '../../cli/program.js';
import { OneSimulator } from '../fakes/opennebula/simulator.js';
import { FAKE_CONDOR_BIN } from '../helpers/htcondor.js';
import { describeSsh, sparePort, startSshd, type TestSshd } from '../helpers/slurm.js';

const examples = resolve(import.meta.dirname, '../../site-configs');
const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin';

/** `wms site apply --check` with `env` as the whole environment; no server behind WMS_URL. */
async function check(file: string, env: Record<string, string>, ...sets: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
    env: { WMS_URL: 'http://127.0.0.1:1', WMS_TOKEN: 'unused', ...env },
    cwd: '/',
    home: '/nonexistent',
  };
  const args = ['site', 'apply', '--check', join(examples, file), ...sets.flatMap((s) => ['--set', s])];
  try {
    const code = await run(args, io);
    return { code: typeof code === 'number' ? code : -1, out: out.join('\n'), err: err.join('\n') };
  } catch (e) {
    return { code: exitCodeOf(e), out: out.join('\n'), err: formatError(e).join('\n') };
  }
}

const ce = 'sites[0].computingElements[0]';

describe('wms site apply --check', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wms-site-check-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('local.yaml: nothing to check, exit 0', async () => {
    const r = await check('local.yaml', { PATH: SYSTEM_PATH });
    expect(r).toEqual({
      code: 0,
      out: expect.stringMatching(/local\.yaml: valid; 1 computing element\(s\) checked on this machine: no problem/),
      err: '',
    });
  });

  it('slurm.yaml as shipped: the key file is not there; no login is tried without it', async () => {
    const r = await check('slurm.yaml', { PATH: SYSTEM_PATH });
    expect(r.code).toBe(1);
    expect(r.err.split('\n')).toEqual([
      'CE lxui.jinr.ru: settings.privateKey: cannot read /etc/pilot-wms/keys/jinr-slurm (ENOENT)',
      expect.stringMatching(/slurm\.yaml: 1 problem\(s\) on this machine; nothing applied$/),
    ]);
  });

  it('a login node that refuses the connection: "cannot connect to HOST:PORT: connection refused", once', async () => {
    const port = await sparePort(); // nothing listens there
    const r = await check(
      'slurm.yaml',
      { PATH: SYSTEM_PATH, SSH_PW: 'x' },
      `${ce}.settings.host=127.0.0.1`,
      `${ce}.settings.port=${port}`,
      `${ce}.settings.privateKey=null`,
      `${ce}.settings.password={ env: SSH_PW }`,
    );
    expect(r.code).toBe(1);
    expect(r.err.split('\n')[0]).toBe(`CE lxui.jinr.ru: cannot connect to 127.0.0.1:${port}: connection refused`);
  });

  it('sbatch and squeue on this machine when the CE has no host', async () => {
    const sets = [`${ce}.settings.host=null`, `${ce}.settings.user=null`, `${ce}.settings.privateKey=null`];
    const none = await check('slurm.yaml', { PATH: dir }, ...sets);
    expect(none.code).toBe(1);
    expect(none.err.split('\n')[0]).toBe('CE lxui.jinr.ru: sbatch, squeue: not installed (not on PATH of this machine)');
  });

  it('htcondor.yaml: the token variable, condor_submit/condor_q, the CE port', async () => {
    const shipped = await check('htcondor.yaml', { PATH: dir });
    expect(shipped.code).toBe(1);
    expect(shipped.err.split('\n').slice(0, 3)).toEqual([
      'CE ce01.inp.kz: settings.token: environment variable INP_CE_TOKEN is not set',
      'CE ce01.inp.kz: condor_submit, condor_q: not installed (not on PATH of this machine)',
      expect.stringMatching(/^CE ce01\.inp\.kz: cannot connect to ce01\.inp\.kz:9619: /),
    ]);
    const server: Server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const good = await check(
        'htcondor.yaml',
        { PATH: `${FAKE_CONDOR_BIN}:${SYSTEM_PATH}`, INP_CE_TOKEN: 'tok' },
        `${ce}.settings.pool=127.0.0.1:${port}`,
      );
      expect(good).toMatchObject({ code: 0, err: '' });
    } finally {
      server.close();
    }
  });

  it('opennebula.yaml: the password variable, then one.system.version with the credentials', async () => {
    const unset = await check('opennebula.yaml', {});
    expect(unset.code).toBe(1);
    expect(unset.err.split('\n')[0]).toBe('CE cloud.jinr.ru: settings.password: environment variable JINR_ONE_PASSWORD is not set');

    const one = new OneSimulator({ workDir: join(dir, 'one'), user: 'wms-pilots', password: 'right' });
    const endpoint = await one.start();
    try {
      const wrong = await check('opennebula.yaml', { JINR_ONE_PASSWORD: 'wrong' }, `${ce}.settings.endpoint=${endpoint}`);
      expect(wrong.code).toBe(1);
      expect(wrong.err.split('\n')[0]).toMatch(
        /^CE cloud\.jinr\.ru: one\.system\.version at http:\/\/127\.0\.0\.1:\d+\/RPC2: \[AUTHENTICATION\]/,
      );
      const good = await check('opennebula.yaml', { JINR_ONE_PASSWORD: 'right' }, `${ce}.settings.endpoint=${endpoint}`);
      expect(good).toMatchObject({ code: 0, err: '' });
    } finally {
      await one.close();
    }
    const port = await sparePort();
    const closed = await check('opennebula.yaml', { JINR_ONE_PASSWORD: 'x' }, `${ce}.settings.endpoint=http://127.0.0.1:${port}/RPC2`);
    expect(closed.err.split('\n')[0]).toBe(`CE cloud.jinr.ru: cannot connect to 127.0.0.1:${port}: connection refused`);
  });

  it('refuses invalid settings with their path before checking the machine, and a malformed --set', async () => {
    const bad = await check('opennebula.yaml', {}, `${ce}.queues[0].settings.templateId=null`);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(
      `${ce}.settings.templateId: give exactly one of templateId and template (in the CE's settings or the queue's)`,
    );
    expect(bad.err).not.toContain('JINR_ONE_PASSWORD');
    const usage = await check('local.yaml', {}, 'no-equals-sign');
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/--set no-equals-sign: expected PATH=VALUE/);
  });
});

describeSsh('wms site apply --check over SSH', () => {
  let sshd: TestSshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it('logs in to the login node and finds sbatch and squeue there; a refused key is named', async () => {
    const at = (key: string) => [
      `${ce}.settings.host=${sshd.host}`,
      `${ce}.settings.port=${sshd.port}`,
      `${ce}.settings.user=${sshd.user}`,
      `${ce}.settings.privateKey.file=${key}`,
    ];
    const good = await check('slurm.yaml', { PATH: SYSTEM_PATH }, ...at(sshd.keyFile));
    expect(good).toMatchObject({ code: 0, err: '' });
    const refused = await check('slurm.yaml', { PATH: SYSTEM_PATH }, ...at(sshd.wrongKeyFile));
    expect(refused.code).toBe(1);
    expect(refused.err.split('\n')[0]).toMatch(
      new RegExp(`^CE lxui\\.jinr\\.ru: cannot log in to ${sshd.user}@127\\.0\\.0\\.1:${sshd.port}: authentication failed`),
    );
  });
});
