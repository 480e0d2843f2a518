/**
 * The top-level docker-compose.yml brought up for real, for the compose test of issue 14:
 * `new ComposeStack(env)` runs `docker-compose` (v1, Debian's; or `docker compose`) under a
 * project name of its own, with the given environment (ports, secrets) on top of this process's.
 * On the CI machines the engine is rootful podman behind its Docker-compatible socket
 * (scripts/containers-env.sh); `DOCKER_HOST` is pointed at that socket when it is unset.
 *
 * `composeProblem()` says why the stack cannot run here (no docker-compose, no engine), so a
 * suite can FAIL under CI instead of skipping (as tests/helpers/db.ts does for PostgreSQL).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The repository root, where docker-compose.yml is. */
export const REPO_ROOT = resolve(import.meta.dirname, '../..');

/** podman's Docker-compatible socket as scripts/containers-env.sh starts it. */
const PODMAN_SOCKET = '/run/podman/podman.sock';

/** The compose command: `docker-compose` if installed, else the `docker compose` plugin. */
function composeCommand(): string[] | null {
  if (spawnSync('docker-compose', ['version', '--short'], { encoding: 'utf8' }).status === 0) return ['docker-compose'];
  if (spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0) return ['docker', 'compose'];
  return null;
}

/** The environment compose commands get: DOCKER_HOST at podman's socket unless already set. */
function engineEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  if (!env['DOCKER_HOST'] && !existsSync('/var/run/docker.sock') && existsSync(PODMAN_SOCKET)) {
    env['DOCKER_HOST'] = `unix://${PODMAN_SOCKET}`;
  }
  return env;
}

/** Why docker-compose cannot run the stack here, or null. */
export function composeProblem(): string | null {
  const cmd = composeCommand();
  if (!cmd) return 'neither docker-compose nor `docker compose` is installed (scripts/containers-env.sh installs it)';
  const env = engineEnv();
  const r = spawnSync(cmd[0]!, [...cmd.slice(1), 'version'], { encoding: 'utf8', env });
  if (r.status !== 0) return `${cmd.join(' ')} does not run: ${(r.stderr || r.stdout).trim()}`;
  const ping = spawnSync('curl', ['-sf', '--max-time', '5', '--unix-socket', socketPath(env), 'http://d/_ping'], { encoding: 'utf8' });
  if (ping.status !== 0) return `no container engine answers at ${socketPath(env)} (run scripts/containers-env.sh as root)`;
  return null;
}

function socketPath(env: Record<string, string>): string {
  const host = env['DOCKER_HOST'];
  return host?.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock';
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** One compose project of the repository's docker-compose.yml. */
export class ComposeStack {
  private readonly cmd: string[];
  private readonly env: Record<string, string>;

  /** `project`: a unique compose project name; `env`: ports, secrets and settings for the file. */
  constructor(
    readonly project: string,
    env: Record<string, string>,
  ) {
    const cmd = composeCommand();
    if (!cmd) throw new Error('docker-compose is not installed');
    this.cmd = cmd;
    this.env = { ...engineEnv(), ...env };
  }

  /** Runs `compose -p <project> ...args`; rejects with its output unless it exits 0 (or `allowFail`). */
  async run(args: string[], o: { timeoutMs?: number; input?: string; allowFail?: boolean } = {}): Promise<RunResult> {
    const full = [...this.cmd.slice(1), '-p', this.project, ...args];
    const child = spawn(this.cmd[0]!, full, { cwd: REPO_ROOT, env: this.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.stdin.end(o.input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 120_000);
    const code = await new Promise<number | null>((done) => child.once('close', (c) => done(c)));
    clearTimeout(timer);
    const r = { code, stdout, stderr };
    if (code !== 0 && !o.allowFail) {
      throw new Error(`${this.cmd.join(' ')} ${full.join(' ')} exited ${code}:\n${tail(stderr)}\n${tail(stdout)}`);
    }
    return r;
  }

  /** `exec -T <service> ...command`: its standard output. */
  async exec(service: string, command: string[], timeoutMs = 60_000): Promise<string> {
    return (await this.run(['exec', '-T', service, ...command], { timeoutMs })).stdout;
  }

  /** The last lines of every service's log (for a failing assertion's message). */
  async logs(lines = 60): Promise<string> {
    const r = await this.run(['logs', '--no-color', '--tail', String(lines)], { allowFail: true, timeoutMs: 60_000 });
    return r.stdout + r.stderr;
  }

  /** `down -v`: containers, network and volumes gone; never throws. */
  async down(): Promise<void> {
    await this.run(['down', '-v', '--remove-orphans', '-t', '5'], { allowFail: true, timeoutMs: 180_000 });
  }
}

function tail(text: string, lines = 40): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
