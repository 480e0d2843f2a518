/**
 * The pilot bundle: `npm run build` writes `dist/pilot/pilot.tar.gz` (`pilot.mjs` and the
 * `dirac-jobexec.cjs` stand-in, built with esbuild, packed reproducibly). The services serve it
 * to wrappers; the site director embeds its SHA-256 in every wrapper, so a worker node runs
 * exactly these bytes.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PilotBundle } from './context.js';

export const PILOT_BUNDLE_FILE = 'pilot.tar.gz';

/** Reads the bundle from `dir`; null when it is not there (the pilot was not built). */
export async function loadPilotBundle(dir: string): Promise<PilotBundle | null> {
  try {
    const bytes = await readFile(join(dir, PILOT_BUNDLE_FILE));
    return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}
