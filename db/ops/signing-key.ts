/**
 * The token-signing key pair, shared by every service replica on one database.
 */
import { asc } from 'drizzle-orm';
import { dbOf, LOCK_CLASS, type DbOrHandle } from '../open-db.js';
import { exec } from '../queries/raw.js';
import { signingKeys } from '../schema/index.js';

export interface SigningKey<K extends object = object> {
  kid: string;
  privateJwk: K;
  publicJwk: K;
}

/**
 * The deployment's signing key: the oldest stored one, or a new one from `create()` stored
 * first. Replicas starting together converge on one key: creation runs under a transaction
 * advisory lock.
 */
export async function getOrCreateSigningKey<K extends object>(
  db: DbOrHandle,
  create: () => Promise<SigningKey<K>>,
): Promise<SigningKey<K>> {
  return dbOf(db).transaction(async (tx) => {
    await exec(tx, 'select pg_advisory_xact_lock($1, 0)', [LOCK_CLASS.signingKey]);
    const [existing] = await tx.select().from(signingKeys).orderBy(asc(signingKeys.createdAt), asc(signingKeys.kid)).limit(1);
    if (existing) return { kid: existing.kid, privateJwk: existing.privateJwk as K, publicJwk: existing.publicJwk as K };
    const key = await create();
    await tx.insert(signingKeys).values({ kid: key.kid, privateJwk: key.privateJwk, publicJwk: key.publicJwk });
    return { kid: key.kid, privateJwk: key.privateJwk, publicJwk: key.publicJwk };
  });
}
