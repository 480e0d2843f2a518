/**
 * The physical bound for matching: a bare `FOR UPDATE SKIP LOCKED` claim loop on the same
 * PostgreSQL server, with no HTTP, no fair share, no history. Rows live in their own ordinary
 * (logged) table, so each claim pays the same WAL and commit as a real match, and the run does
 * not disturb the system's jobs.
 */
import pg from 'pg';

export interface BareClaimResult {
  claims: number;
  seconds: number;
  claimsPerSecond: number;
  connections: number;
}

export async function bareClaimLoop(
  dbUrl: string,
  opts: { rows: number; queues: number; claims: number; connections: number },
): Promise<BareClaimResult> {
  const pool = new pg.Pool({ connectionString: dbUrl, max: opts.connections });
  try {
    await pool.query('DROP TABLE IF EXISTS bench_claims');
    await pool.query(`CREATE TABLE bench_claims (id bigserial PRIMARY KEY, tq int NOT NULL, claimed boolean NOT NULL DEFAULT false)`);
    await pool.query('INSERT INTO bench_claims (tq) SELECT g % $1 FROM generate_series(1, $2) g', [opts.queues, opts.rows]);
    await pool.query('CREATE INDEX bench_claims_open ON bench_claims (tq, id) WHERE NOT claimed');
    await pool.query('ANALYZE bench_claims');
    let claimed = 0;
    const claimOne = () =>
      pool.query(
        `UPDATE bench_claims SET claimed = true WHERE id = (
           SELECT id FROM bench_claims WHERE tq = $1 AND NOT claimed ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id`,
        [Math.floor(Math.random() * opts.queues)],
      );
    const start = performance.now();
    await Promise.all(
      Array.from({ length: opts.connections }, async () => {
        while (claimed < opts.claims) {
          const r = await claimOne();
          claimed += r.rowCount ?? 0;
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    await pool.query('DROP TABLE bench_claims');
    return {
      claims: claimed,
      seconds: Math.round(seconds * 1000) / 1000,
      claimsPerSecond: Math.round(claimed / seconds),
      connections: opts.connections,
    };
  } finally {
    await pool.end();
  }
}
