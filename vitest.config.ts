import { defineConfig } from 'vitest/config';

// Seven projects, as in docs/ARCHITECTURE.md: `unit` has no I/O; `db` runs every suite on PGlite and on
// the real PostgreSQL (TEST_DATABASE_URL, default 127.0.0.1:5432); `integration`, `security`, `e2e` and
// `browser` (headless Chromium) start real parts. A suite whose part is missing skips loudly
// on a laptop and fails under CI.
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
      {
        // The attacks of issue 9 (payloads, stolen tokens, site admins, other VOs, bad inputs),
        // each repeated end to end on PGlite and on PostgreSQL and shown refused.
        test: {
          name: 'security',
          include: ['tests/security/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
      {
        // Whole systems with real pilot processes: files run one at a time (each starts
        // pilots on the 2 cores), and a test may wait for agents' ticks.
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // Faults (issue 10): whole systems on a private PostgreSQL cluster the test starts on
        // another port, killed, restarted and starved of disk mid-run; 300 jobs each, so one
        // file at a time.
        test: {
          name: 'faults',
          include: ['tests/faults/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        // The dashboard in real headless Chromium against whole systems: one file at a time.
        test: {
          name: 'browser',
          include: ['tests/browser/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
