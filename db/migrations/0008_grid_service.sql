-- Issue 14 (a grid service): sandbox bytes in the database (chunks, every replica reads them),
-- application templates in a table, and the scheduled period an agent lease was last taken for.
CREATE TABLE "sandbox_chunks" (
	"sha256" text NOT NULL,
	"seq" integer NOT NULL,
	"data" "bytea" NOT NULL,
	CONSTRAINT "sandbox_chunks_sha256_seq_pk" PRIMARY KEY("sha256","seq")
);
--> statement-breakpoint
CREATE TABLE "app_templates" (
	"name" text PRIMARY KEY NOT NULL,
	"yaml" text NOT NULL,
	"template" jsonb NOT NULL,
	"source" text DEFAULT 'admin' NOT NULL,
	"updated_by" text DEFAULT '' NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "agent_leases" ADD COLUMN "last_period_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "sandbox_chunks" ADD CONSTRAINT "sandbox_chunks_sha256_sandboxes_sha256_fk" FOREIGN KEY ("sha256") REFERENCES "public"."sandboxes"("sha256") ON DELETE cascade ON UPDATE no action;