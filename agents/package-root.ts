/**
 * Where the pilot-wms package lives on disk, for the files that ship beside the code (the
 * pilot wrapper template, the built pilot bundle). Works from the sources (tsx, vitest) and
 * from `dist/`, and when the package is installed under `node_modules/`.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'pilot-wms';

let cached: string | undefined;

/**
 * The directory whose `package.json` is named "pilot-wms", found by walking up from this
 * module. Cached after the first call; throws when no such directory is above this file.
 */
export function packageRoot(): string {
  if (cached !== undefined) return cached;
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ;) {
    if (packageNameAt(dir) === PACKAGE_NAME) {
      cached = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json named "${PACKAGE_NAME}" in ${start} or above`);
    dir = parent;
  }
}

/** The `name` of `dir/package.json`, or undefined when there is none or it cannot be read. */
function packageNameAt(dir: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'name' in parsed && typeof parsed.name === 'string') return parsed.name;
  } catch {
    // missing or unreadable: keep walking up
  }
  return undefined;
}
