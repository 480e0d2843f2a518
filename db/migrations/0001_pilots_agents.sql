CREATE TABLE "job_heartbeats" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"job_id" bigint NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"cpu_seconds" double precision NOT NULL,
	"wall_seconds" double precision NOT NULL,
	"rss_mb" double precision NOT NULL,
	"disk_free_mb" double precision,
	"load_average" double precision
);
--> statement-breakpoint
CREATE TABLE "pilot_logs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"pilot_id" bigint NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"line" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "agent_leases" (
	"agent" text PRIMARY KEY NOT NULL,
	"holder" text,
	"expires_at" timestamp with time zone,
	"last_tick_at" timestamp with time zone,
	"last_duration_ms" integer,
	"last_outcome" text DEFAULT '' NOT NULL
);
--> statement-breakpoint
ALTER TABLE "pilots" ADD COLUMN "ce_type" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "pilots" ADD COLUMN "queue_id" bigint;--> statement-breakpoint
ALTER TABLE "pilots" ADD COLUMN "clock_offset_seconds" double precision;--> statement-breakpoint
ALTER TABLE "pilots" ADD COLUMN "jobs_run" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "pilots" ADD COLUMN "exit_code" integer;--> statement-breakpoint
ALTER TABLE "job_heartbeats" ADD CONSTRAINT "job_heartbeats_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pilot_logs" ADD CONSTRAINT "pilot_logs_pilot_id_pilots_id_fk" FOREIGN KEY ("pilot_id") REFERENCES "public"."pilots"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "job_heartbeats_job" ON "job_heartbeats" USING btree ("job_id","id");--> statement-breakpoint
CREATE INDEX "pilot_logs_pilot" ON "pilot_logs" USING btree ("pilot_id","id");--> statement-breakpoint
CREATE INDEX "pilots_queue_status" ON "pilots" USING btree ("queue_id","status");--> statement-breakpoint
CREATE INDEX "pilots_status_updated" ON "pilots" USING btree ("status","last_update_at");