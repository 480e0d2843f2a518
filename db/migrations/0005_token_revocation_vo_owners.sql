CREATE TABLE "revoked_tokens" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"jti" text,
	"vo" text,
	"subject" text,
	"revoked_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"reason" text DEFAULT '' NOT NULL,
	"revoked_by" text DEFAULT '' NOT NULL
);
--> statement-breakpoint
ALTER TABLE "sandbox_owners" DROP CONSTRAINT "sandbox_owners_sha256_owner_pk";--> statement-breakpoint
ALTER TABLE "sandbox_owners" ADD CONSTRAINT "sandbox_owners_sha256_vo_owner_pk" PRIMARY KEY("sha256","vo","owner");--> statement-breakpoint
CREATE UNIQUE INDEX "revoked_tokens_jti" ON "revoked_tokens" USING btree ("jti");--> statement-breakpoint
CREATE INDEX "revoked_tokens_expires" ON "revoked_tokens" USING btree ("expires_at");