/**
 * Sandboxes: tar.gz archives named by their SHA-256 (the bytes live on disk, see
 * services/sandbox-store.ts), and which job uses which, as input or output.
 */
import { eq, sql } from 'drizzle-orm';
import { dbOf, type DbOrHandle } from '../open-db.js';
import { sandboxes } from '../schema/index.js';
import { insertJobSandboxes } from './submit.js';

export type SandboxRow = typeof sandboxes.$inferSelect;

/** Records an uploaded archive; recording the same one again only refreshes its access time. */
export async function recordSandbox(
  db: DbOrHandle,
  s: { sha256: string; size: number; owner: string; ownerGroup: string; vo: string },
): Promise<void> {
  await dbOf(db)
    .insert(sandboxes)
    .values({ sha256: s.sha256, size: s.size, owner: s.owner, ownerGroup: s.ownerGroup, vo: s.vo })
    .onConflictDoUpdate({ target: sandboxes.sha256, set: { lastAccessAt: sql`now()` } });
}

export async function getSandbox(db: DbOrHandle, sha256: string): Promise<SandboxRow | null> {
  const [row] = await dbOf(db).select().from(sandboxes).where(eq(sandboxes.sha256, sha256));
  return row ?? null;
}

/** Links a job to sandboxes (recorded before). Idempotent. */
export async function assignSandboxes(
  db: DbOrHandle,
  jobId: number,
  kind: 'Input' | 'Output',
  sha256s: readonly string[],
): Promise<void> {
  const unique = [...new Set(sha256s)];
  await insertJobSandboxes(db, unique.map(() => jobId), unique, kind);
}
