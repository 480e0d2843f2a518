/**
 * `wms server config` as an operator runs it: the built CLI (`node dist/cli/main.js`, run
 * `npm run build` first) with a config file, `WMS_*` variables and flags, printing the
 * effective configuration with secrets masked and where each value came from. Nothing is
 * started: the command reads its sources and exits.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = resolve(import.meta.dirname, '../../dist/cli/main.js');

interface Run {
  code: number;
  out: string;
  err: string;
}

/** The built CLI with exactly `env` (no inherited WMS_* variables) in `cwd`. */
function wms(args: string[], env: Record<string, string>, cwd: string): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, cwd }, (error, out, err) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      done({ code, out, err });
    });
  });
}

describe('wms server config', () => {
  let dir = '';
  let file = '';
  const env = { WMS_DATABASE_URL: 'postgres://wms:hunter2@db.example/wms', WMS_METRICS_TOKEN: 'scrape-secret', WMS_JOB_TOKEN_TTL: '2h' };

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
    dir = await mkdtemp(join(tmpdir(), 'wms-config-'));
    file = join(dir, 'wms.json');
    await writeFile(file, JSON.stringify({ port: 9000, tokens: { userTtl: '7d' }, pilot: { localSlots: 2 }, shutdownGrace: '2m' }));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints every key, its value and where it came from, secrets masked', async () => {
    const r = await wms(['server', 'config', '--config', file, '--host', '0.0.0.0', '--no-agents'], env, dir);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const line = (key: string): string => r.out.split('\n').find((l) => l.startsWith(`${key} `)) ?? `(no line for ${key})`;
    expect(line('host')).toMatch(/^host\s+0\.0\.0\.0\s+flag --host$/);
    expect(line('agents')).toMatch(/^agents\s+false\s+flag --no-agents$/);
    expect(line('port')).toMatch(new RegExp(`^port\\s+9000\\s+file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    expect(line('tokens.userTtl')).toMatch(/\s7d\s+file /);
    expect(line('tokens.jobTtl')).toMatch(/\s2h\s+env WMS_JOB_TOKEN_TTL$/);
    expect(line('shutdownGrace')).toMatch(/\s2m\s+file /);
    expect(line('pilot.localSlots')).toMatch(/\s2\s+file /);
    expect(line('logLevel')).toMatch(/^logLevel\s+info\s+default$/);
    expect(line('dataDir')).toContain(join(dir, 'var'));
    expect(line('databaseUrl')).toMatch(/postgres:\/\/wms:\*\*\*@db\.example\/wms\s+env WMS_DATABASE_URL$/);
    expect(line('metricsToken')).toMatch(/\*\*\*\s+env WMS_METRICS_TOKEN$/);
    expect(r.out).not.toMatch(/hunter2|scrape-secret/);
  });

  it('--json: the config object as the code reads it, and the origin of each path', async () => {
    const r = await wms(['server', 'config', '--json', '--port', '9200'], { ...env, WMS_CONFIG: file, WMS_PORT: '9100' }, dir);
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/hunter2|scrape-secret/);
    const answer = JSON.parse(r.out) as { config: Record<string, unknown>; sources: Record<string, { source: string; name?: string }> };
    expect(answer.config).toMatchObject({
      port: 9200,
      databaseUrl: 'postgres://wms:***@db.example/wms',
      metricsToken: '***',
      shutdownGraceSeconds: 120,
    });
    expect(answer.config['tokens']).toMatchObject({ userTtlSeconds: 7 * 86400, jobTtlSeconds: 7200 });
    expect(answer.sources['port']).toEqual({ source: 'flag', name: '--port' });
    expect(answer.sources['tokens.userTtlSeconds']).toEqual({ source: 'file', name: file });
    expect(answer.sources['tokens.jobTtlSeconds']).toEqual({ source: 'env', name: 'WMS_JOB_TOKEN_TTL' });
    expect(answer.sources['host']).toEqual({ source: 'default' });
  });

  it('a bad value: one line naming the file and the key, no stack trace, a non-zero exit', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ rateLimit: { submissions: -1 }, tokens: { jobTtl: 'soon' } }));
    const r = await wms(['server', 'config', '--config', bad], {}, dir);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(`${bad}: /rateLimit/submissions: must be >= 0`);
    expect(r.err).not.toMatch(/\n\s+at /);

    const envBad = await wms(['server', 'config'], { WMS_PORT: 'eighty' }, dir);
    expect(envBad.code).not.toBe(0);
    expect(envBad.err).toContain('WMS_PORT: "eighty" is not an integer >= 0');
    expect(envBad.err).not.toMatch(/\n\s+at /);
  });

  it('its help lists the flags and variables with their defaults from the schema', async () => {
    const r = await wms(['server', 'config', '--help'], {}, dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/--port N\s+port to listen on .*\(default 8080\)/);
    expect(r.out).toMatch(/WMS_SHUTDOWN_GRACE\s+.*\(default 10m\)/);
    expect(r.out).toContain('--json');
  });
});
