#!/usr/bin/env node
// Writes README.md's configuration table, generated from the config schema
// (core/config-schema.ts, rendered by configTableMarkdown in core/config-docs.ts), between the
// markers <!-- config-table:start --> and <!-- config-table:end -->.
//   node scripts/config-table.mjs           rewrite README.md
//   node scripts/config-table.mjs --check   exit 1 when README.md is not up to date
// tests/unit/config-table.test.ts runs the same check.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { configTableMarkdown, withConfigTable } = await tsImport('../core/config-docs.ts', import.meta.url);

const readmePath = join(root, 'README.md');
const readme = readFileSync(readmePath, 'utf8');
const updated = withConfigTable(readme, configTableMarkdown());
if (process.argv.includes('--check')) {
  if (updated !== readme) {
    console.error('README.md: the configuration table differs from the schema; run `node scripts/config-table.mjs`');
    process.exit(1);
  }
} else if (updated !== readme) {
  writeFileSync(readmePath, updated);
  console.log('README.md: configuration table written');
} else {
  console.log('README.md: configuration table already up to date');
}
