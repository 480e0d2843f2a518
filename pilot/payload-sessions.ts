/**
 * The registry of running payload sessions: `<work dir>/payload-sessions`, one session id per
 * line. The job wrapper starts each payload in a session of its own (its pid is the session's
 * and the process group's id), adds that id here once the payload runs and removes it once the
 * payload's whole tree is gone. The pilot's bash wrapper (wrapper.sh) reads the file after the
 * pilot's node process ended for whatever reason (a crash, the OOM killer, a SIGKILL of node
 * alone) and kills each group left (`kill -KILL -- -SID`) before it removes the work dir: a
 * payload's descendants never outlive their pilot. The local CE does the same for a pilot whose
 * wrapper it had to SIGKILL.
 *
 * Writes are synchronous (a few bytes; one pilot process writes the file, so an append or a
 * rewrite is never interleaved with another).
 */
import { appendFileSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The registry's file name in the pilot's work dir (wrapper.sh reads the same name). */
export const PAYLOAD_SESSIONS_FILE = 'payload-sessions';

/** Records that the payload session `sid` runs. Best effort: a failure is returned, never thrown. */
export function registerPayloadSession(workDir: string, sid: number): Error | null {
  try {
    appendFileSync(join(workDir, PAYLOAD_SESSIONS_FILE), `${sid}\n`, { mode: 0o600 });
    return null;
  } catch (e) {
    return e as Error;
  }
}

/** Forgets the payload session `sid` (its tree is gone); the file goes with the last one. Best effort. */
export function unregisterPayloadSession(workDir: string, sid: number): void {
  const file = join(workDir, PAYLOAD_SESSIONS_FILE);
  try {
    const left = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '' && l !== String(sid));
    if (left.length === 0) unlinkSync(file);
    else writeFileSync(file, left.map((l) => `${l}\n`).join(''), { mode: 0o600 });
  } catch {
    // no registry: nothing to forget
  }
}
