/**
 * Revoked tokens (`revoked_tokens`). A row revokes one token (`jti`), or every token of one
 * subject (`vo`, `subject`; `vo` null: that subject in any VO, used for `pilot:<id>`) issued at
 * or before `revoked_at`. Every service replica keeps the rows in memory and reads new ones by
 * id every few seconds (services/token-signer.ts); a row is useless after `expires_at`, when every
 * token it could name has expired, and is deleted then.
 *
 * Ids come from a sequence, and two inserts may commit out of id order: `revocationsAfter`
 * re-reads a margin of ids below the last one seen, so a row committed late is still found.
 */
import type { DbOrHandle } from '../open-db.js';
import { rows } from './raw.js';

export interface RevocationRow {
  id: number;
  jti: string | null;
  vo: string | null;
  subject: string | null;
  revokedAt: Date;
  expiresAt: Date;
  reason: string;
  revokedBy: string;
}

export interface NewRevocation {
  /** One token; or, without it, the subject's tokens. */
  jti?: string | null;
  vo?: string | null;
  subject?: string | null;
  revokedAt: Date;
  expiresAt: Date;
  reason?: string;
  revokedBy?: string;
}

/** The columns of a `RevocationRow`, each named as its field (for `select` and `returning`). */
const COLUMNS = 'id, jti, vo, subject, revoked_at as "revokedAt", expires_at as "expiresAt", reason, revoked_by as "revokedBy"';

/**
 * Records a revocation and answers its row. Revoking a token already revoked answers the
 * existing row (the jti is unique).
 */
export async function insertRevocation(db: DbOrHandle, r: NewRevocation): Promise<RevocationRow> {
  const params = [
    r.jti ?? null,
    r.vo ?? null,
    r.subject ?? null,
    r.revokedAt.toISOString(),
    r.expiresAt.toISOString(),
    r.reason ?? '',
    r.revokedBy ?? '',
  ];
  const inserted = await rows<RevocationRow>(
    db,
    `insert into revoked_tokens (jti, vo, subject, revoked_at, expires_at, reason, revoked_by)
     values ($1::text, $2::text, $3::text, $4::timestamptz, $5::timestamptz, $6::text, $7::text)
     on conflict (jti) do nothing
     returning ${COLUMNS}`,
    params,
  );
  if (inserted[0]) return inserted[0];
  const existing = await rows<RevocationRow>(db, `select ${COLUMNS} from revoked_tokens where jti = $1::text`, [r.jti ?? null]);
  return existing[0]!;
}

/** How many ids below the last one seen are read again (rows that committed out of order). */
export const REVOCATION_ID_MARGIN = 64;

/**
 * Rows with an id above `afterId - REVOCATION_ID_MARGIN` not yet expired at `now`, by id (the
 * poll of every replica: the caller skips the ids it already holds). `afterId` 0 reads them all.
 */
export async function revocationsAfter(db: DbOrHandle, afterId: number, now: Date): Promise<RevocationRow[]> {
  return rows<RevocationRow>(
    db,
    `select ${COLUMNS} from revoked_tokens where id > $1::bigint and expires_at > $2::timestamptz order by id`,
    [Math.max(0, afterId - REVOCATION_ID_MARGIN), now.toISOString()],
  );
}

/** Revocations still in force at `now`, newest first (`GET /api/tokens/revocations`). */
export async function listRevocations(db: DbOrHandle, opts: { now: Date; limit: number }): Promise<RevocationRow[]> {
  return rows<RevocationRow>(
    db,
    `select ${COLUMNS} from revoked_tokens where expires_at > $1::timestamptz order by id desc limit $2::int`,
    [opts.now.toISOString(), opts.limit],
  );
}

/** Deletes the rows expired at `now` (every token they named has expired); answers how many. */
export async function deleteExpiredRevocations(db: DbOrHandle, now: Date): Promise<number> {
  const r = await rows<{ id: number }>(db, `delete from revoked_tokens where expires_at <= $1::timestamptz returning id`, [
    now.toISOString(),
  ]);
  return r.length;
}
