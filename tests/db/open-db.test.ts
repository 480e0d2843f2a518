import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isWmsError } from '../../core/errors.js';
import { asDbUnavailable, getOrCreateSigningKey, migrationsFolder, openDb, redactUrl, type SigningKey } from '../../db/index.js';
import { describeDb, describePg } from '../helpers/db.js';

describe('openDb', () => {
  it('finds the committed migrations', () => {
    expect(migrationsFolder()).toMatch(/db[\\/]migrations$/);
  });

  it('keeps a PGlite database in a directory across opens (and creates the directory)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'wms-pglite-'));
    const dir = join(root, 'nested', 'db');
    try {
      const a = await openDb(dir);
      expect(a.driver).toBe('pglite');
      await a.query(`insert into sites (name) values ('KEEP')`);
      await a.close();
      const b = await openDb(dir); // migrations already applied: a no-op
      expect(await b.query('select name from sites')).toEqual([{ name: 'KEEP' }]);
      await b.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('an unreachable PostgreSQL is WMS_DB_UNAVAILABLE, retryable, without the password', async () => {
    const err = await openDb('postgres://wms:s3cret@127.0.0.1:1/wms').catch((e: unknown) => e);
    expect(isWmsError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'WMS_DB_UNAVAILABLE', retryable: true });
    const message = (err as Error).message;
    expect(message).toMatch(/^cannot reach the database at postgres:\/\/wms@127\.0\.0\.1:1\/wms: /);
    expect(message).not.toContain('s3cret');
  });

  it('redacts passwords and maps connection errors', () => {
    expect(redactUrl('postgresql://u:p@h:5432/d?x=1')).toBe('postgresql://u@h:5432/d?x=1');
    expect(redactUrl('postgres://h/d')).toBe('postgres://h/d');
    const e = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(asDbUnavailable(e)).toMatchObject({ code: 'WMS_DB_UNAVAILABLE', retryable: true });
    const syntax = Object.assign(new Error('syntax error'), { code: '42601' });
    expect(asDbUnavailable(syntax)).toBe(syntax);
  });
});

describeDb('DbHandle', (ctx) => {
  it('query answers plain rows (int8 as number, numeric as string, dates, arrays, JSON) on both drivers', async () => {
    const [row] = await ctx.handle.query(
      `select 1::int8 as big, 2::int4 as small, 1.5::numeric as num, now() as at, array['a','b'] as arr,
              '{"k": 1}'::jsonb as doc, $1::text as param`,
      ['p'],
    );
    expect(row).toEqual({ big: 1, small: 2, num: '1.5', at: expect.any(Date), arr: ['a', 'b'], doc: { k: 1 }, param: 'p' });
  });

  it('getOrCreateSigningKey creates one key and then keeps answering it', async () => {
    let made = 0;
    const create = async (): Promise<SigningKey<Record<string, string>>> => {
      made++;
      return { kid: `k${made}`, privateJwk: { d: 'secret', kid: `k${made}` }, publicJwk: { x: 'pub', kid: `k${made}` } };
    };
    const [a, b] = await Promise.all([getOrCreateSigningKey(ctx.handle, create), getOrCreateSigningKey(ctx.handle, create)]);
    expect(a).toEqual(b);
    expect(made).toBe(1);
    expect(await getOrCreateSigningKey(ctx.handle, create)).toEqual({
      kid: 'k1',
      privateJwk: { d: 'secret', kid: 'k1' },
      publicJwk: { x: 'pub', kid: 'k1' },
    });
  });
});

describePg('migrations on PostgreSQL', () => {
  it('several processes opening a fresh database at once migrate it once', async () => {
    const admin = await openDb(process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', {
      migrate: false,
      poolSize: 1,
    });
    const name = `wms_test_migrate_${process.pid}_${Date.now()}`;
    await admin.query(`create database ${name}`);
    try {
      const u = new URL(process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
      u.pathname = `/${name}`;
      const handles = await Promise.all(Array.from({ length: 6 }, () => openDb(u.toString(), { poolSize: 1 })));
      const [m] = await handles[0]!.query<{ n: number }>('select count(*) as n from drizzle.__drizzle_migrations');
      // Once each: as many rows as committed migrations.
      const journal = JSON.parse(readFileSync(join(migrationsFolder(), 'meta/_journal.json'), 'utf8')) as { entries: unknown[] };
      expect(Number(m!.n)).toBe(journal.entries.length);
      await Promise.all(handles.map((h) => h.close()));
    } finally {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.close();
    }
  });
});
