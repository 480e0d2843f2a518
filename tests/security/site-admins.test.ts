/**
 * Issue 9, point 3: site admins were global (one banned and rewrote any site) and could run
 * code on the server machine (a queue `environment: { NODE_OPTIONS: "--import=..." }` ran in
 * the next local pilot). Here, on PGlite and on PostgreSQL, through the real app, the `wms`
 * command and the event stream: a site-admin token administers the sites named in its `sites`
 * claim and nothing else; the local site is for admins only; a queue cannot set loader and
 * shell variables; a refused document writes nothing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_SITE as CLI_LOCAL_SITE, registerLocalSite } from '../../cli/server-system.js';
import { claimsOf, managesSite, principalFromClaims } from '../../core/identity.js';
import { LOCAL_SITE } from '../../core/local-site.js';
import { isLoaderEnvName, LOADER_ENV_NAMES, siteRegistryProblems } from '../../core/site-config.js';
import { appendPilotLogs, createPilots, listCeQueues, setSiteBanned, updatePilots, type DbHandle } from '../../db/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { runWms } from '../helpers/cli.js';
import { describeDb } from '../helpers/db.js';
import { EventClient } from '../helpers/events.js';

const A = 'LCG.Alpha.org';
const B = 'LCG.Beta.org';
const C = 'LCG.Gamma.org';
const examples = resolve(import.meta.dirname, '../../site-configs');

interface SiteDoc {
  name: string;
  ce: string;
  type?: string;
  queue?: string;
  queueExtra?: Record<string, unknown>;
  description?: string;
}

/** A registry document: one CE with one queue per site. */
function registry(...sites: SiteDoc[]) {
  return {
    sites: sites.map((s) => ({
      name: s.name,
      ...(s.description !== undefined ? { description: s.description } : {}),
      computingElements: [{ name: s.ce, type: s.type ?? 'slurm', queues: [{ name: s.queue ?? 'long', ...(s.queueExtra ?? {}) }] }],
    })),
  };
}

/** Everything a registry write could touch, updated_at included: equal before and after = nothing written. */
async function registrySnapshot(db: DbHandle): Promise<unknown> {
  return {
    sites: await db.query(`select name, description, banned, ban_reason, updated_at::text as u from sites order by name`),
    ces: await db.query(
      `select name, site, type, settings, banned, ban_reason, updated_at::text as u from computing_elements order by name`,
    ),
    queues: await db.query(`select ce_id, name, settings, updated_at::text as u from ce_queues order by ce_id, name`),
  };
}

describe('the local site and the loader list (pure)', () => {
  it('core and the composition root name the same local site', () => {
    expect(CLI_LOCAL_SITE).toEqual(LOCAL_SITE);
  });

  it('the sites claim round-trips, and a malformed one makes the token invalid', () => {
    const sam = { role: 'site-admin', user: 'sam', vo: 'vo1', group: 'g', sites: [A, B] } as const;
    expect(claimsOf({ ...sam, sites: [...sam.sites] }).sites).toEqual([A, B]);
    expect(principalFromClaims({ ...claimsOf({ ...sam, sites: [...sam.sites] }) })).toEqual({ ...sam, sites: [A, B] });
    for (const sites of [A, [1], ['bad name'], [A, null], Array.from({ length: 101 }, (_, i) => `S${i}`)]) {
      expect(() => principalFromClaims({ sub: 'sam', role: 'site-admin', vo: 'vo1', group: 'g', sites })).toThrowError(
        expect.objectContaining({ code: 'WMS_AUTH_INVALID' }),
      );
    }
    // A user token carrying a sites claim gains nothing from it.
    const user = principalFromClaims({ sub: 'al', role: 'user', vo: 'vo1', group: 'g', sites: [A] });
    expect(user).not.toHaveProperty('sites');
    expect(managesSite(user, A)).toBe(false);
    expect(managesSite({ role: 'admin', user: 'root', vo: 'v', group: 'g' }, LOCAL_SITE.site)).toBe(true);
  });

  it('refuses loader and shell variables by exact name and by prefix, and lets ordinary ones through', () => {
    for (const n of [
      'LD_PRELOAD',
      'LD_LIBRARY_PATH',
      'LD_AUDIT',
      'ld_preload',
      'NODE_OPTIONS',
      'NODE_PATH',
      'BASH_ENV',
      'ENV',
      'BASH_FUNC_x',
      'SHELLOPTS',
      'PS4',
      'GCONV_PATH',
      'GLIBC_TUNABLES',
      'MALLOC_CHECK_',
      'PYTHONSTARTUP',
      'PYTHONPATH',
      'PERL5OPT',
      'PERL5LIB',
      'RUBYOPT',
      'JAVA_TOOL_OPTIONS',
      '_JAVA_OPTIONS',
      'WMS_TOKEN',
      'NODE_TLS_REJECT_UNAUTHORIZED',
    ]) {
      expect(isLoaderEnvName(n), n).toBe(true);
    }
    for (const n of ['PATH', 'HOME', 'OMP_NUM_THREADS', 'X509_CERT_DIR', 'MY_LD_FLAGS', 'ENVIRONMENT', 'NODE_ENV', 'SITE_NAME']) {
      expect(isLoaderEnvName(n), n).toBe(false);
    }
    expect(LOADER_ENV_NAMES).toContain('LD_*');
  });

  it('names the variable and its path, in a queue environment and in queue or CE settings', () => {
    const doc = registry({
      name: A,
      ce: 'ce.alpha.org',
      queueExtra: { environment: { OK_VAR: '1', LD_PRELOAD: '/tmp/x.so' }, settings: { environment: { NODE_OPTIONS: '--import=x' } } },
    });
    (doc.sites[0]!.computingElements[0] as Record<string, unknown>)['settings'] = { environment: { BASH_ENV: '/tmp/rc' } };
    const problems = siteRegistryProblems(doc);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^sites\[0\]\.computingElements\[0\]\.queues\[0\]\.environment\.LD_PRELOAD: LD_PRELOAD /),
        expect.stringMatching(/^sites\[0\]\.computingElements\[0\]\.queues\[0\]\.settings\.environment\.NODE_OPTIONS: NODE_OPTIONS /),
        expect.stringMatching(/^sites\[0\]\.computingElements\[0\]\.settings\.environment\.BASH_ENV: BASH_ENV /),
      ]),
    );
    expect(problems.some((p) => p.includes('OK_VAR'))).toBe(false);
  });
});

describeDb('site admins are scoped to their sites', (ctx) => {
  let t: TestApp;
  let url: string;
  let dir: string;
  let admin: string;
  /** Site admin of A only. */
  let samA: string;
  /** A site-admin token without a `sites` claim (as every one was before): administers nothing. */
  let samNone: string;
  /** A site-admin token whose claim names the local site (issuing one is refused; forged here with the key). */
  let samLocal: string;
  let pilotA: number;
  let pilotB: number;
  let pilotLocal: number;

  const wms = (token: string, ...args: string[]) => runWms(args, { url, token, dir });
  const call = (method: 'GET' | 'POST' | 'PUT', path: string, token: string, body?: unknown) => t.call(method, path, token, body);

  beforeAll(async () => {
    await ctx.truncate();
    t = await createTestApp({ db: ctx.handle });
    url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    dir = await mkdtemp(join(tmpdir(), 'wms-site-admins-'));
    admin = await t.admin();
    const issued = await call('POST', '/api/tokens', admin, { user: 'sam', vo: 'vo1', group: 'vo1_site', role: 'site-admin', sites: [A] });
    expect(issued.statusCode, issued.body).toBe(201);
    samA = issued.json<{ token: string }>().token;
    samNone = await t.tokenFor({ role: 'site-admin', user: 'nosite', vo: 'vo1', group: 'vo1_site' });
    samLocal = await t.tokenFor({ role: 'site-admin', user: 'loc', vo: 'vo1', group: 'vo1_site', sites: [LOCAL_SITE.site, A] });
    await registerLocalSite(ctx.handle, 2);
    const applied = await call(
      'PUT',
      '/api/sites',
      admin,
      registry({ name: A, ce: 'ce.alpha.org' }, { name: B, ce: 'ce.beta.org', type: 'htcondor', queue: 'q' }),
    );
    expect(applied.statusCode, applied.body).toBe(200);
    const queues = await listCeQueues(ctx.handle);
    const qid = (ce: string) => queues.find((q) => q.ce === ce)!.queueId;
    [pilotA, pilotB, pilotLocal] = (await createPilots(ctx.handle, [
      { stamp: 'sa-pilot-a', site: A, ce: 'ce.alpha.org', ceType: 'slurm', queue: 'long', queueId: qid('ce.alpha.org'), vo: 'vo1' },
      { stamp: 'sa-pilot-b', site: B, ce: 'ce.beta.org', ceType: 'htcondor', queue: 'q', queueId: qid('ce.beta.org'), vo: 'vo1' },
      {
        stamp: 'sa-pilot-local',
        site: LOCAL_SITE.site,
        ce: LOCAL_SITE.ce,
        ceType: 'local',
        queue: LOCAL_SITE.queue,
        queueId: qid(LOCAL_SITE.ce),
        vo: 'vo1',
      },
    ])) as [number, number, number];
    for (const id of [pilotA, pilotB, pilotLocal]) {
      await appendPilotLogs(ctx.handle, id, [{ at: new Date(), line: `secret-ish log line of pilot ${id}` }]);
    }
  });
  afterAll(async () => {
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('issuing site-admin tokens', () => {
    it('the API needs sites for a site admin, valid and not the local site, and refuses sites for other roles', async () => {
      const base = { user: 'sam', vo: 'vo1', group: 'vo1_site', role: 'site-admin' };
      const cases: [Record<string, unknown>, RegExp][] = [
        [base, /needs the sites it administers/],
        [{ ...base, sites: [] }, /needs the sites it administers/],
        [{ ...base, sites: ['bad name!'] }, /sites/],
        [{ ...base, sites: [LOCAL_SITE.site] }, /local site Local\.localhost is managed by admins only/],
        [{ ...base, role: 'user', sites: [A] }, /sites is only for site-admin tokens/],
        [{ ...base, role: 'admin', sites: [A] }, /sites is only for site-admin tokens/],
      ];
      for (const [body, message] of cases) {
        const r = await call('POST', '/api/tokens', admin, body);
        expect(r.statusCode, JSON.stringify(body)).toBe(400);
        expect(r.json().message).toMatch(message);
      }
      // Only admins issue tokens: a site admin cannot widen its own claim.
      expect((await call('POST', '/api/tokens', samA, { ...base, sites: [A, B] })).statusCode).toBe(403);
    });

    it('the token carries its sites, and GET /api/tokens/self shows them', async () => {
      const r = await call('POST', '/api/tokens', admin, {
        user: 'sam',
        vo: 'vo1',
        group: 'vo1_site',
        role: 'site-admin',
        sites: [A, B, A],
      });
      expect(r.statusCode).toBe(201);
      expect(r.json().identity).toMatchObject({ role: 'site-admin', user: 'sam', sites: [A, B] });
      const self = await call('GET', '/api/tokens/self', samA);
      expect(self.json()).toEqual({ role: 'site-admin', user: 'sam', vo: 'vo1', group: 'vo1_site', sites: [A] });
    });

    it('wms token issue --role site-admin needs --site (clear message), and --site goes into the token', async () => {
      const none = await wms(admin, 'token', 'issue', '--user', 'sam', '--vo', 'vo1', '--group', 'vo1_site', '--role', 'site-admin');
      expect(none.code).toBe(2);
      expect(none.err).toMatch(/--site: a site-admin token needs the sites it administers.*give --site NAME/);
      const local = await wms(
        admin,
        'token',
        'issue',
        '--user',
        'sam',
        '--vo',
        'vo1',
        '--group',
        'vo1_site',
        '--role',
        'site-admin',
        '--site',
        LOCAL_SITE.site,
      );
      expect(local.code).toBe(2);
      expect(local.err).toMatch(/managed by admins only/);
      const user = await wms(admin, 'token', 'issue', '--user', 'al', '--vo', 'vo1', '--group', 'vo1_user', '--site', A);
      expect(user.code).toBe(2);
      expect(user.err).toMatch(/--site is only for --role site-admin/);
      const ok = await wms(
        admin,
        'token',
        'issue',
        '--user',
        'sam',
        '--vo',
        'vo1',
        '--group',
        'vo1_site',
        '--role',
        'site-admin',
        '--site',
        A,
        '--site',
        B,
      );
      expect(ok.code, ok.err).toBe(0);
      const who = await wms(ok.out.trim(), 'token', 'whoami');
      expect(who.out).toContain(`sites: ${A}, ${B}`);
    });
  });

  describe('a site admin of A', () => {
    it('bans and allows A and its CE, and applies over A', async () => {
      expect((await wms(samA, 'site', 'ban', A, '--reason', 'downtime')).code).toBe(0);
      expect((await wms(samA, 'site', 'allow', A)).code).toBe(0);
      expect((await wms(samA, 'ce', 'ban', 'ce.alpha.org', '--reason', 'CE down')).code).toBe(0);
      expect((await wms(samA, 'ce', 'allow', 'ce.alpha.org')).code).toBe(0);
      const r = await call(
        'PUT',
        '/api/sites',
        samA,
        registry({ name: A, ce: 'ce.alpha.org', description: 'mine', queueExtra: { processors: 8 } }),
      );
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json()).toMatchObject({ sites: 1, queues: { created: 0, updated: 1 } });
      expect((await listCeQueues(ctx.handle)).find((q) => q.ce === 'ce.alpha.org')!.processors).toBe(8);
      // A new CE and queue at its own site.
      const more = await call('PUT', '/api/sites', samA, registry({ name: A, ce: 'ce2.alpha.org', queue: 'short' }));
      expect(more.statusCode, more.body).toBe(200);
    });

    it("cannot ban, allow or apply over B, create C, or take B's CE into A; nothing is written", async () => {
      const before = await registrySnapshot(ctx.handle);
      for (const action of ['ban', 'allow'] as const) {
        const site = await call('POST', `/api/sites/${B}/${action}`, samA, action === 'ban' ? { reason: 'x' } : undefined);
        expect(site.statusCode).toBe(403);
        expect(site.json().message).toMatch(`does not administer site ${B}`);
        const ce = await call(
          'POST',
          `/api/computing-elements/ce.beta.org/${action}`,
          samA,
          action === 'ban' ? { reason: 'x' } : undefined,
        );
        expect(ce.statusCode).toBe(403);
        expect(ce.json().message).toMatch(
          `computing element ce.beta.org belongs to site ${B}: this site-admin token does not administer site ${B}`,
        );
      }
      const cases: [unknown, RegExp][] = [
        [
          registry({ name: B, ce: 'ce.beta.org', type: 'htcondor', queue: 'q', queueExtra: { maxTotalPilots: 0 } }),
          new RegExp(`site ${B}: .*does not administer site ${B}`),
        ],
        [registry({ name: C, ce: 'ce.gamma.org' }), new RegExp(`site ${C}: .*does not administer site ${C}`)],
        // A document mixing its own site with another is refused whole.
        [
          registry(
            { name: A, ce: 'ce.alpha.org', queueExtra: { processors: 2 } },
            { name: B, ce: 'ce.beta.org', type: 'htcondor', queue: 'q' },
          ),
          new RegExp(`site ${B}`),
        ],
        // B's CE named under A would move it (a CE's name is unique): B changes too.
        [
          registry({ name: A, ce: 'ce.beta.org', type: 'htcondor', queue: 'q' }),
          new RegExp(`computing element ce.beta.org belongs to site ${B}`),
        ],
        // Same for the local site's CE.
        [
          registry({ name: A, ce: LOCAL_SITE.ce, type: 'local', queue: 'local' }),
          /computing element localhost belongs to site Local\.localhost: only admins/,
        ],
      ];
      for (const [doc, message] of cases) {
        const r = await call('PUT', '/api/sites', samA, doc);
        expect(r.statusCode, r.body).toBe(403);
        expect(r.json().code).toBe('WMS_FORBIDDEN');
        expect(r.json().message).toMatch(/^nothing applied: /);
        expect(r.json().message).toMatch(message);
      }
      expect(await registrySnapshot(ctx.handle)).toEqual(before);

      const ban = await wms(samA, 'site', 'ban', B, '--reason', 'mine now');
      expect(ban.code).toBe(1);
      expect(ban.err).toContain(`does not administer site ${B}`);
      const file = join(dir, 'beta.yaml');
      await writeFile(
        file,
        `sites:\n  - name: ${B}\n    computingElements:\n      - name: ce.beta.org\n        type: htcondor\n        queues:\n          - name: q\n            maxTotalPilots: 0\n`,
      );
      const apply = await wms(samA, 'site', 'apply', file);
      expect(apply.code).toBe(1);
      expect(apply.err).toMatch(`site ${B}: this site-admin token does not administer site ${B}`);
      expect(await registrySnapshot(ctx.handle)).toEqual(before);
    });

    it("reads A's pilots and logs, never B's or the local site's (404, and absent from lists)", async () => {
      const list = await call('GET', '/api/pilots', samA);
      expect(list.statusCode).toBe(200);
      expect(list.json().pilots.map((p: { id: number }) => p.id)).toEqual([pilotA]);
      expect((await call('GET', `/api/pilots?site=${B}`, samA)).json().pilots).toEqual([]);
      expect((await call('GET', `/api/pilots?site=${A}`, samA)).json().pilots.map((p: { id: number }) => p.id)).toEqual([pilotA]);
      expect((await call('GET', `/api/pilots/${pilotA}`, samA)).statusCode).toBe(200);
      const logs = await call('GET', `/api/pilots/${pilotA}/logs`, samA);
      expect(logs.json().lines[0].line).toContain(`pilot ${pilotA}`);
      for (const id of [pilotB, pilotLocal]) {
        for (const path of [`/api/pilots/${id}`, `/api/pilots/${id}/logs`, `/api/pilots/sa-pilot-${id === pilotB ? 'b' : 'local'}`]) {
          const r = await call('GET', path, samA);
          expect(r.statusCode, path).toBe(404);
          expect(r.body).not.toContain('secret-ish');
        }
      }
      const show = await wms(samA, 'pilot', 'show', String(pilotB));
      expect(show.code).toBe(1);
      expect(show.err).toMatch(`no pilot ${pilotB}`);
      const cliList = await wms(samA, 'pilot', 'list', '--json');
      expect(JSON.parse(cliList.out).pilots.map((p: { id: number }) => p.id)).toEqual([pilotA]);
    });

    it('gets the pilot and site events of A only', async () => {
      const wsUrl = `${url.replace(/^http/, 'ws')}/api/events`;
      const sa = await EventClient.open(wsUrl, samA);
      const all = await EventClient.open(wsUrl, admin);
      try {
        expect(await sa.subscribe({ pilots: true, sites: true })).toMatchObject({ type: 'subscribed', pilots: true, sites: true });
        expect(await all.subscribe({ pilots: true, sites: true })).toMatchObject({ type: 'subscribed' });
        await updatePilots(ctx.handle, [pilotB], { status: 'Failed', reason: 'B pilot failed' });
        await setSiteBanned(ctx.handle, B, true, 'B downtime');
        await new Promise((ok) => setTimeout(ok, 50));
        await updatePilots(ctx.handle, [pilotA], { status: 'Failed', reason: 'A pilot failed' });
        await setSiteBanned(ctx.handle, A, true, 'A downtime');
        // The admin sees both (the events happen); the site admin of A only A's.
        await all.waitFor((m) => m.type === 'pilot' && m['id'] === pilotB);
        await all.waitFor((m) => m.type === 'site' && m['site'] === B && m['kind'] === 'site');
        await sa.waitFor((m) => m.type === 'pilot' && m['id'] === pilotA);
        await sa.waitFor((m) => m.type === 'site' && m['site'] === A && m['kind'] === 'site');
        await all.waitFor((m) => m.type === 'site' && m['site'] === A && m['kind'] === 'site');
        await new Promise((ok) => setTimeout(ok, 700));
        expect(sa.messages.filter((m) => (m.type === 'pilot' || m.type === 'site') && m['site'] !== A)).toEqual([]);
      } finally {
        sa.close();
        all.close();
        await setSiteBanned(ctx.handle, A, false);
        await setSiteBanned(ctx.handle, B, false);
      }
    });
  });

  describe('the local site', () => {
    it('no site admin touches it, even one whose token names it; an admin does', async () => {
      const before = await registrySnapshot(ctx.handle);
      for (const token of [samA, samLocal, samNone]) {
        const ban = await call('POST', `/api/sites/${LOCAL_SITE.site}/ban`, token, { reason: 'mine' });
        expect(ban.statusCode).toBe(403);
        expect(ban.json().message).toMatch(/only admins manage the local site Local\.localhost/);
        expect((await call('POST', `/api/sites/${LOCAL_SITE.site}/allow`, token)).statusCode).toBe(403);
        expect((await call('POST', `/api/computing-elements/${LOCAL_SITE.ce}/ban`, token, { reason: 'mine' })).statusCode).toBe(403);
        const local = await wms(token, 'site', 'apply', join(examples, 'local.yaml'));
        expect(local.code).toBe(1);
        expect(local.err).toMatch(/only admins manage the local site Local\.localhost/);
        // The attack of issue 9: loader variables for the next local pilot (refused twice over).
        const hook = await call(
          'PUT',
          '/api/sites',
          token,
          registry({
            name: LOCAL_SITE.site,
            ce: LOCAL_SITE.ce,
            type: 'local',
            queue: LOCAL_SITE.queue,
            queueExtra: { environment: { NODE_OPTIONS: '--import=data:text/javascript,1' } },
          }),
        );
        expect(hook.statusCode).toBe(400);
        expect((await call('GET', `/api/pilots/${pilotLocal}`, token)).statusCode).toBe(404);
      }
      expect(await registrySnapshot(ctx.handle)).toEqual(before);
      // The claim naming it gives the rest of its sites, not the local one.
      expect((await call('POST', `/api/sites/${A}/ban`, samLocal, { reason: 'x' })).statusCode).toBe(200);
      expect((await call('POST', `/api/sites/${A}/allow`, samLocal)).statusCode).toBe(200);

      expect((await wms(admin, 'site', 'ban', LOCAL_SITE.site, '--reason', 'maintenance')).code).toBe(0);
      expect((await wms(admin, 'site', 'allow', LOCAL_SITE.site)).code).toBe(0);
      expect((await call('GET', `/api/pilots/${pilotLocal}`, admin)).statusCode).toBe(200);
      const applied = await wms(admin, 'site', 'apply', join(examples, 'local.yaml'));
      expect(applied.code, applied.err).toBe(0);
    });
  });

  describe('a site-admin token without sites', () => {
    it('administers nothing: no ban, no apply, no pilots', async () => {
      const before = await registrySnapshot(ctx.handle);
      const ban = await call('POST', `/api/sites/${A}/ban`, samNone, { reason: 'x' });
      expect(ban.statusCode).toBe(403);
      expect(ban.json().message).toMatch(/it administers no site/);
      expect((await call('POST', '/api/computing-elements/ce.alpha.org/ban', samNone, { reason: 'x' })).statusCode).toBe(403);
      expect((await call('PUT', '/api/sites', samNone, registry({ name: A, ce: 'ce.alpha.org' }))).statusCode).toBe(403);
      expect((await call('GET', '/api/pilots', samNone)).json().pilots).toEqual([]);
      expect((await call('GET', `/api/pilots/${pilotA}`, samNone)).statusCode).toBe(404);
      expect(await registrySnapshot(ctx.handle)).toEqual(before);
      // Reading the registry and a site's status stays open (nothing there is secret).
      expect((await call('GET', '/api/sites', samNone)).statusCode).toBe(200);
      expect((await call('GET', `/api/sites/${A}/status`, samNone)).statusCode).toBe(200);
    });
  });

  describe('queue environment', () => {
    it('refuses NODE_OPTIONS and LD_PRELOAD (and the settings detour) with 400 naming the variable; nothing is written', async () => {
      const before = await registrySnapshot(ctx.handle);
      const cases: [Record<string, unknown>, string][] = [
        [{ environment: { NODE_OPTIONS: '--import=data:text/javascript,process.exit(7)' } }, 'NODE_OPTIONS'],
        [{ environment: { LD_PRELOAD: '/tmp/evil.so' } }, 'LD_PRELOAD'],
        [{ environment: { LD_LIBRARY_PATH: '/tmp' } }, 'LD_LIBRARY_PATH'],
        [{ environment: { BASH_ENV: '/tmp/rc' } }, 'BASH_ENV'],
        [{ settings: { environment: { LD_PRELOAD: '/tmp/evil.so' } } }, 'LD_PRELOAD'],
      ];
      for (const token of [samA, admin]) {
        for (const [extra, name] of cases) {
          const r = await call(
            'PUT',
            '/api/sites',
            token,
            registry({ name: A, ce: 'ce.alpha.org', queueExtra: { ...extra, processors: 3 } }),
          );
          expect(r.statusCode, r.body).toBe(400);
          expect(r.json().message).toContain(name);
          expect(
            r
              .json()
              .problems.map((p: { message: string }) => p.message)
              .join('\n'),
          ).toMatch(
            new RegExp(
              `sites\\[0\\]\\.computingElements\\[0\\]\\.queues\\[0\\]\\.(settings\\.)?environment\\.${name}: ${name} changes how programs load`,
            ),
          );
        }
      }
      expect(await registrySnapshot(ctx.handle)).toEqual(before);

      const file = join(dir, 'hook.yaml');
      await writeFile(
        file,
        [
          `sites:`,
          `  - name: ${A}`,
          `    computingElements:`,
          `      - name: ce.alpha.org`,
          `        type: slurm`,
          `        queues:`,
          `          - name: long`,
          `            environment:`,
          `              OMP_NUM_THREADS: "4"`,
          `              NODE_OPTIONS: --import=./x.mjs`,
        ].join('\n'),
      );
      const cli = await wms(samA, 'site', 'apply', file);
      expect(cli.code).toBe(1);
      expect(cli.err).toContain(
        `${file}:10:29: sites[0].computingElements[0].queues[0].environment.NODE_OPTIONS: NODE_OPTIONS changes how programs load`,
      );
      expect(await registrySnapshot(ctx.handle)).toEqual(before);

      // Ordinary variables still go through.
      const ok = await call(
        'PUT',
        '/api/sites',
        samA,
        registry({ name: A, ce: 'ce.alpha.org', queueExtra: { environment: { OMP_NUM_THREADS: '4' } } }),
      );
      expect(ok.statusCode, ok.body).toBe(200);
      expect((await listCeQueues(ctx.handle)).find((q) => q.ce === 'ce.alpha.org')!.settings['environment']).toEqual({
        OMP_NUM_THREADS: '4',
      });
    });
  });
});
