import { bigserial, index, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * The EdDSA key pair that signs tokens, shared by every service replica on this database.
 * Only the services read it; it never leaves the server.
 */
export const signingKeys = pgTable('signing_keys', {
  kid: text('kid').primaryKey(),
  privateJwk: jsonb('private_jwk').notNull(),
  publicJwk: jsonb('public_jwk').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});

/**
 * Revoked tokens, read by every service replica (each keeps the rows in memory and polls for new
 * ones by id). A row revokes one token (`jti`), or every token of one subject (`vo`, `subject`)
 * issued at or before `revoked_at`. A row is kept until `expires_at`, when every token it could
 * name has expired anyway.
 */
export const revokedTokens = pgTable(
  'revoked_tokens',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jti: text('jti'),
    vo: text('vo'),
    subject: text('subject'),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    reason: text('reason').notNull().default(''),
    revokedBy: text('revoked_by').notNull().default(''),
  },
  (t) => [uniqueIndex('revoked_tokens_jti').on(t.jti), index('revoked_tokens_expires').on(t.expiresAt)],
);
