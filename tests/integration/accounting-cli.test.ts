/**
 * `wms accounting` through the real app (listening on a random port, the CLI run in this
 * process): the table with its TOTAL line, --json, a user's scope, and the usage errors of
 * --by and --since. On PGlite and PostgreSQL.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runWms } from '../helpers/cli.js';
import { killJobs, recordFinishedJobs, submitJobs } from '../../db/index.js';
import { makeJob } from '../db/fixtures.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

describeDb('accounting CLI', (ctx) => {
  let t: TestApp;
  let url: string;
  let admin: string;
  let alice: string;

  beforeAll(async () => {
    await ctx.truncate();
    t = await createTestApp({ db: ctx.handle });
    url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    admin = await t.tokenFor({ role: 'admin', user: 'root', vo: 'vo1', group: 'admins' });
    alice = await t.tokenFor({ role: 'user', user: 'alice', vo: 'vo1', group: 'users' });
    const ids = await submitJobs(ctx.handle, [
      makeJob(),
      makeJob(),
      makeJob({ requirements: { owner: 'bob', ownerGroup: 'prod', vo: 'vo2' } as never }),
    ]);
    await killJobs(ctx.handle, ids, { source: 'test' });
    await recordFinishedJobs(ctx.handle);
    // Measurements as the wrapper would have reported them, on a DB12 10 pilot.
    await ctx.handle.query(
      `update accounting set cpu_seconds = 1000 * job_id, wall_seconds = 1100 * job_id, benchmark = 10,
              normalized_cpu_seconds = 10000 * job_id, site = 'SITE-' || job_id`,
    );
  });
  afterAll(async () => {
    await t.close();
  });

  const wms = (token: string, ...args: string[]) => runWms(args, { url, token });

  it('prints an aligned table, biggest normalized CPU first, with totals', async () => {
    const r = await wms(admin, 'accounting', '--by', 'site', '--since', '7d');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(/^SITE\s+JOBS\s+DONE\s+FAILED\s+KILLED\s+CPU\(s\)\s+WALL\(s\)\s+NORM\.CPU\(DB12·s\)$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['SITE-3', 'SITE-2', 'SITE-1', 'TOTAL']);
    expect(lines.at(-1)!.split(/\s+/)).toEqual(['TOTAL', '3', '0', '0', '3', '6,000', '6,600', '60,000']);
    // Right-aligned numbers: every line ends at the same column.
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
    // `accounting report` is the same command.
    expect((await wms(admin, 'accounting', 'report', '--by', 'site')).out).toBe(r.out);
  });

  it('answers JSON, and a user sees only their own jobs', async () => {
    const r = await wms(admin, 'accounting', '--by', 'group', '--json');
    const answer = JSON.parse(r.out) as { by: string; rows: { key: string; jobs: number; killed: number; normalizedCpuSeconds: number }[] };
    expect(answer.by).toBe('group');
    expect(answer.rows.map((x) => [x.key, x.jobs, x.killed, x.normalizedCpuSeconds])).toEqual([
      ['prod', 1, 1, 30000],
      ['users', 2, 2, 30000],
    ]);
    const mine = JSON.parse((await wms(alice, 'accounting', '--by', 'user', '--json')).out) as { rows: { key: string; jobs: number }[] };
    expect(mine.rows).toEqual([expect.objectContaining({ key: 'alice', jobs: 2 })]);
    const vo = JSON.parse((await wms(alice, 'accounting', '--by', 'vo', '--json')).out) as { rows: { key: string }[] };
    expect(vo.rows.map((x) => x.key)).toEqual(['vo1']);
  });

  it('says so when nothing ended in the window', async () => {
    await ctx.handle.query(`update accounting set ended_at = now() - interval '2 days'`);
    const r = await wms(admin, 'accounting', '--by', 'vo', '--since', '1d');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^no finished jobs since /);
    expect((await wms(admin, 'accounting', '--by', 'vo', '--since', '3d')).out).toContain('TOTAL');
  });

  it('refuses a bad --by or --since, and a missing --by', async () => {
    const by = await wms(admin, 'accounting', '--by', 'planet');
    expect(by.code).toBe(2);
    expect(by.err).toContain('--by: "planet" is not one of site, group, user, vo');
    const since = await wms(admin, 'accounting', '--by', 'site', '--since', 'yesterday');
    expect(since.code).toBe(2);
    expect(since.err).toContain('--since: "yesterday" is not a duration');
    const none = await wms(admin, 'accounting');
    expect(none.code).toBe(2);
    expect(none.err).toContain('--by is required');
  });

  it('the API refuses a bad since with 400', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/accounting?by=site&since=soon',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(res.statusCode).toBe(400);
    const bad = await t.app.inject({ method: 'GET', url: '/api/accounting?by=planet', headers: { authorization: `Bearer ${admin}` } });
    expect(bad.statusCode).toBe(400);
  });
});
