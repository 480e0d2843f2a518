/**
 * The site registry through the real app and the `wms site` / `wms ce` commands (run in this
 * process against the app listening on a random port), on PGlite and PostgreSQL; and CE health:
 * a queue whose pilots keep failing is paused by the site director, with the reason in
 * `wms site status`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runWms } from '../helpers/cli.js';
import { createSiteDirector } from '../../agents/site-director.js';
import type { ComputingElement } from '../../agents/computing-elements/types.js';
import { resolveServiceConfig } from '../../core/config.js';
import { createPilots, listCeQueues, submitJobs, updatePilots } from '../../db/index.js';
import { makeJob } from '../db/fixtures.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';
import { silentLogger } from '../../services/logger.js';

const examples = resolve(import.meta.dirname, '../../site-configs');

describeDb('site registry', (ctx) => {
  let t: TestApp;
  let url: string;
  let dir: string;
  let token: string;
  let admin: string;

  beforeAll(async () => {
    await ctx.truncate();
    t = await createTestApp({ db: ctx.handle });
    url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    // A site admin of the three example grid sites; the local site is for admins only.
    token = await t.tokenFor({
      role: 'site-admin',
      user: 'sam',
      vo: 'jinr',
      group: 'admins',
      sites: ['LCG.JINR.ru', 'LCG.INP.kz', 'CLOUD.JINR-ONE.ru'],
    });
    admin = await t.admin();
    dir = await mkdtemp(join(tmpdir(), 'wms-sites-'));
  });
  afterAll(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  const wms = (...args: string[]) => runWms(args, { url, token, dir });

  it('applies every example file and lists what it registered', async () => {
    const local = await runWms(['site', 'apply', join(examples, 'local.yaml')], { url, token: admin, dir });
    expect(local.err).toBe('');
    expect(local.out).toMatch(/1 queue\(s\) created, 0 updated/);
    for (const f of ['slurm.yaml', 'htcondor.yaml', 'opennebula.yaml']) {
      const r = await wms('site', 'apply', join(examples, f));
      // Applied, with what this machine cannot provide (their secrets, commands, endpoints) as warnings.
      expect(r.code).toBe(0);
      expect(r.err.split('\n')).toEqual(expect.arrayContaining([expect.stringMatching(/^warning: CE \S+: /)]));
      expect(r.err.split('\n').every((l) => l.startsWith('warning: CE '))).toBe(true);
      expect(r.out).toMatch(/queue\(s\) created, 0 updated/);
    }
    const again = await wms('site', 'apply', join(examples, 'slurm.yaml'));
    expect(again.out).toMatch(/0 queue\(s\) created, 2 updated/);
    const list = await wms('site', 'list');
    for (const name of ['Local.localhost', 'LCG.JINR.ru', 'LCG.INP.kz', 'CLOUD.JINR-ONE.ru', 'mc8', 'el9-small'])
      expect(list.out).toContain(name);
    const queues = await listCeQueues(ctx.handle);
    const one = queues.find((q) => q.ce === 'cloud.jinr.ru')!;
    // The secret is stored as a reference, never a value.
    expect(one.ceSettings['password']).toEqual({ env: 'JINR_ONE_PASSWORD' });
    expect(one.settings).toMatchObject({ templateId: 1234, timeLimitSeconds: 172800 });
  });

  it('names the file, line, column and path of each problem, and applies nothing', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      [
        'sites:',
        '  - name: BAD.site',
        '    computingElements:',
        '      - name: bad-ce',
        '        type: opennebula',
        '        settings:',
        '          endpoint: https://x:2633/RPC2',
        '          user: u',
        '          password: hunter2',
        '        queues:',
        '          - name: q',
        '            ramMb: lots',
      ].join('\n'),
    );
    const r = await wms('site', 'apply', file);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${file}:9:21: sites[0].computingElements[0].settings.password: a secret must be`);
    expect(r.err).toMatch(
      new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:12:20: sites\\[0\\]\\.computingElements\\[0\\]\\.queues\\[0\\]\\.ramMb: `),
    );
    expect((await listCeQueues(ctx.handle)).some((q) => q.site === 'BAD.site')).toBe(false);

    await writeFile(file, 'sites:\n  - name: [unclosed\n');
    const y = await wms('site', 'apply', file);
    expect(y.code).toBe(1);
    expect(y.err).toMatch(/is not valid YAML/);
    expect(y.err).toMatch(new RegExp(`bad\\.yaml:\\d+:\\d+: `));
  });

  it('the API refuses a document the CLI would refuse (no bypass)', async () => {
    const res = await t.call('PUT', '/api/sites', token, {
      sites: [{ name: 'X', computingElements: [{ name: 'c', type: 'slurm', settings: { password: 'p' }, queues: [{ name: 'q' }] }] }],
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().problems[0].message).toMatch(/settings\.password: a secret must be/);
    const user = await t.user('alice');
    expect((await t.call('PUT', '/api/sites', user, { sites: [] })).statusCode).toBe(403);
  });

  it('bans and allows sites and computing elements, with the reason shown', async () => {
    expect((await wms('site', 'ban', 'LCG.JINR.ru', '--reason', 'downtime until Monday')).out).toBe(
      'site LCG.JINR.ru banned: downtime until Monday',
    );
    expect((await wms('site', 'list')).out).toMatch(/LCG\.JINR\.ru.*site banned: downtime until Monday/);
    expect((await wms('site', 'allow', 'LCG.JINR.ru')).code).toBe(0);
    expect((await wms('ce', 'ban', 'ce01.inp.kz', '--reason', 'CE certificate expired')).code).toBe(0);
    expect((await wms('site', 'list')).out).toMatch(/ce01\.inp\.kz.*CE banned: CE certificate expired/);
    expect((await wms('ce', 'allow', 'ce01.inp.kz')).code).toBe(0);
    const missing = await runWms(['site', 'ban', 'NO.such', '--reason', 'x'], { url, token: admin, dir });
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/no site NO\.such/);
    // A site admin is refused any site its token does not name, known or not.
    const notMine = await wms('site', 'ban', 'NO.such', '--reason', 'x');
    expect(notMine.code).toBe(1);
    expect(notMine.err).toMatch(/does not administer site NO\.such/);
    expect((await wms('site', 'ban', 'LCG.JINR.ru')).code).toBe(2);
  });

  it('pauses a queue whose pilots all fail, and says why in site status', async () => {
    const queue = (await listCeQueues(ctx.handle)).find((q) => q.ce === 'lxui.jinr.ru' && q.queue === 'cpu')!;
    const ids = await createPilots(
      ctx.handle,
      Array.from({ length: 5 }, (_, i) => ({
        stamp: `s${i}`,
        site: queue.site,
        ce: queue.ce,
        ceType: 'slurm',
        queue: 'cpu',
        queueId: queue.queueId,
        vo: 'jinr',
      })),
    );
    for (const [i, id] of ids.entries()) {
      await updatePilots(ctx.handle, [id], {
        status: 'Failed',
        reason: i === 4 ? 'clock skew 61.0 s (limit 5 s)' : 'no local work dir: /scratch nfs',
        exitCode: 21,
      });
    }
    // Work is waiting, and the CE takes pilots: the healthy queue of the same CE (mc8) gets
    // some in the same tick; only the health check stops them for cpu.
    await submitJobs(ctx.handle, [makeJob({ requirements: { vo: 'jinr', ownerGroup: 'jinr_user' } })]);
    const submitted: string[] = [];
    const driver: ComputingElement = {
      type: 'slurm',
      submit: async (q, pilots) => {
        submitted.push(...pilots.map(() => q.queue));
        return { submitted: pilots.map((p) => ({ stamp: p.stamp, reference: `slurm://x/${p.stamp}` })), failed: [] };
      },
      status: async () => new Map(),
      cancel: async () => undefined,
      cleanup: async () => undefined,
      availableSlots: async () => null,
      close: async () => undefined,
    };
    const director = createSiteDirector(
      {
        drivers: (c) => (c.name === 'lxui.jinr.ru' ? driver : null),
        signPilotToken: async () => 'token',
        bundleSha256: async () => 'a'.repeat(64),
        serverUrl: () => 'http://127.0.0.1:1',
      },
      '* * * * * *',
    );
    const config = resolveServiceConfig({});
    const tick = () => director.tick({ db: ctx.handle, config, now: () => new Date(), log: silentLogger(), previousTickAt: null });
    await tick();
    expect(submitted).toEqual(['mc8']);
    const status = await wms('site', 'status', 'LCG.JINR.ru');
    expect(status.out).toMatch(/lxui\.jinr\.ru\/cpu \(slurm\): paused until/);
    expect(status.out).toContain('paused: 5 pilots in a row failed (last: clock skew 61.0 s (limit 5 s)); paused for 300 s');
    expect(status.out).toContain('pilots: 5 Failed');
    expect(status.out).toMatch(/pilot \d+\s+Failed: clock skew 61\.0 s/);
    const json = JSON.parse((await wms('site', 'status', 'LCG.JINR.ru', '--json')).out);
    expect(json.queues.find((q: { queue: string }) => q.queue === 'cpu').pausedUntil).not.toBeNull();
    await tick();
    expect(submitted).toEqual(['mc8']);
  });
});
