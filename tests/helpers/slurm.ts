/**
 * The real single-node SLURM cluster for integration tests (scripts/slurm-env.sh starts it).
 *
 * - `describeSlurm(name, fn)`: the suite when `sinfo` answers with a partition up; otherwise
 *   under `CI` one failing test saying to run scripts/slurm-env.sh, elsewhere skipped loudly.
 * - `startSshd()`: an sshd of Debian's openssh-server on a spare port of 127.0.0.1, with its own
 *   host key and a client key generated for the test (root, key only). `stop()` ends it (by pid).
 *   `sshdProblem()` says why it cannot start (no sshd binary), or null.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { freePort } from './pg-cluster.js';

const IN_CI = Boolean(process.env.CI);
const SSHD = '/usr/sbin/sshd';

function probeOnce(): { problem: string | null; transient: boolean } {
  const r = spawnSync('sinfo', ['-h', '-o', '%P %a %T'], { encoding: 'utf8', timeout: 10_000 });
  const err = r.error as NodeJS.ErrnoException | undefined;
  if (err?.code === 'ENOENT') return { problem: 'sinfo is not installed', transient: false };
  if (err) return { problem: `sinfo cannot run (${err.code ?? err.message})`, transient: true };
  if (r.status !== 0) return { problem: `sinfo failed: ${(r.stderr || r.stdout).trim()}`, transient: true };
  if (!/\bup\b/.test(r.stdout)) return { problem: `no partition is up (sinfo: ${r.stdout.trim() || 'nothing'})`, transient: true };
  if (!/\b(idle|mixed|allocated|completing)\b/.test(r.stdout))
    return { problem: `no usable node (sinfo: ${r.stdout.trim()})`, transient: true };
  return { problem: null, transient: false };
}

/**
 * Why the SLURM cluster cannot be used, or null. A cluster that is there but answers late or
 * shows its node busy for a moment (other suites' jobs, a loaded machine) is asked again for up
 * to 60 s before the suite is given up (seen: a node `planned` for another suite's pending job).
 */
function probe(): string | null {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { problem, transient } = probeOnce();
    if (problem === null || !transient || Date.now() > deadline) return problem;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1_000);
  }
}

/** Why the SLURM cluster cannot be used, or null (probed once per test file). */
export const slurmProblem: string | null = probe();

/** The default partition's name (the one marked `*` by sinfo). */
export function defaultPartition(): string {
  const r = spawnSync('sinfo', ['-h', '-o', '%P'], { encoding: 'utf8' });
  const parts = r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return (parts.find((p) => p.endsWith('*')) ?? parts[0] ?? 'debug').replace(/\*$/, '');
}

function needs(name: string, why: string, fix: string): void {
  if (IN_CI) {
    describe(name, () => {
      it('needs its real part', () => {
        throw new Error(`${why}; CI is set, so this suite must not be skipped. ${fix}`);
      });
    });
    return;
  }
  console.warn(`[integration] SKIPPING "${name}": ${why}. ${fix}`);
  describe.skip(name, () => {});
}

/** A suite against the real SLURM cluster; fails under CI and skips loudly elsewhere without it. */
export function describeSlurm(name: string, fn: () => void): void {
  if (slurmProblem === null) describe(name, fn);
  else needs(name, `the SLURM cluster is not usable: ${slurmProblem}`, 'Run `bash scripts/slurm-env.sh` (as root) to start it.');
}

export function sshdProblem(): string | null {
  if (!existsSync(SSHD)) return `${SSHD} is missing (Debian package openssh-server)`;
  if (!existsSync('/usr/bin/ssh-keygen')) return 'ssh-keygen is missing (Debian package openssh-client)';
  if (process.getuid?.() !== 0) return 'the test sshd logs in as root and must be started by root';
  return null;
}

/** A suite that needs startSshd(); fails under CI and skips loudly elsewhere without sshd. */
export function describeSsh(name: string, fn: () => void): void {
  const problem = slurmProblem ?? sshdProblem();
  if (problem === null) describe(name, fn);
  else needs(name, `cannot run: ${problem}`, 'Run `bash scripts/slurm-env.sh` (as root): it installs openssh-server and starts SLURM.');
}

/** A free TCP port on 127.0.0.1: pg-cluster.ts's `freePort`, by the name the CE tests import. */
export const sparePort = freePort;

function keygen(path: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pilot-wms-test', '-f', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
}

export interface TestSshd {
  host: string;
  port: number;
  user: string;
  /** Path of the client's private key (authorized). */
  keyFile: string;
  /** Path of a private key the server does not know. */
  wrongKeyFile: string;
  /** The server's public host key line. */
  hostKey: string;
  stop(): Promise<void>;
}

async function waitForPort(port: number, child: ChildProcess, deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`sshd exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port} within ${deadlineMs} ms`);
}

/** Starts a private sshd for the test (root login by key only). */
export async function startSshd(): Promise<TestSshd> {
  const dir = await mkdtemp(join(tmpdir(), 'wms-sshd-'));
  const hostKeyFile = join(dir, 'host_ed25519');
  const keyFile = join(dir, 'client_ed25519');
  const wrongKeyFile = join(dir, 'other_ed25519');
  keygen(hostKeyFile);
  keygen(keyFile);
  keygen(wrongKeyFile);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${keyFile}.pub`));
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKeyFile}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // sshd's privilege-separation directory
  let log = '';
  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  try {
    await waitForPort(port, child, 10_000);
  } catch (e) {
    if (child.exitCode === null) child.kill('SIGTERM');
    throw new Error(`${(e as Error).message}: ${log.trim()}`, { cause: e });
  }
  return {
    host: '127.0.0.1',
    port,
    user: 'root',
    keyFile,
    wrongKeyFile,
    hostKey: readFileSync(`${hostKeyFile}.pub`, 'utf8').trim(),
    async stop() {
      if (child.exitCode === null && child.pid) {
        const gone = new Promise((r) => child.once('exit', r));
        process.kill(child.pid, 'SIGTERM');
        await gone;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
