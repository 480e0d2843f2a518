/**
 * Programs every payload finds on its PATH, shipped in the pilot bundle next to `pilot.mjs`:
 * today `dirac-jobexec` (dirac-jobexec.ts), which DIRAC's job API names as the Executable of
 * every job it writes.
 *
 * Each job gets its own copy in `<job dir>/.wms-bin/`, appended to the payload's PATH: the job
 * dir is the one place every isolation mode lets the payload see and read (bubblewrap binds it,
 * a separate payload user owns it once the sandbox is prepared), and the copy is the payload's
 * own, run as the payload, so changing it changes nothing but that job. Anything the input
 * sandbox put at `.wms-bin` is removed first, never followed. The launcher runs the program with
 * the pilot's node when the payload can execute it, else with `node` on its PATH.
 *
 * Running from the sources (tests), there is no bundle next to this file: nothing is installed.
 */
import { copyFile, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory, in the job dir, holding the payload's tools. */
export const PAYLOAD_TOOLS_DIR = '.wms-bin';
/** The bundled stand-in, next to pilot.mjs. */
export const DIRAC_JOBEXEC_BUNDLE = 'dirac-jobexec.cjs';

/** Where the bundle's files are: the directory of the running pilot.mjs. */
export function bundleDir(): string {
  return dirname(fileURLToPath(import.meta.url));
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Installs the tools into `jobDir` (before the sandbox is prepared: it then belongs to the
 * payload like the rest of the job dir). Answers the directory to append to the payload's PATH,
 * or null when the bundle has no tools (running from the sources).
 */
export async function installPayloadTools(jobDir: string, from = bundleDir(), node = process.execPath): Promise<string | null> {
  const program = join(from, DIRAC_JOBEXEC_BUNDLE);
  if (!(await stat(program).catch(() => null))?.isFile()) return null;
  const bin = join(jobDir, PAYLOAD_TOOLS_DIR);
  await rm(bin, { recursive: true, force: true }); // a link or a directory of the input sandbox: gone, not followed
  await mkdir(bin, { mode: 0o755 });
  const target = join(bin, DIRAC_JOBEXEC_BUNDLE);
  await copyFile(program, target);
  const launcher = [
    '#!/bin/sh',
    "# pilot-wms: DIRAC's dirac-jobexec stand-in (runs the Script steps of a job's workflow XML)",
    `node=${shellQuote(node)}`,
    '[ -x "$node" ] || node=$(command -v node || command -v nodejs) || {',
    '  echo "dirac-jobexec: node is not found on the PATH ($PATH)" >&2',
    '  exit 127',
    '}',
    `exec "$node" ${shellQuote(target)} "$@"`,
    '',
  ].join('\n');
  await writeFile(join(bin, 'dirac-jobexec'), launcher, { mode: 0o755, flag: 'wx' });
  return bin;
}
