/**
 * The one error a pilot command throws when the worker node is unfit to run jobs (too little
 * disk, a clock too far off, a benchmark that cannot run, a refused registration).
 *
 * `reason` is a single line written for a site admin; the pilot sends it as the pilot's failure
 * reason (`POST /api/pilots/self/status`), so it names what was found and what was needed, e.g.
 * `disk: 812 MB free in /tmp/x (ext4), need 2560 MB`. No stack traces: `main()` prints the
 * reason and exits with `exitCode`.
 *
 * Exit codes, one per command so that a batch system's accounting alone tells which step
 * refused the node (also listed in pilot/README.md for site admins):
 *
 * | code | command | typical reason |
 * | --- | --- | --- |
 * | 20 | check-environment | not enough free disk in the work dir, or it cannot be read |
 * | 21 | clock-skew | the node's clock is too far from the server's, or the server time cannot be read |
 * | 22 | db12 | the CPU benchmark could not run or measured no CPU time |
 * | 23 | register | the services refused or never answered the registration |
 * | 24 | job-agent | the job loop stopped on an error it cannot recover from |
 */
import type { PilotCommandName } from '../../core/pilot-protocol.js';

/** The process exit code of a pilot that a command refused (see the table above). */
export const PILOT_COMMAND_EXIT_CODES: Readonly<Record<PilotCommandName, number>> = Object.freeze({
  'check-environment': 20,
  'clock-skew': 21,
  db12: 22,
  register: 23,
  'job-agent': 24,
});

/** A command found the node unfit; `reason` is what the server records on the pilot. */
export class PilotCommandError extends Error {
  /** Stable code to match on instead of `instanceof` (bundles may hold two copies of a class). */
  readonly code = 'WMS_PILOT_COMMAND';

  constructor(
    readonly command: string,
    readonly reason: string,
    readonly exitCode: number,
  ) {
    super(`${command}: ${reason}`);
    this.name = 'PilotCommandError';
  }
}

/** True for a PilotCommandError, also one thrown by another copy of this module. */
export function isPilotCommandError(e: unknown): e is PilotCommandError {
  return e instanceof Error && (e as { code?: unknown }).code === 'WMS_PILOT_COMMAND';
}
