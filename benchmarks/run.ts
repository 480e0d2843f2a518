/**
 * Benchmark runner: `npm run bench -- <scenario> [--size smoke|full] [--db URL]`.
 * Each scenario prints progress on stderr and, as its last line on stdout, one JSON object with
 * `scenario`, `headline: { name, value, unit }` and its other figures.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_BENCH_URL } from './lib/database.js';

export type Size = 'smoke' | 'full';
export interface BenchOptions {
  size: Size;
  baseDbUrl: string;
}
export interface BenchResult {
  scenario: string;
  headline: { name: string; value: number; unit: string };
  [figure: string]: unknown;
}

const SCENARIOS: Record<string, () => Promise<{ run(o: BenchOptions): Promise<BenchResult> }>> = {
  submit: () => import('./submit.js'),
  match: () => import('./match.js'),
  'match-scale': () => import('./match-scale.js'),
  e2e: () => import('./e2e.js'),
  latency: () => import('./latency.js'),
  'pilot-start': () => import('./pilot-start.js'),
  director: () => import('./director.js'),
  db12: () => import('./db12.js'),
  'jobs-list': () => import('./jobs-list.js'),
  faults: () => import('./faults.js'),
  grid: () => import('./grid.js'),
};

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { size: { type: 'string', default: 'smoke' }, db: { type: 'string' }, help: { type: 'boolean' } },
  });
  const name = positionals[0];
  if (values.help || !name || !(name in SCENARIOS)) {
    console.error(
      `usage: npm run bench -- <${Object.keys(SCENARIOS).join('|')}> [--size smoke|full] [--db postgres://...]\n` +
        `  --db  a PostgreSQL server; each run creates its own database there (default ${DEFAULT_BENCH_URL})`,
    );
    process.exitCode = 2;
    return;
  }
  if (values.size !== 'smoke' && values.size !== 'full') {
    console.error(`bench: --size must be smoke or full, not ${values.size}`);
    process.exitCode = 2;
    return;
  }
  const scenario = await SCENARIOS[name]!();
  const result = await scenario.run({ size: values.size, baseDbUrl: values.db ?? DEFAULT_BENCH_URL });
  console.log(JSON.stringify(result));
}

main().catch((e: unknown) => {
  console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
