#!/usr/bin/env node
/**
 * `wms`: the pilot-wms command line. The only code that exits the process or installs signal
 * handlers. Exit codes: 0 success, 1 failure (the server refused, a job action failed, a file
 * is missing), 2 usage error. Errors print one line `wms: <message>` (plus the located
 * problems of a JDL), never a stack trace (set WMS_DEBUG=1 to see one).
 */
import { homedir } from 'node:os';
import type { Io, LongRunning } from './command.js';
import { exitCodeOf, formatError } from './errors.js';
import { run } from './program.js';

async function main(): Promise<void> {
  const io: Io = {
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    env: process.env,
    cwd: process.cwd(),
    home: homedir(),
  };
  let result: number | LongRunning;
  try {
    result = await run(process.argv.slice(2), io);
  } catch (e) {
    for (const line of formatError(e)) io.err(line);
    if (process.env['WMS_DEBUG']) console.error(e);
    process.exitCode = exitCodeOf(e);
    return;
  }
  if (typeof result === 'number') {
    process.exitCode = result;
    return;
  }
  // A long-running command: the first signal drains; the second forces (a command with a
  // `force` step, the server, hurries: it stops its pilots now); the next one exits at once.
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      if (signals === 2 && result.force) {
        io.err(`wms: ${signal} again, stopping now (send it again to exit at once)`);
        result.force();
        return;
      }
      io.err(`wms: ${signal} again, exiting now`);
      process.exit(1);
    }
    const message = result.stopMessage === undefined ? 'draining (send it again to force)' : result.stopMessage;
    if (message !== null) io.err(`wms: ${signal} received, ${message}`);
    result
      .drain()
      .then(() => process.exit(0))
      .catch((e: unknown) => {
        for (const line of formatError(e)) io.err(line);
        process.exit(1);
      });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.exitCode = await result.done;
}

void main();
