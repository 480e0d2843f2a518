/** The private cluster the fault tests run on: made, restarted both ways, and gone after. */
import { existsSync } from 'node:fs';
import pg from 'pg';
import { expect, it } from 'vitest';
import { PgCluster } from '../helpers/pg-cluster.js';

async function one(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ a: number }>('select 1 as a')).rows[0]!.a;
  } finally {
    await c.end();
  }
}

it('starts on a port of its own, survives restarts -m fast and -m immediate, and is removed', async () => {
  const c = await PgCluster.create();
  try {
    expect(c.port).not.toBe(5432);
    const url = await c.createDatabase('fault_probe');
    expect(await one(url)).toBe(1);
    await c.restart('fast');
    expect(await one(url)).toBe(1);
    await c.stop('immediate');
    await expect(one(url)).rejects.toThrow();
    await c.start();
    expect(await one(url)).toBe(1);
  } finally {
    await c.destroy();
  }
  expect(existsSync(c.dir)).toBe(false);
});
