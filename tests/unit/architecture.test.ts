/**
 * Enforces the import table of DESIGN.md: each folder may import only the folders (and, for
 * core/ and pilot/, the packages) its row allows. Reads import specifiers as text.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, resolve, dirname, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

type Folder = 'core' | 'db' | 'services' | 'agents' | 'pilot' | 'cli';

/** Project folders each folder may import (itself always allowed). */
const ALLOWED_FOLDERS: Record<Folder, Folder[]> = {
  core: [],
  db: ['core'],
  services: ['core', 'db'],
  agents: ['core', 'db'],
  pilot: ['core'],
  cli: ['core', 'db', 'services'],
};

/** Packages a folder may import; undefined means any installed package. */
const ALLOWED_PACKAGES: Partial<Record<Folder, (pkg: string) => boolean>> = {
  core: (p) => p === 'typebox' || p === '@sinclair/typebox',
  // The pilot speaks HTTP only: no database drivers, no server framework.
  pilot: (p) => !/^(pg|@electric-sql\/pglite|drizzle-orm|fastify|@fastify\/.*)$/.test(p),
};

/** cli/ may reach db/ and services/ only from these files (server start, admin bootstrap). */
const CLI_SERVER_FILES = /^cli\/(server|bootstrap|commands\/server|commands\/token)[^/]*\.ts$/;

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
    else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const IMPORT_RE =
  /(?:^|\n)\s*(?:import|export)\s(?:[^'"]*?\sfrom\s)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

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

function violations(folder: Folder): string[] {
  const found: string[] = [];
  for (const file of sourceFiles(join(root, folder))) {
    const rel = relative(root, file).split(sep).join('/');
    for (const spec of importsOf(file)) {
      if (isBuiltin(spec)) continue;
      if (spec.startsWith('.')) {
        const target = relative(root, resolve(dirname(file), spec)).split(sep).join('/');
        const targetFolder = target.split('/')[0] as Folder;
        if (targetFolder === folder) continue;
        const allowed = ALLOWED_FOLDERS[folder].includes(targetFolder);
        const cliException =
          folder === 'cli' && (targetFolder === 'db' || targetFolder === 'services')
            ? CLI_SERVER_FILES.test(rel)
            : true;
        if (!allowed || !cliException) found.push(`${rel} imports ${spec} (${targetFolder}/)`);
      } else {
        const rule = ALLOWED_PACKAGES[folder];
        if (rule && !rule(packageName(spec))) found.push(`${rel} imports package ${spec}`);
      }
    }
  }
  return found;
}

describe('architecture: the import table of DESIGN.md', () => {
  for (const folder of Object.keys(ALLOWED_FOLDERS) as Folder[]) {
    it(`${folder}/ imports only what its row allows`, () => {
      expect(violations(folder)).toEqual([]);
    });
  }

  it('finds a violation when there is one (the checker itself works)', () => {
    expect(importsOf(join(root, 'tests/unit/architecture.test.ts'))).toContain('vitest');
    const spec = "import { x } from '../db/index.js';\nexport * from './y.js';\nawait import('pg');";
    expect([...spec.matchAll(IMPORT_RE)].map((m) => m[1] ?? m[2])).toEqual([
      '../db/index.js',
      './y.js',
      'pg',
    ]);
  });
});
