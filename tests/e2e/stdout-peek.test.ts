/**
 * Issue 13, "a finished job's stdout peek misses the last lines": the peek of a job (its
 * `StandardOutput` parameter, the last lines of its stdout) came only with the watchdog's
 * heartbeats, so what a payload wrote after the last one was never seen. Here the heartbeats are
 * a minute apart and the payload prints its lines and ends at once, before any heartbeat: the
 * peek of the finished job must still end with its last line, through the final reports.
 */
import { tmpdir } from 'node:os';
import { expect, it } from 'vitest';
import { PEEK_LINES } from '../../pilot/watchdog.js';
import { describeSystem, fastConfig } from '../helpers/system.js';

const LINES = 25;
const fast = fastConfig(tmpdir(), null);

describeSystem(
  'stdout peek of a finished job',
  (sys) => {
    it('a payload that ends between heartbeats: the peek ends with its last line', async () => {
      const [id] = await sys.submit(`[ JobName = "peek"; Executable = "/usr/bin/seq"; Arguments = "1 ${LINES}"; CPUTime = 600; ]`);
      await sys.waitForStatus(id!, ['Done'], 90_000);
      const beats = (await sys.api('GET', `/api/jobs/${id}/heartbeats`)).heartbeats as unknown[];
      expect(beats).toEqual([]); // no heartbeat brought any of it
      const { parameters } = await sys.api('GET', `/api/jobs/${id}/parameters`, undefined, await sys.token());
      const peek = String(parameters.StandardOutput ?? '').split('\n');
      expect(peek.at(-1)).toBe(String(LINES));
      const first = LINES - PEEK_LINES + 1;
      expect(peek).toEqual(Array.from({ length: PEEK_LINES }, (_, i) => String(first + i)));
    });
  },
  { config: { pilot: { ...fast.pilot, heartbeatSeconds: 60 } } },
);
