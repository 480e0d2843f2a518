/**
 * `wms share list` and `wms share set` through the real app (listening on a random port, the
 * CLI run in this process): the table and --json, a share set and seen by the list and by
 * /api/usage, usage errors as one line, a user refused. On PGlite and PostgreSQL.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runWms } from '../helpers/cli.js';
import { submitJobs } from '../../db/index.js';
import { makeJob } from '../db/fixtures.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

describeDb('share CLI', (ctx) => {
  let t: TestApp;
  let url: string;
  let admin: string;
  let alice: string;

  beforeAll(async () => {
    await ctx.truncate();
    t = await createTestApp({ db: ctx.handle });
    url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    admin = await t.admin();
    alice = await t.user('alice', 'vo1', 'users');
    await submitJobs(ctx.handle, [makeJob(), makeJob({ requirements: { owner: 'bob', ownerGroup: 'prod', vo: 'vo1' } })]);
  });
  afterAll(async () => {
    await t?.close();
  });

  const wms = (token: string, ...args: string[]) => runWms(args, { url, token });

  it('lists the groups that had jobs with the default share', async () => {
    const r = await wms(admin, 'share', 'list');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n').map((l) => l.split(/\s{2,}/))).toEqual([
      ['VO', 'GROUP', 'SHARE'],
      ['vo1', 'prod', '1000 (default)'],
      ['vo1', 'users', '1000 (default)'],
    ]);
  });

  it('sets a share: the list and /api/usage show it', async () => {
    const r = await wms(admin, 'share', 'set', 'vo1', 'prod', '3000');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe('share of vo1/prod set to 3000');
    const listed = JSON.parse((await wms(admin, 'share', 'list', '--json')).out) as { defaultShare: number; shares: unknown[] };
    expect(listed).toEqual({
      defaultShare: 1000,
      shares: [
        { vo: 'vo1', group: 'prod', share: 3000, configured: true },
        { vo: 'vo1', group: 'users', share: 1000, configured: false },
      ],
    });
    const usage = (await t.call('GET', '/api/usage', admin)).json<{ groups: { group: string; share: number; shareFraction: number }[] }>();
    expect(usage.groups.map((g) => [g.group, g.share, g.shareFraction])).toEqual([
      ['prod', 3000, 0.75],
      ['users', 1000, 0.25],
    ]);
    const json = JSON.parse((await wms(admin, 'share', 'set', 'vo1', 'users', '250.5', '--json')).out) as unknown;
    expect(json).toEqual({ vo: 'vo1', group: 'users', share: 250.5, configured: true });
  });

  it('refuses a share that is not a number > 0, bad names and missing arguments, in one line', async () => {
    for (const n of ['0', 'lots', '1e999', '']) {
      const r = await wms(admin, 'share', 'set', 'vo1', 'prod', n);
      expect(r.code, n).toBe(2);
      expect(r.err.split('\n')[0]).toBe(`wms: share set: "${n}" is not a number > 0`);
    }
    // A negative number reads as an option: still one usage line.
    const negative = await wms(admin, 'share', 'set', 'vo1', 'prod', '-3');
    expect(negative.code).toBe(2);
    expect(negative.err.split('\n')[0]).toBe(`wms: share set: Unknown option '-3'`);
    const name = await wms(admin, 'share', 'set', 'vo 1', 'prod', '10');
    expect(name.code).toBe(2);
    expect(name.err).toContain('share set: "vo 1" is not a VO name');
    const missing = await wms(admin, 'share', 'set', 'vo1', 'prod');
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('share set: missing arguments (usage: wms share set VO GROUP N [--json])');
    for (const r of [name, missing]) expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('a user is refused with the server message, no stack', async () => {
    const r = await wms(alice, 'share', 'set', 'vo1', 'users', '5000');
    expect(r.code).toBe(1);
    expect(r.err).toBe('wms: role user may not call this route');
    expect((await wms(alice, 'share', 'list')).err).toBe('wms: role user may not call this route');
  });
});
