CREATE TABLE "accounting" (
	"job_id" bigint PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"owner_group" text NOT NULL,
	"vo" text NOT NULL,
	"site" text NOT NULL,
	"ce" text DEFAULT '' NOT NULL,
	"queue" text DEFAULT '' NOT NULL,
	"pilot_id" bigint,
	"status" "job_status" NOT NULL,
	"minor_status" text DEFAULT '' NOT NULL,
	"exit_code" integer,
	"submitted_at" timestamp with time zone NOT NULL,
	"started_at" timestamp with time zone,
	"ended_at" timestamp with time zone NOT NULL,
	"cpu_seconds" double precision DEFAULT 0 NOT NULL,
	"wall_seconds" double precision DEFAULT 0 NOT NULL,
	"benchmark" double precision,
	"normalized_cpu_seconds" double precision,
	"processors" integer DEFAULT 1 NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "accounting_ended" ON "accounting" USING btree ("ended_at");--> statement-breakpoint
CREATE INDEX "accounting_owner_ended" ON "accounting" USING btree ("owner","ended_at");