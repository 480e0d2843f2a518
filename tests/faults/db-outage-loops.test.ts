/**
 * Background loops through a PostgreSQL outage on a private cluster (never the shared server):
 * the agent runner and the token revocation poll keep running while the database is stopped,
 * say the outage once when it starts and once when it ends (not once per tick or poll), and
 * work again by themselves once it is back.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resolveServiceConfig } from '../../core/config.js';
import { DbOutageLog, openDb, type DbHandle } from '../../db/index.js';
import { AgentRunner } from '../../agents/runner.js';
import { TokenSigner } from '../../services/token-signer.js';
import { PgCluster, pgClusterProblem } from '../helpers/pg-cluster.js';
import { captureLogger } from '../helpers/logs.js';

const problem = pgClusterProblem();
if (problem && process.env['CI']) throw new Error(`fault tests need a private PostgreSQL cluster: ${problem}`);
if (problem) console.warn(`SKIPPED db-outage-loops: ${problem}`);

let cluster: PgCluster;
let handle: DbHandle;

beforeAll(async () => {
  if (problem) return;
  cluster = await PgCluster.create();
  handle = await openDb(await cluster.createDatabase('outage_loops'), { poolSize: 4 });
});

afterAll(async () => {
  await handle?.close().catch(() => undefined);
  await cluster?.destroy();
});

async function until(what: string, probe: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it.skipIf(problem !== null)('agent ticks and the revocation poll ride out an outage, logging it once each way', async () => {
  const runnerLog: string[] = [];
  const { logger: runnerLogger } = captureLogger({ onRecord: (r) => runnerLog.push(r.msg) });
  let ticks = 0;
  const runner = new AgentRunner({
    db: handle,
    config: resolveServiceConfig({ flags: { dataDir: '/nonexistent' } }),
    holder: 'outage-test',
    logger: runnerLogger,
    agents: [
      {
        name: 'probe',
        schedule: '* * * * * *',
        async tick(ctx) {
          await ctx.db.query('select 1');
          ticks++;
          return 'ok';
        },
      },
    ],
  });
  const signer = await TokenSigner.open(handle, { issuer: 'outage-test' });
  const pollLog: string[] = [];
  let polls = 0;
  let pollErrors = 0;
  const outage = new DbOutageLog('token revocations', { warn: (m) => pollLog.push(m), info: (m) => pollLog.push(m) });
  signer.startPolling(
    0.1,
    (e) => {
      pollErrors++;
      if (!outage.failed(e)) pollLog.push(`other: ${String(e)}`);
    },
    () => {
      polls++;
      outage.ok();
    },
  );
  runner.start();
  try {
    await until('a tick and a poll on a healthy database', () => ticks >= 1 && polls >= 2);

    await cluster.stop('immediate');
    const errorsAtStop = pollErrors;
    // Several seconds down: several agent schedules fire and tens of polls fail.
    await new Promise((r) => setTimeout(r, 3500));
    expect(pollErrors - errorsAtStop).toBeGreaterThan(10);
    const ticksWhileDown = ticks;
    expect(runnerLog.filter((l) => l.includes('database unavailable, retrying'))).toHaveLength(1);
    expect(pollLog).toEqual([expect.stringMatching(/^token revocations: database unavailable, retrying \(/)]);
    expect(runner.state).toBe('running');

    await cluster.start();
    await until('ticks and polls again', () => ticks > ticksWhileDown && polls > 0 && !outage.down);
    await until('the runner to say the database is back', () =>
      runnerLog.some((l) => /agents: database available again after \d+ s/.test(l)),
    );
    // Once each way, for the whole outage.
    expect(runnerLog.filter((l) => l.includes('database unavailable'))).toHaveLength(1);
    expect(runnerLog.filter((l) => l.includes('available again'))).toHaveLength(1);
    expect(pollLog).toHaveLength(2);
    expect(pollLog[1]).toMatch(/^token revocations: database available again after \d+ s$/);
    // No tick failed for the outage in a way that was logged per tick.
    expect(runnerLog.filter((l) => l.includes('lease not taken'))).toEqual([]);
  } finally {
    signer.close();
    await runner.stop();
  }
});
