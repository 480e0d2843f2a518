/**
 * Starts the system under test as a separate process (`wms server start` from dist/), so the
 * load generator in the benchmark process never shares an event loop with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

const root = resolve(import.meta.dirname, '../..');

/** BENCH_SERVER_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`): node flags for the server only. */
const serverNodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);

export interface RunningServer {
  url: string;
  adminToken: string;
  dataDir: string;
  stop(): Promise<void>;
}

export interface ServerOptions {
  dbUrl: string;
  port: number;
  env?: Record<string, string>;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'wms-bench-'));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...serverNodeArgs,
      join(root, 'dist/cli/main.js'),
      'server',
      'start',
      '--port',
      String(opts.port),
      '--data-dir',
      dataDir,
      '--db',
      opts.dbUrl,
      '--no-agents',
      '--no-local-site',
    ],
    { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${opts.port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${output}`);
    try {
      const res = await request(`${url}/api/health`);
      await res.body.text();
      if (res.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server did not answer in 60 s:\n${output}`);
    await sleep(200);
  }
  const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  return {
    url,
    adminToken,
    dataDir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
