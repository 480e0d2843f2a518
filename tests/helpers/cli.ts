/**
 * The `wms` command in-process, as a user runs it against a server: its exit code, what it
 * printed, and (when it fails) the error lines it would print, through the CLI's own handling.
 */
import type { Io } from '../../cli/command.js';
import { exitCodeOf, formatError } from '../../cli/errors.js';
import { run } from '../../cli/program.js';

export interface WmsRun {
  code: number;
  out: string;
  err: string;
}

export async function runWms(args: string[], o: { url: string; token: string; dir?: string }): Promise<WmsRun> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
    env: { WMS_URL: o.url, WMS_TOKEN: o.token },
    cwd: o.dir ?? '/',
    home: o.dir ?? '/nonexistent',
  };
  try {
    const code = await run(args, io);
    return { code: typeof code === 'number' ? code : -1, out: out.join('\n'), err: err.join('\n') };
  } catch (e) {
    return { code: exitCodeOf(e), out: out.join('\n'), err: formatError(e).join('\n') };
  }
}
