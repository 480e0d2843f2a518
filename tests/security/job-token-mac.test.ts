/**
 * Issue 14, point 5: job tokens (one minted per match) carry an HMAC-SHA256 under a key derived
 * from the deployment's Ed25519 private key instead of an EdDSA signature. What must hold: a job
 * token signed by one replica works on another of the same database; every other role stays
 * EdDSA; a MAC never stands for anything but a job (a MAC-signed admin token made with the real
 * key is refused); the public key is never accepted as a MAC key (algorithm confusion);
 * tampered, unsigned and foreign tokens are refused; a job token can be revoked by itself.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getOrCreateSigningKey } from '../../db/index.js';
import { jobMacKey } from '../../services/token-signer.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function headerOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** A compact JWS with header `alg`, these claims and an HMAC-SHA256 under `key`. */
function macToken(key: Uint8Array | string, header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

describeDb('job tokens: MAC-signed, verified by the services only', (ctx) => {
  let t: TestApp;
  let admin: string;
  let key: { kid: string; privateJwk: { d?: string; x?: string }; publicJwk: { x?: string } };

  const whoami = (token: string) => t.call('GET', '/api/tokens/self', token);
  const jobToken = () => t.tokenFor({ role: 'job', user: 'alice', vo: 'vo1', group: 'vo1_user', jobId: 7, pilotId: 3 });

  beforeAll(async () => {
    // `t.tokenFor` signs with a signer of its own on the same database: another replica.
    t = await createTestApp({ db: ctx.handle });
    admin = await t.admin();
    key = await getOrCreateSigningKey(ctx.handle, () => Promise.reject(new Error('the key exists by now')));
  });
  afterAll(async () => {
    await t?.close();
  });

  it('signs job tokens with HS256 and every other role with EdDSA, under the deployment key id', async () => {
    const job = await jobToken();
    expect(headerOf(job)).toEqual({ alg: 'HS256', kid: key.kid, typ: 'JWT' });
    expect(claimsOf(job)).toMatchObject({ role: 'job', sub: 'alice', job: 7, pilot: 3, iss: t.config.tokens.issuer });
    for (const other of [admin, await t.user('bob'), await t.pilot(3)]) {
      expect(headerOf(other)).toEqual({ alg: 'EdDSA', kid: key.kid, typ: 'JWT' });
    }
  });

  it('accepts a job token made by another replica of the same database', async () => {
    const res = await whoami(await jobToken());
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ role: 'job', user: 'alice', jobId: 7, pilotId: 3 });
  });

  it('refuses a MAC-signed token of any other role, even made with the real MAC key', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: 'root', role: 'admin', vo: 'vo1', group: 'vo1_admin', iss: t.config.tokens.issuer };
    const forged = macToken(
      jobMacKey(key.kid, key.privateJwk),
      { alg: 'HS256', kid: key.kid, typ: 'JWT' },
      {
        ...claims,
        aud: t.config.tokens.issuer,
        iat: now,
        exp: now + 600,
        jti: 'x',
      },
    );
    const res = await whoami(forged);
    expect(res.statusCode).toBe(401);
    expect(res.json()).toEqual({ code: 'WMS_AUTH_INVALID', message: 'invalid token: a MAC-signed token must be a job token' });
    const revoke = await t.call('POST', '/api/tokens/revocations', admin, { token: forged });
    expect(revoke.statusCode).toBe(400);
  });

  it('never takes the public key as a MAC key (algorithm confusion), nor an unsigned or tampered token', async () => {
    const job = await jobToken();
    const claims = claimsOf(job);
    const header = { alg: 'HS256', kid: key.kid, typ: 'JWT' };
    const withPublic = [macToken(key.publicJwk.x!, header, claims), macToken(Buffer.from(key.publicJwk.x!, 'base64url'), header, claims)];
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    const [h, , s] = job.split('.');
    const tampered = `${h}.${b64({ ...claims, job: 8 })}.${s}`;
    const otherKey = macToken(Buffer.alloc(32, 1), header, claims);
    for (const bad of [...withPublic, unsigned, tampered, otherKey]) {
      const res = await whoami(bad);
      expect(res.statusCode, bad).toBe(401);
      expect(res.json<{ code: string }>().code).toBe('WMS_AUTH_INVALID');
    }
  });

  it('revokes one job token by the token itself', async () => {
    const job = await jobToken();
    expect((await whoami(job)).statusCode).toBe(200);
    const res = await t.call('POST', '/api/tokens/revocations', admin, { token: job, reason: 'test' });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ revocation: { jti: claimsOf(job)['jti'] } });
    expect((await whoami(job)).json()).toEqual({ code: 'WMS_AUTH_INVALID', message: 'invalid token: token revoked' });
  });
});
