/**
 * Enforces the import table of docs/ARCHITECTURE.md: each folder may import only the folders (and, for
 * core/, api/, io/, pilot/ and web/, the packages) its row allows. Reads import specifiers as text.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, resolve, dirname, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

type Folder = 'core' | 'api' | 'io' | 'db' | 'services' | 'agents' | 'pilot' | 'cli' | 'web';

/** Project folders each folder may import (itself always allowed). */
const ALLOWED_FOLDERS: Record<Folder, Folder[]> = {
  core: [],
  // The API contract (request and response shapes): pure, browser-safe, read by the services,
  // the CLI, the dashboard and the pilot.
  api: ['core'],
  // Node I/O shared by cli/, pilot/ and services/ (tar unpacking): core/, built-ins, packages.
  io: ['core'],
  db: ['core'],
  services: ['core', 'api', 'io', 'db'],
  agents: ['core', 'db'],
  pilot: ['core', 'api', 'io'],
  // `wms server start` composes the whole system: services, agents and the local site.
  cli: ['core', 'api', 'io', 'db', 'services', 'agents'],
  // The dashboard runs in the browser: pure types and validation of core/ (the JDL parser shows
  // parse errors at their line before sending), nothing that does I/O.
  web: ['core', 'api'],
};

/** Packages the pilot may not import: database drivers and the server framework. */
const PILOT_FORBIDDEN = /^(pg|@electric-sql\/pglite|drizzle-orm|fastify|@fastify\/.*)$/;

/** Packages a folder may import; undefined means any installed package. */
const ALLOWED_PACKAGES: Partial<Record<Folder, (pkg: string) => boolean>> = {
  core: (p) => p === 'typebox' || p === '@sinclair/typebox',
  api: (p) => p === 'typebox',
  // The pilot speaks HTTP only: no database drivers, no server framework.
  pilot: (p) => !PILOT_FORBIDDEN.test(p),
  // The pilot bundles what it imports from io/: the same packages are out.
  io: (p) => !PILOT_FORBIDDEN.test(p),
  web: (p) => p === 'preact',
};

/** Folders whose code runs in a browser: no node built-ins, there or in the core/ files they reach. */
const BROWSER_FOLDERS: ReadonlySet<Folder> = new Set(['api', 'web']);

/** cli/ may reach db/, services/ and agents/ only from these files (server start, admin bootstrap). */
const CLI_SERVER_FILES = /^cli\/(server|bootstrap|commands\/server|commands\/token)[^/]*\.ts$/;

/**
 * The logic layer (`services/logic/`) knows nothing of HTTP: no server framework and no route
 * plugin; the plugins call it, never the other way round.
 */
const LOGIC_FILES = /^services\/logic\//;
const HTTP_PACKAGES = /^(fastify|@fastify\/.*)$/;

function sourceFiles(dir: string): string[] {
  let out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const path = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(path).isDirectory()) out = out.concat(sourceFiles(path));
    else if (/\.(ts|tsx|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s(?:[^'"]*?\sfrom\s)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) specs.push((m[1] ?? m[2]) as string);
  return specs;
}

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

const builtins = new Set(builtinModules);
const isBuiltin = (spec: string) => spec.startsWith('node:') || builtins.has(packageName(spec));

/** The file a relative specifier names (`./x.js` may be `./x.ts` or `./x.tsx`). */
function sourceOf(file: string, spec: string): string {
  const target = resolve(dirname(file), spec);
  for (const candidate of [target, target.replace(/\.js$/, '.ts'), target.replace(/\.js$/, '.tsx')]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // try the next
    }
  }
  return target;
}

/** Node built-ins imported by `file` or by any project file it reaches through relative imports. */
function builtinsReachedFrom(file: string, seen = new Set<string>()): string[] {
  if (seen.has(file)) return [];
  seen.add(file);
  const found: string[] = [];
  for (const spec of importsOf(file)) {
    if (isBuiltin(spec)) found.push(`${relative(root, file).split(sep).join('/')} imports ${spec}`);
    else if (spec.startsWith('.')) found.push(...builtinsReachedFrom(sourceOf(file, spec), seen));
  }
  return found;
}

/**
 * What breaks the rules among `specs`, the import specifiers of the file `rel` (its path from the
 * repository root) of `folder`. Pure: the rules themselves, tested below on made-up imports.
 */
function importViolations(folder: Folder, rel: string, specs: readonly string[]): string[] {
  const found: string[] = [];
  for (const spec of specs) {
    if (isBuiltin(spec)) {
      if (BROWSER_FOLDERS.has(folder)) found.push(`${rel} imports ${spec} (a node built-in, in code that runs in a browser)`);
      continue;
    }
    if (spec.startsWith('.')) {
      const target = relative(root, resolve(root, dirname(rel), spec))
        .split(sep)
        .join('/');
      const targetFolder = target.split('/')[0] as Folder;
      if (LOGIC_FILES.test(rel) && target.startsWith('services/plugins/'))
        found.push(`${rel} imports ${spec} (a route plugin, from the logic layer)`);
      if (targetFolder === folder) continue;
      const allowed = ALLOWED_FOLDERS[folder].includes(targetFolder);
      const cliException =
        folder === 'cli' && (targetFolder === 'db' || targetFolder === 'services' || targetFolder === 'agents')
          ? CLI_SERVER_FILES.test(rel)
          : true;
      if (!allowed || !cliException) found.push(`${rel} imports ${spec} (${targetFolder}/)`);
    } else {
      const rule = ALLOWED_PACKAGES[folder];
      if (rule && !rule(packageName(spec))) found.push(`${rel} imports package ${spec}`);
      if (LOGIC_FILES.test(rel) && HTTP_PACKAGES.test(packageName(spec)))
        found.push(`${rel} imports package ${spec} (HTTP, in the logic layer)`);
    }
  }
  return found;
}

function violations(folder: Folder): string[] {
  const found: string[] = [];
  for (const file of sourceFiles(join(root, folder))) {
    const rel = relative(root, file).split(sep).join('/');
    const specs = importsOf(file);
    found.push(...importViolations(folder, rel, specs));
    if (!BROWSER_FOLDERS.has(folder)) continue;
    // Built-ins reached through the project files it imports (core/ may use them).
    for (const spec of specs.filter((s) => s.startsWith('.'))) {
      found.push(...builtinsReachedFrom(sourceOf(file, spec)).map((v) => `${v} (reached from ${rel}, which runs in a browser)`));
    }
  }
  return found;
}

describe('architecture: the import table of docs/ARCHITECTURE.md', () => {
  for (const folder of Object.keys(ALLOWED_FOLDERS) as Folder[]) {
    it(`${folder}/ imports only what its row allows`, () => {
      expect(violations(folder)).toEqual([]);
    });
  }

  it('finds a violation when there is one (the checker itself works)', () => {
    expect(importsOf(join(root, 'tests/unit/architecture.test.ts'))).toContain('vitest');
    const spec = "import { x } from '../db/index.js';\nexport * from './y.js';\nawait import('pg');";
    expect([...spec.matchAll(IMPORT_RE)].map((m) => m[1] ?? m[2])).toEqual(['../db/index.js', './y.js', 'pg']);
  });

  it('refuses what a row does not allow (made-up imports)', () => {
    const specs = ['../core/errors.js', 'typebox', './jobs.js', '../db/index.js', 'fastify', 'node:fs', '../services/context.js'];
    expect(importViolations('api', 'api/x.ts', specs)).toEqual([
      'api/x.ts imports ../db/index.js (db/)',
      'api/x.ts imports package fastify',
      'api/x.ts imports node:fs (a node built-in, in code that runs in a browser)',
      'api/x.ts imports ../services/context.js (services/)',
    ]);
    for (const folder of ['services', 'cli'] as const) expect(importViolations(folder, `${folder}/x.ts`, ['../api/index.js'])).toEqual([]);
    expect(importViolations('web', 'web/src/x.ts', ['../../api/index.js', 'preact'])).toEqual([]);
    expect(importViolations('agents', 'agents/x.ts', ['../api/index.js'])).toEqual(['agents/x.ts imports ../api/index.js (api/)']);
    expect(importViolations('pilot', 'pilot/x.ts', ['node:fs'])).toEqual([]);
    expect(
      importViolations('services', 'services/logic/x.ts', ['../plugins/auth.js', 'fastify', '@fastify/websocket', '../context.js', 'pino']),
    ).toEqual([
      'services/logic/x.ts imports ../plugins/auth.js (a route plugin, from the logic layer)',
      'services/logic/x.ts imports package fastify (HTTP, in the logic layer)',
      'services/logic/x.ts imports package @fastify/websocket (HTTP, in the logic layer)',
    ]);
    expect(importViolations('services', 'services/plugins/x.ts', ['../logic/jobs.js', 'fastify'])).toEqual([]);
  });
});
