/**
 * The one raw-SQL path (db/queries/raw.ts): parameters are bound by the database (a `$1` in a
 * string literal is text), int8 is read as a JS number on both drivers (and refused beyond
 * 2^53-1), on a handle, a drizzle database and a transaction alike.
 */
import { expect, it } from 'vitest';
import { rows } from '../../db/queries/raw.js';
import { describeDb } from '../helpers/db.js';

describeDb('raw SQL', (ctx) => {
  it("binds parameters in the database: '$1' inside a literal stays text", async () => {
    const [r] = await rows<{ lit: string; p: string; both: string }>(
      ctx.handle,
      `select '$1' as lit, $1::text as p, '$2 costs ' || $2::text as both`,
      ['value', 'five'],
    );
    expect(r).toEqual({ lit: '$1', p: 'value', both: '$2 costs five' });
    // The same through DbHandle.query, a drizzle database and a transaction.
    expect(await ctx.handle.query(`select '$1' as lit, $1::int as p`, [7])).toEqual([{ lit: '$1', p: 7 }]);
    expect(await rows(ctx.db, `select '$1' as lit, $1::int as p`, [8])).toEqual([{ lit: '$1', p: 8 }]);
    await ctx.db.transaction(async (tx) => {
      expect(await rows(tx, `select '$1' as lit, $1::int as p`, [9])).toEqual([{ lit: '$1', p: 9 }]);
    });
  });

  it('sends an array as ONE parameter', async () => {
    const [r] = await rows<{ n: number }>(ctx.handle, `select cardinality($1::bigint[]) as n`, [[1, 2, 3]]);
    expect(r!.n).toBe(3);
  });

  it('reads int8 (bigint columns, count(*), int8[]) as JS numbers', async () => {
    const check = (r: Record<string, unknown> | undefined) => {
      expect(r).toEqual({ big: 9007199254740991, n: 2, a: [1, 9007199254740991], neg: -9007199254740991 });
      expect(typeof r!['n']).toBe('number');
    };
    const text = `select 9007199254740991::int8 as big, count(*) as n, array[1, 9007199254740991]::int8[] as a,
                          (-9007199254740991)::int8 as neg
                     from (values (1), (2)) v(x)`;
    check((await rows(ctx.handle, text))[0]);
    check((await ctx.handle.query(text))[0]);
    await ctx.db.transaction(async (tx) => check((await rows(tx, text))[0]));
  });

  it('refuses an int8 beyond 2^53-1 with a clear error instead of rounding it', async () => {
    await expect(rows(ctx.handle, `select 9007199254740992::int8 as id`)).rejects.toThrow(/int8 value 9007199254740992 is beyond 2\^53-1/);
    await expect(rows(ctx.handle, `select (-9007199254740993)::int8 as id`)).rejects.toThrow(/beyond 2\^53-1/);
    // The connection is still usable afterwards.
    expect(await rows(ctx.handle, `select 1::int8 as one`)).toEqual([{ one: 1 }]);
  });

  it('reads timestamptz as Date on both drivers', async () => {
    const [r] = await rows<{ at: unknown }>(ctx.handle, `select '2026-01-02T03:04:05.678Z'::timestamptz as at`);
    expect(r!.at).toEqual(new Date('2026-01-02T03:04:05.678Z'));
  });
});
