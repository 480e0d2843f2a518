/**
 * The pg pool of `openDb` through PostgreSQL restarts, on a private cluster (never the shared
 * server): a client checked out for a transaction, with no query running at the moment the
 * server goes away, must not kill the process (node-postgres emits 'error' on it, and an
 * 'error' without a listener is an uncaught exception); the transaction fails with an error
 * that `asDbUnavailable` maps to WMS_DB_UNAVAILABLE; the same handle works again once the
 * server is back, without being reopened.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isWmsError } from '../../core/errors.js';
import { asDbUnavailable, openDb, pingDb, type DbHandle } from '../../db/index.js';
import { PgCluster, pgClusterProblem } from '../helpers/pg-cluster.js';
import { sql } from 'drizzle-orm';

const problem = pgClusterProblem();
if (problem && process.env['CI']) throw new Error(`fault tests need a private PostgreSQL cluster: ${problem}`);
if (problem) console.warn(`SKIPPED db-outage-pool: ${problem}`);

let cluster: PgCluster;
let handle: DbHandle;
/** Uncaught exceptions seen while the server restarts (the bug: "Unhandled 'error' event"). */
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);

beforeAll(async () => {
  if (problem) return;
  cluster = await PgCluster.create();
  handle = await openDb(await cluster.createDatabase('outage_pool'), { poolSize: 4 });
  process.on('uncaughtException', onUncaught);
});

afterAll(async () => {
  process.off('uncaughtException', onUncaught);
  await handle?.close().catch(() => undefined);
  await cluster?.destroy();
});

/**
 * Opens a transaction on one pooled client, runs a statement in it, then holds it open (no
 * query in flight) until `release` resolves; answers how the transaction ended.
 */
function heldTransaction(release: Promise<void>): { opened: Promise<void>; ended: Promise<unknown> } {
  let opened!: () => void;
  const openedP = new Promise<void>((r) => (opened = r));
  const ended = handle.db
    .transaction(async (tx) => {
      await tx.execute(sql`select 1`);
      opened();
      await release;
      await tx.execute(sql`select 2`);
    })
    .then(
      () => 'committed',
      (e: unknown) => e,
    );
  return { opened: openedP, ended };
}

for (const mode of ['fast', 'immediate', 'fast'] as const) {
  it.skipIf(problem !== null)(`survives pg_ctl restart -m ${mode} with clients checked out in transactions`, async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const held = [heldTransaction(gate), heldTransaction(gate)];
    await Promise.all(held.map((h) => h.opened));

    await cluster.stop(mode);
    // While it is down: a query fails, and the failure reads as an outage, never as a bug.
    const down = await handle.query('select 1').then(
      () => null,
      (e: unknown) => e,
    );
    expect(down).not.toBeNull();
    const mapped = asDbUnavailable(down);
    expect(isWmsError(mapped) && mapped.code).toBe('WMS_DB_UNAVAILABLE');
    await expect(pingDb(handle)).rejects.toMatchObject({ code: 'WMS_DB_UNAVAILABLE' });

    // Give node-postgres time to see the closed sockets and emit 'error' on the held clients.
    await new Promise((r) => setTimeout(r, 300));
    await cluster.start();
    release();
    for (const h of held) {
      const how = await h.ended;
      expect(how).not.toBe('committed');
      const m = asDbUnavailable(how);
      expect(isWmsError(m) && m.code, String((how as Error)?.message)).toBe('WMS_DB_UNAVAILABLE');
    }
    expect(uncaught).toEqual([]);

    // The same handle answers again: broken clients were dropped, new ones connect.
    const deadline = Date.now() + 20_000;
    let rows: { a: number }[];
    for (;;) {
      try {
        rows = await handle.query<{ a: number }>('select 1 as a');
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(rows).toEqual([{ a: 1 }]);
    await expect(pingDb(handle)).resolves.toBeUndefined();
  });
}
