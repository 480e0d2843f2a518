/**
 * The pilot's entry point (bundled to `pilot.mjs`; the wrapper runs `node pilot.mjs`).
 * Exit codes: 0 done; 1 unexpected error; 2 started without the wrapper's environment;
 * 3 cannot read its settings; 20-24 a command refused the node (pilot/commands/command-error.ts).
 */
import { runPilot } from './pilot.js';

runPilot(process.env).then(
  (r) => {
    process.exitCode = r.exitCode;
  },
  (e: unknown) => {
    process.stderr.write(`pilot: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
