/**
 * The real Prometheus for the metrics tests (Debian's `prometheus` package, installed by
 * scripts/test-env.sh): `promtool check metrics` on a scrape, and a Prometheus server in a temp
 * dir on a free port that scrapes one target, for evaluating PromQL through its HTTP API.
 * Without the binaries a suite FAILS under `CI` (one test that says why) and is skipped loudly
 * elsewhere, as tests/helpers/db.ts does for PostgreSQL.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'vitest';
import { IN_CI } from './db.js';
import { freePort } from './pg-cluster.js';

/** Why promtool and prometheus cannot be run here, or null. */
export function prometheusProblem(): string | null {
  for (const tool of ['promtool', 'prometheus']) {
    const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
    if (r.error || r.status !== 0) return `${tool} is not installed (Debian's prometheus package: scripts/test-env.sh)`;
  }
  return null;
}

/** Defines the suite when promtool and prometheus are there (CI fails without them). */
export function describePrometheus(name: string, fn: () => void): void {
  const problem = prometheusProblem();
  if (problem === null) {
    describe(name, fn);
  } else if (IN_CI) {
    describe(name, () => {
      it('needs promtool and prometheus', () => {
        throw new Error(`${problem}; CI is set, so this suite must not be skipped`);
      });
    });
  } else {
    console.warn(`[prometheus] SKIPPING "${name}": ${problem}`);
    describe.skip(name, fn);
  }
}

/** `promtool check metrics` on an exposition: its exit code and what it said. */
export function promtoolCheckMetrics(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

/** One answer of Prometheus' HTTP API. */
export interface PromAnswer {
  status: string;
  error?: string;
  data?: { resultType?: string; result?: { metric: Record<string, string>; value?: [number, string] }[] } | string[];
}

export interface RunningPrometheus {
  url: string;
  /** GET `/api/v1/<path>` with `params`. */
  api(path: string, params: Record<string, string>): Promise<PromAnswer>;
  /** An instant query (`/api/v1/query`). */
  query(expr: string): Promise<PromAnswer>;
  /** Waits until the target was scraped successfully `n` times. */
  waitForScrapes(n: number, timeoutMs?: number): Promise<void>;
  /** What Prometheus wrote (for failure messages). */
  log(): string;
  close(): Promise<void>;
}

/**
 * Starts Prometheus scraping `target` (host:port) at `/metrics` every second as job `job`,
 * with `Authorization: Bearer <token>` when a token is given.
 */
export async function startPrometheus(o: { target: string; job: string; token?: string }): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'wms-prometheus-'));
  const port = await freePort();
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    `  - job_name: ${JSON.stringify(o.job)}`,
    '    metrics_path: /metrics',
    ...(o.token ? ['    authorization:', '      type: Bearer', `      credentials: ${JSON.stringify(o.token)}`] : []),
    '    static_configs:',
    `      - targets: [${JSON.stringify(o.target)}]`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'prometheus.yml'), config);
  let output = '';
  const child: ChildProcess = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const url = `http://127.0.0.1:${port}`;
  const api = async (path: string, params: Record<string, string>): Promise<PromAnswer> => {
    const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params)}`);
    return (await res.json()) as PromAnswer;
  };
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${output.slice(-2000)}`);
      const ready = await fetch(`${url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`prometheus not ready after 60 s: ${output.slice(-2000)}`);
      await sleep(200);
    }
  } catch (e) {
    await close();
    throw e;
  }
  return {
    url,
    api,
    query: (expr) => api('query', { query: expr }),
    waitForScrapes: async (n, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      const expr = `sum_over_time(up{job=${JSON.stringify(o.job)}}[5m])`;
      for (;;) {
        const a = await api('query', { query: expr });
        const v = Array.isArray(a.data) ? undefined : a.data?.result?.[0]?.value?.[1];
        if (v !== undefined && Number(v) >= n) return;
        if (Date.now() > deadline)
          throw new Error(
            `Prometheus did not scrape ${o.target} ${n} times in ${timeoutMs} ms (${JSON.stringify(a)}): ${output.slice(-2000)}`,
          );
        await sleep(250);
      }
    },
    log: () => output,
    close,
  };
}
