import { defineConfig } from 'vitest/config';

// Four projects, as in DESIGN.md: `unit` has no I/O; `db` runs every suite on PGlite and on
// the real PostgreSQL (TEST_DATABASE_URL, default 127.0.0.1:5432); `integration` and `e2e`
// start real parts. A suite whose part is missing skips loudly on a laptop and fails under CI.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['tests/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'db',
          include: ['tests/db/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
