// Builds the dashboard (web/src/main.tsx, Preact) with esbuild into dist/web/: one hashed
// script and one hashed stylesheet under assets/, and index.html pointing at them. Browser
// target, minified, no source maps shipped. Run by `npm run build` (and so by `npm ci`).
import { build } from 'esbuild';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const result = await build({
  entryPoints: [join(root, 'web', 'src', 'main.tsx')],
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  tsconfig: join(root, 'web', 'tsconfig.json'),
  minify: true,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
if (!js || !css) throw new Error(`dashboard build: expected one .js and one .css, got ${outputs.join(', ')}`);
const html = (await readFile(join(root, 'web', 'index.html'), 'utf8')).replace('__JS__', js).replace('__CSS__', css);
await writeFile(join(out, 'index.html'), html);
const size = Object.values(result.metafile.outputs).reduce((a, o) => a + o.bytes, 0);
console.error(`dashboard: dist/web/ (${js}, ${css}; ${(size / 1024).toFixed(1)} KiB)`);
