// Bundles the pilot (pilot/main.ts and everything it imports) into one file,
// dist/pilot/pilot.mjs, and the payloads' dirac-jobexec (pilot/dirac-jobexec.ts) into
// dist/pilot/dirac-jobexec.cjs, and packs both reproducibly into dist/pilot/pilot.tar.gz (fixed mtime,
// owner and mode), so that the same sources always give the same SHA-256. Run by `npm run build`.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create } from 'tar';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'pilot');
const FIXED_TIME = new Date('2026-01-01T00:00:00Z');

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(root, 'pilot', 'main.ts')],
  outfile: join(out, 'pilot.mjs'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Some dependencies are CommonJS and call require(): give the ES module one.
  banner: { js: "import { createRequire as __wmsCreateRequire } from 'node:module'; const require = __wmsCreateRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
// The dirac-jobexec stand-in, which the job wrapper copies into every job (pilot/payload-tools.ts):
// CommonJS (.cjs): node runs it as such wherever it is copied, whatever package.json is near.
await build({
  entryPoints: [join(root, 'pilot', 'dirac-jobexec.ts')],
  outfile: join(out, 'dirac-jobexec.cjs'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  legalComments: 'none',
  logLevel: 'warning',
});
const files = ['pilot.mjs', 'dirac-jobexec.cjs'];
for (const f of files) await utimes(join(out, f), FIXED_TIME, FIXED_TIME);
const tarball = join(out, 'pilot.tar.gz');
await create({ gzip: { level: 9 }, file: tarball, cwd: out, portable: true, mtime: FIXED_TIME, noMtime: false }, files);
const sha = createHash('sha256')
  .update(await readFile(tarball))
  .digest('hex');
await writeFile(join(out, 'pilot.tar.gz.sha256'), `${sha}  pilot.tar.gz\n`);
console.error(`pilot bundle: dist/pilot/pilot.tar.gz ${sha.slice(0, 16)}…`);
