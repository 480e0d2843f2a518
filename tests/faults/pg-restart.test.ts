/**
 * Issue 10, "No job lost, none run twice": the private PostgreSQL cluster under the server is
 * restarted three times while 300 short jobs run (`pg_ctl restart -m fast` at a fifth and at two
 * fifths of the jobs final, `-m immediate` at three fifths), the server staying up. Every job must
 * end Done, its payload having run exactly once (the ledger the payloads write says so), and no
 * payload may be left running. The harness is tests/helpers/faults.ts.
 */
import { afterAll, beforeAll, it } from 'vitest';
import { FaultSystem } from '../helpers/faults.js';
import { expectEveryJobDoneOnce } from '../helpers/faults-expect.js';

const JOBS = Number(process.env['FAULTS_JOBS'] ?? 300);
let sys: FaultSystem | null = null;

beforeAll(async () => {
  sys = await FaultSystem.start({ name: 'pg_restart', slots: 6, payloadSeconds: 1, log: (l) => console.log(`[pg-restart] ${l}`) });
});
afterAll(async () => {
  await sys?.destroy();
});

it(`PostgreSQL restarted -m fast twice and -m immediate once mid-run: ${JOBS} jobs, each Done exactly once, no payload left`, async () => {
  await expectEveryJobDoneOnce(sys!, 'pg-restart', JOBS, [
    'postgres restart -m fast',
    'postgres restart -m fast',
    'postgres restart -m immediate',
  ]);
});
