import { jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

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
