/**
 * Issue 10, "No job lost, none run twice": the server is stopped the graceful way (SIGTERM, and
 * the wait for its exit) a third of the way through 300 short jobs and started again on the
 * same data dir and database. Every job must end Done, its payload having run exactly once (the
 * ledger the payloads write says so), and no payload may be left running. The harness is tests/helpers/faults.ts.
 */
import { afterAll, beforeAll, it } from 'vitest';
import { FaultSystem } from '../helpers/faults.js';
import { expectEveryJobDoneOnce } from '../helpers/faults-expect.js';

const JOBS = Number(process.env['FAULTS_JOBS'] ?? 300);
let sys: FaultSystem | null = null;

beforeAll(async () => {
  sys = await FaultSystem.start({
    name: 'graceful_restart',
    slots: 6,
    payloadSeconds: 1,
    log: (l) => console.log(`[graceful-restart] ${l}`),
  });
});
afterAll(async () => {
  await sys?.destroy();
});

it(`graceful stop and restart of the server mid-run: ${JOBS} jobs, each Done exactly once, no payload left`, async () => {
  await expectEveryJobDoneOnce(sys!, 'graceful-restart', JOBS, ['server SIGTERM']);
});
