/**
 * Issue 9, point 9: no token could be revoked. Now an admin revokes one token, or every token of
 * a user (a VO and a name) or of a pilot, through the API and the CLI; the revoked token answers
 * 401 on this replica at once and on another replica of the same database within its poll
 * interval; tokens issued afterwards work. On PGlite and on PostgreSQL (where the second replica
 * is a second app with its own connection pool).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPilots, insertRevocation, type DbHandle } from '../../db/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { runWms } from '../helpers/cli.js';
import { describeDb } from '../helpers/db.js';
import { waitUntil } from '../helpers/system.js';

describeDb('token revocation', (ctx) => {
  let t: TestApp;
  let admin: string;
  let url: string;

  const whoami = (token: string, app: TestApp = t) => app.call('GET', '/api/tokens/self', token);
  const revoke = (body: unknown, token = admin) => t.call('POST', '/api/tokens/revocations', token, body);

  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
    admin = await t.admin();
    url = (await t.app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1');
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('through the API', () => {
    it('revokes one token: it answers 401, the same user’s other tokens work', async () => {
      const stolen = await t.user('alice', 'atlas');
      const other = await t.user('alice', 'atlas');
      expect((await whoami(stolen)).statusCode).toBe(200); // verified once: cached
      const res = await revoke({ token: stolen, reason: 'leaked in a log' });
      expect(res.statusCode, res.body).toBe(201);
      const { revocation } = res.json<{ revocation: { jti: string; subject: string | null; reason: string; revokedBy: string } }>();
      expect(revocation).toMatchObject({ subject: null, reason: 'leaked in a log', revokedBy: 'vo1/root' });
      expect(revocation.jti).toMatch(/^[0-9a-f-]{36}$/);
      const refused = await whoami(stolen);
      expect(refused.statusCode).toBe(401);
      expect(refused.json()).toEqual({ code: 'WMS_AUTH_INVALID', message: 'invalid token: token revoked' });
      expect((await t.call('GET', '/api/jobs', stolen)).statusCode).toBe(401);
      expect((await whoami(other)).statusCode).toBe(200);
      // Revoking it again answers the same row.
      const again = await revoke({ token: stolen });
      expect(again.json<{ revocation: { jti: string } }>().revocation.jti).toBe(revocation.jti);
    });

    it('revokes every token of a user of one VO; the same name in another VO and later tokens work', async () => {
      const before = [await t.user('bob', 'atlas'), await t.user('bob', 'atlas', 'atlas_prod')];
      const job = await t.tokenFor({ role: 'job', user: 'bob', vo: 'atlas', group: 'atlas_user', jobId: 1, pilotId: null });
      const otherVo = await t.user('bob', 'lhcb');
      const res = await revoke({ vo: 'atlas', user: 'bob' });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json()).toMatchObject({ revocation: { jti: null, vo: 'atlas', subject: 'bob' } });
      for (const token of [...before, job]) expect((await whoami(token)).statusCode).toBe(401);
      expect((await whoami(before[0]!)).json<{ message: string }>().message).toMatch(/every token of bob issued before/);
      expect((await whoami(otherVo)).statusCode).toBe(200);
      // Issued after the revocation (even within the same second): works.
      const issued = await t.call('POST', '/api/tokens', admin, { user: 'bob', vo: 'atlas', group: 'atlas_user' });
      expect(issued.statusCode, issued.body).toBe(201);
      const after = issued.json<{ token: string }>();
      expect((await whoami(after.token)).statusCode).toBe(200);
    });

    it("revokes a pilot's tokens (pilotId), in whatever VO they were issued", async () => {
      const [id] = await createPilots(t.db, [
        { stamp: `rv-${Date.now()}`, site: 'S', ce: 'c', ceType: 'local', queue: 'q', queueId: null, vo: '*' },
      ]);
      const p1 = await t.pilot(id!, '*');
      const p2 = await t.pilot(id!, 'vo1');
      const res = await revoke({ pilotId: id });
      expect(res.json()).toMatchObject({ revocation: { vo: null, subject: `pilot:${id}` } });
      expect((await whoami(p1)).statusCode).toBe(401);
      expect((await whoami(p2)).statusCode).toBe(401);
      expect((await whoami(await t.pilot(id! + 1))).statusCode).toBe(200);
    });

    it('lists the revocations in force, newest first (admins only)', async () => {
      const res = await t.call('GET', '/api/tokens/revocations', admin);
      expect(res.statusCode).toBe(200);
      const list = res.json<{ revocations: { id: number; subject: string | null }[] }>().revocations;
      expect(list.length).toBeGreaterThanOrEqual(3);
      expect(list.map((r) => r.id)).toEqual([...list.map((r) => r.id)].sort((a, b) => b - a));
      const alice = await t.user('alice');
      expect((await t.call('GET', '/api/tokens/revocations', alice)).statusCode).toBe(403);
      expect((await revoke({ vo: 'vo1', user: 'root' }, alice)).statusCode).toBe(403);
    });

    it('refuses what names nothing, or two things, or a token that is not ours (400)', async () => {
      const cases: [unknown, RegExp][] = [
        [{}, /name one thing to revoke/],
        [{ token: await t.user('x'), vo: 'vo1', user: 'x' }, /name one thing to revoke/],
        [{ vo: 'vo1' }, /needs both vo and user/],
        [{ jti: 'abc' }, /needs expiresAt/],
        [{ token: 'not.a.token' }, /not a token of this deployment/],
        [{ token: `${(await t.user('x')).slice(0, -4)}AAAA` }, /not a token of this deployment/],
        [{ vo: 'vo1', user: 'x', extra: 1 }, /not allowed/],
        [{ pilotId: 0 }, /pilotId/],
        [{ vo: 'vo 1', user: 'x' }, /vo/],
      ];
      for (const [body, message] of cases) {
        const res = await revoke(body);
        expect(res.statusCode, `${JSON.stringify(body)}: ${res.body}`).toBe(400);
        expect(res.json<{ message: string }>().message).toMatch(message);
      }
    });

    it('ignores a revocation past its expiry', async () => {
      const carol = await t.user('carol');
      await insertRevocation(t.db, { vo: 'vo1', subject: 'carol', revokedAt: new Date(), expiresAt: new Date(Date.now() - 1000) });
      // Another app on the database reads every row in force when it opens: none for carol.
      const fresh = await createTestApp({ db: t.db });
      try {
        expect((await whoami(carol, fresh)).statusCode).toBe(200);
      } finally {
        await fresh.close();
      }
    });
  });

  describe('through the CLI', () => {
    it('wms token revoke TOKEN', async () => {
      const token = await t.user('dave');
      const r = await runWms(['token', 'revoke', token, '--reason', 'lost laptop'], { url, token: admin });
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/^revoked: token [0-9a-f-]{36}$/);
      expect((await whoami(token)).statusCode).toBe(401);
    });

    it('wms token revoke --user --vo, --pilot; wms token revocations', async () => {
      const erin = await t.user('erin', 'cms');
      const r = await runWms(['token', 'revoke', '--user', 'erin', '--vo', 'cms'], { url, token: admin });
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/^revoked: every token of erin \(VO cms\) issued until /);
      expect((await whoami(erin)).statusCode).toBe(401);

      const pilot = await t.pilot(424_242);
      const p = await runWms(['token', 'revoke', '--pilot', '424242', '--json'], { url, token: admin });
      expect(p.code, p.err).toBe(0);
      expect(JSON.parse(p.out)).toMatchObject({ subject: 'pilot:424242', vo: null });
      expect((await whoami(pilot)).statusCode).toBe(401);

      const list = await runWms(['token', 'revocations'], { url, token: admin });
      expect(list.code, list.err).toBe(0);
      expect(list.out).toContain('every token of erin (VO cms)');
      expect(list.out).toContain('every token of pilot:424242');
    });

    it('usage errors and refusals are clear', async () => {
      const none = await runWms(['token', 'revoke'], { url, token: admin });
      expect(none.code).not.toBe(0);
      expect(none.err).toMatch(/give one of: a TOKEN, --user U --vo V, or --pilot ID/);
      const half = await runWms(['token', 'revoke', '--user', 'erin'], { url, token: admin });
      expect(half.err).toMatch(/--user and --vo go together/);
      const badPilot = await runWms(['token', 'revoke', '--pilot', 'x1'], { url, token: admin });
      expect(badPilot.err).toMatch(/--pilot: "x1" is not a pilot id/);
      const notAdmin = await runWms(['token', 'revoke', '--user', 'erin', '--vo', 'cms'], { url, token: await t.user('erin') });
      expect(notAdmin.code).not.toBe(0);
      expect(notAdmin.err).toMatch(/403|may not/);
      const help = await runWms(['token', 'revoke', '--help'], { url, token: admin });
      expect(help.out + help.err).toMatch(/--user U --vo V \| --pilot ID/);
    });
  });

  describe('across replicas', () => {
    let second: TestApp;
    let h2: DbHandle;
    beforeAll(async () => {
      // PostgreSQL: a second pool, as another replica has; PGlite: the same (single) connection.
      h2 = await ctx.open();
      second = await createTestApp({ db: h2, config: { tokens: { ...t.config.tokens, revocationPollSeconds: 1 } } });
    });
    afterAll(async () => {
      await second?.close();
    });

    it('a revocation made through one replica holds on the other within its poll interval', async () => {
      const token = await t.user('frank');
      expect((await whoami(token, second)).statusCode).toBe(200); // cached there
      const t0 = Date.now();
      expect((await revoke({ token })).statusCode).toBe(201);
      await waitUntil('the second replica to refuse the token', async () => (await whoami(token, second)).statusCode === 401, 10_000, 50);
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeLessThan(1000 + 1500); // the poll interval, and slack for a loaded machine

      const grace = await t.user('grace', 'atlas');
      expect((await whoami(grace, second)).statusCode).toBe(200);
      expect((await revoke({ vo: 'atlas', user: 'grace' })).statusCode).toBe(201);
      await waitUntil(
        'the subject revocation on the second replica',
        async () => (await whoami(grace, second)).statusCode === 401,
        2500,
        50,
      );
      // Issued by the second replica afterwards: works on both.
      const issued = await second.call('POST', '/api/tokens', await second.admin(), { user: 'grace', vo: 'atlas', group: 'atlas_user' });
      expect(issued.statusCode, issued.body).toBe(201);
      const later = issued.json<{ token: string }>().token;
      expect((await whoami(later, second)).statusCode).toBe(200);
      expect((await whoami(later)).statusCode).toBe(200);
    });
  });
});
