/**
 * A private PostgreSQL cluster for fault tests: made with the machine's own `initdb` in a fresh
 * temporary directory, listening on 127.0.0.1 at a free port, trust authentication, fsync off.
 * A test may stop it, restart it (`-m fast` or `-m immediate`) or kill it: the shared server on
 * 5432 is never touched. Run as the `postgres` user when the test runs as root (initdb refuses
 * root).
 *
 * `pgClusterProblem()` says why no cluster can be made here (no PostgreSQL binaries), or null.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/** The newest PostgreSQL's bin dir under /usr/lib/postgresql (Debian), or null. */
function binDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

export function pgClusterProblem(): string | null {
  if (binDir() === null) return 'no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)';
  if (process.getuid?.() === 0 && !lookUpUid('postgres')) return 'running as root and there is no postgres user to run initdb as';
  return null;
}

function lookUpUid(name: string): { uid: number; gid: number } | null {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.split(':')[0] === name);
    if (!line) return null;
    const f = line.split(':');
    return { uid: Number(f[2]), gid: Number(f[3]) };
  } catch {
    return null;
  }
}

/** A free TCP port on 127.0.0.1 (closed again at once: a small race, fine for tests). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export type StopMode = 'smart' | 'fast' | 'immediate';

export class PgCluster {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
    private readonly asUser: string | null,
  ) {}

  /** Makes and starts a cluster. */
  static async create(): Promise<PgCluster> {
    const problem = pgClusterProblem();
    if (problem) throw new Error(problem);
    const bin = binDir()!;
    const root = process.getuid?.() === 0;
    const base = await mkdtemp(join(tmpdir(), 'wms-pg-'));
    const dir = join(base, 'data');
    const asUser = root ? 'postgres' : null;
    if (root) {
      const u = lookUpUid('postgres')!;
      await chmod(base, 0o755);
      await chown(base, u.uid, u.gid);
    }
    const c = new PgCluster(dir, await freePort(), bin, asUser);
    await c.cmd('initdb', ['-D', dir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
    await c.start();
    return c;
  }

  private async cmd(tool: string, args: string[]): Promise<string> {
    const file = join(this.bin, tool);
    const [f, a] = this.asUser ? ['runuser', ['-u', this.asUser, '--', file, ...args]] : [file, args];
    const { stdout } = await run(f, a, { cwd: '/', timeout: 120_000 });
    return stdout;
  }

  /** postgres://postgres@127.0.0.1:PORT/DATABASE */
  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<void> {
    const opts = `-p ${this.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c full_page_writes=off -c max_connections=200`;
    await this.cmd('pg_ctl', ['-D', this.dir, '-o', opts, '-l', join(this.dir, '..', 'server.log'), '-w', '-t', '60', 'start']);
  }

  async stop(mode: StopMode = 'fast'): Promise<void> {
    await this.cmd('pg_ctl', ['-D', this.dir, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  /** `pg_ctl restart -m MODE`: the server goes away and comes back on the same port. */
  async restart(mode: StopMode = 'fast'): Promise<void> {
    await this.stop(mode);
    await this.start();
  }

  /** Creates a fresh database and answers its URL. */
  async createDatabase(name: string): Promise<string> {
    const client = new pg.Client({ connectionString: this.url() });
    await client.connect();
    try {
      await client.query(`create database "${name.replace(/"/g, '')}"`);
    } finally {
      await client.end();
    }
    return this.url(name);
  }

  /** Stops the server (immediately) and removes its files. */
  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    await rm(join(this.dir, '..'), { recursive: true, force: true });
  }
}
