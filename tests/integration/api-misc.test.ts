/**
 * Health, OpenAPI, tokens and the error edge through `app.inject()`.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

let t: TestApp;

describeDb('health, OpenAPI, tokens, errors', (ctx) => {
  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('health', () => {
    it('answers without a token', async () => {
      const res = await t.call('GET', '/api/health', null);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ status: 'ok', db: 'ok' });
    });
  });

  describe('OpenAPI', () => {
    // The document itself (validators, components, operation ids, a generated client): openapi.test.ts.
    it('/docs serves the Swagger UI', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/docs/' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/html/);
    });
  });

  describe('tokens', () => {
    it('an admin issues a user token that works', async () => {
      const res = await t.call('POST', '/api/tokens', await t.admin(), { user: 'dave', vo: 'vo1', group: 'vo1_user', ttlSeconds: 3600 });
      expect(res.statusCode, res.body).toBe(201);
      const { token, identity, expiresAt } = res.json<{ token: string; identity: object; expiresAt: string }>();
      expect(identity).toEqual({ role: 'user', user: 'dave', vo: 'vo1', group: 'vo1_user' });
      expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(3500_000);
      const self = await t.call('GET', '/api/tokens/self', token);
      expect(self.json()).toEqual({ role: 'user', user: 'dave', vo: 'vo1', group: 'vo1_user' });
    });

    it('an admin issues a pilot token bound to one pilot', async () => {
      const res = await t.call('POST', '/api/tokens', await t.admin(), { role: 'pilot', vo: 'vo1', pilotId: 42 });
      expect(res.statusCode).toBe(201);
      const self = await t.call('GET', '/api/tokens/self', res.json<{ token: string }>().token);
      expect(self.json()).toMatchObject({ role: 'pilot', pilotId: 42, vo: 'vo1' });
    });

    it('users cannot issue tokens; bad names and lifetimes are refused', async () => {
      const user = await t.user('eve');
      expect((await t.call('POST', '/api/tokens', user, { user: 'x', vo: 'vo1', group: 'g' })).statusCode).toBe(403);
      const admin = await t.admin();
      const bad = await t.call('POST', '/api/tokens', admin, { user: 'a b', vo: 'vo1', group: 'g' });
      expect(bad.statusCode).toBe(400);
      const long = await t.call('POST', '/api/tokens', admin, { user: 'a', vo: 'vo1', group: 'g', ttlSeconds: 10 ** 9 });
      expect(long.statusCode).toBe(400);
    });

    it('a malformed Authorization header is 401 WMS_AUTH_INVALID', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/api/tokens/self', headers: { authorization: 'Basic abc' } });
      expect(res.statusCode).toBe(401);
      expect(res.json<{ code: string }>().code).toBe('WMS_AUTH_INVALID');
    });
  });

  describe('error edge', () => {
    it('an unknown route is 404 WMS_NOT_FOUND', async () => {
      const res = await t.call('GET', '/api/nothing', null);
      expect(res.statusCode).toBe(404);
      expect(res.json<{ code: string }>().code).toBe('WMS_NOT_FOUND');
    });

    it('malformed JSON is 400 WMS_VALIDATION', async () => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/jobs',
        headers: { authorization: `Bearer ${await t.user('frank')}`, 'content-type': 'application/json' },
        payload: '{"jdl": ',
      });
      expect(res.statusCode).toBe(400);
      expect(res.json<{ code: string }>().code).toBe('WMS_VALIDATION');
    });

    it('a database outage is 503 with Retry-After, internals hidden', async () => {
      const broken = await createTestApp();
      try {
        const token = await broken.user('gina');
        await broken.db.close();
        const health = await broken.call('GET', '/api/health', null);
        expect(health.statusCode).toBe(503);
        expect(health.headers['retry-after']).toBeDefined();
        expect(health.json<{ code: string }>().code).toBe('WMS_DB_UNAVAILABLE');
        const list = await broken.call('GET', '/api/jobs', token);
        expect([500, 503]).toContain(list.statusCode);
        expect(list.body).not.toMatch(/stack|at .*\.ts/);
      } finally {
        await broken.app.close();
        await rm(broken.dataDir, { recursive: true, force: true });
      }
    });
  });
});
