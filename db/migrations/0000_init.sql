CREATE TYPE "public"."job_status" AS ENUM('Submitting', 'Received', 'Checking', 'Scouting', 'Staging', 'Waiting', 'Matched', 'Rescheduled', 'Running', 'Stalled', 'Completing', 'Completed', 'Done', 'Failed', 'Killed', 'Deleted');--> statement-breakpoint
CREATE TABLE "job_commands" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"job_id" bigint NOT NULL,
	"command" text NOT NULL,
	"arguments" text DEFAULT '' NOT NULL,
	"status" text DEFAULT 'Received' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "job_history" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"job_id" bigint NOT NULL,
	"status" "job_status" NOT NULL,
	"minor_status" text DEFAULT '' NOT NULL,
	"application_status" text DEFAULT '' NOT NULL,
	"source" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "job_parameters" (
	"job_id" bigint NOT NULL,
	"name" text NOT NULL,
	"value" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "job_parameters_job_id_name_pk" PRIMARY KEY("job_id","name")
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"owner_group" text NOT NULL,
	"vo" text NOT NULL,
	"job_name" text NOT NULL,
	"job_group" text NOT NULL,
	"job_type" text NOT NULL,
	"site" text DEFAULT 'ANY' NOT NULL,
	"status" "job_status" NOT NULL,
	"minor_status" text DEFAULT '' NOT NULL,
	"application_status" text DEFAULT 'Unknown' NOT NULL,
	"user_priority" integer DEFAULT 1 NOT NULL,
	"cpu_time" integer NOT NULL,
	"reschedule_counter" integer DEFAULT 0 NOT NULL,
	"task_queue_id" bigint,
	"pilot_id" bigint,
	"bulk_id" bigint,
	"parameter_number" integer,
	"jdl" text NOT NULL,
	"submitted_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_update_at" timestamp with time zone DEFAULT now() NOT NULL,
	"rescheduled_at" timestamp with time zone,
	"start_exec_at" timestamp with time zone,
	"end_exec_at" timestamp with time zone,
	"heartbeat_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "group_shares" (
	"vo" text NOT NULL,
	"owner_group" text NOT NULL,
	"share" double precision NOT NULL
);
--> statement-breakpoint
CREATE TABLE "task_queue_state" (
	"id" integer PRIMARY KEY NOT NULL,
	"generation" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "task_queues" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"key" text NOT NULL,
	"owner" text NOT NULL,
	"owner_group" text NOT NULL,
	"vo" text NOT NULL,
	"cpu_time" integer NOT NULL,
	"priority" integer NOT NULL,
	"processors" integer DEFAULT 1 NOT NULL,
	"ram_mb" integer DEFAULT 0 NOT NULL,
	"gpus" integer DEFAULT 0 NOT NULL,
	"sites" text[] DEFAULT '{}' NOT NULL,
	"banned_sites" text[] DEFAULT '{}' NOT NULL,
	"grid_ces" text[] DEFAULT '{}' NOT NULL,
	"platforms" text[] DEFAULT '{}' NOT NULL,
	"job_types" text[] DEFAULT '{}' NOT NULL,
	"tags" text[] DEFAULT '{}' NOT NULL,
	"share_priority" double precision DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "ce_queues" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ce_id" bigint NOT NULL,
	"name" text NOT NULL,
	"cpu_time" integer DEFAULT 86400 NOT NULL,
	"processors" integer DEFAULT 1 NOT NULL,
	"ram_mb" integer DEFAULT 2048 NOT NULL,
	"gpus" integer DEFAULT 0 NOT NULL,
	"platform" text,
	"tags" text[] DEFAULT '{}' NOT NULL,
	"allowed_vos" text[] DEFAULT '{}' NOT NULL,
	"max_waiting_pilots" integer DEFAULT 10 NOT NULL,
	"max_total_pilots" integer DEFAULT 100 NOT NULL,
	"max_pilots_per_cycle" integer DEFAULT 10 NOT NULL,
	"node_path" text,
	"settings" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "computing_elements" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"site" text NOT NULL,
	"name" text NOT NULL,
	"type" text NOT NULL,
	"banned" boolean DEFAULT false NOT NULL,
	"ban_reason" text,
	"settings" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sites" (
	"name" text PRIMARY KEY NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"banned" boolean DEFAULT false NOT NULL,
	"ban_reason" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "pilots" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"stamp" text NOT NULL,
	"reference" text,
	"site" text NOT NULL,
	"ce" text DEFAULT '' NOT NULL,
	"queue" text DEFAULT '' NOT NULL,
	"vo" text DEFAULT '' NOT NULL,
	"status" text DEFAULT 'Submitted' NOT NULL,
	"status_reason" text DEFAULT '' NOT NULL,
	"benchmark" double precision,
	"environment" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"current_job_id" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_update_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "job_sandboxes" (
	"job_id" bigint NOT NULL,
	"sha256" text NOT NULL,
	"kind" text NOT NULL,
	CONSTRAINT "job_sandboxes_job_id_sha256_kind_pk" PRIMARY KEY("job_id","sha256","kind")
);
--> statement-breakpoint
CREATE TABLE "sandbox_owners" (
	"sha256" text NOT NULL,
	"owner" text NOT NULL,
	"owner_group" text NOT NULL,
	"vo" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sandbox_owners_sha256_owner_pk" PRIMARY KEY("sha256","owner")
);
--> statement-breakpoint
CREATE TABLE "sandboxes" (
	"sha256" text PRIMARY KEY NOT NULL,
	"size" bigint NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_access_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "signing_keys" (
	"kid" text PRIMARY KEY NOT NULL,
	"private_jwk" jsonb NOT NULL,
	"public_jwk" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "job_commands" ADD CONSTRAINT "job_commands_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "job_history" ADD CONSTRAINT "job_history_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "job_parameters" ADD CONSTRAINT "job_parameters_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ce_queues" ADD CONSTRAINT "ce_queues_ce_id_computing_elements_id_fk" FOREIGN KEY ("ce_id") REFERENCES "public"."computing_elements"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "computing_elements" ADD CONSTRAINT "computing_elements_site_sites_name_fk" FOREIGN KEY ("site") REFERENCES "public"."sites"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "job_sandboxes" ADD CONSTRAINT "job_sandboxes_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "job_sandboxes" ADD CONSTRAINT "job_sandboxes_sha256_sandboxes_sha256_fk" FOREIGN KEY ("sha256") REFERENCES "public"."sandboxes"("sha256") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sandbox_owners" ADD CONSTRAINT "sandbox_owners_sha256_sandboxes_sha256_fk" FOREIGN KEY ("sha256") REFERENCES "public"."sandboxes"("sha256") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "job_commands_pending" ON "job_commands" USING btree ("job_id") WHERE "job_commands"."status" = 'Received';--> statement-breakpoint
CREATE INDEX "job_history_job" ON "job_history" USING btree ("job_id","id");--> statement-breakpoint
CREATE INDEX "jobs_waiting_by_tq" ON "jobs" USING btree ("task_queue_id","submitted_at","id") WHERE "jobs"."status" = 'Waiting';--> statement-breakpoint
CREATE INDEX "jobs_owner_status" ON "jobs" USING btree ("owner","status","id");--> statement-breakpoint
CREATE INDEX "jobs_status" ON "jobs" USING btree ("status","id");--> statement-breakpoint
CREATE INDEX "jobs_group" ON "jobs" USING btree ("job_group","id");--> statement-breakpoint
CREATE INDEX "jobs_site" ON "jobs" USING btree ("site","id");--> statement-breakpoint
CREATE INDEX "jobs_pilot" ON "jobs" USING btree ("pilot_id") WHERE "jobs"."pilot_id" is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "group_shares_pk" ON "group_shares" USING btree ("vo","owner_group");--> statement-breakpoint
CREATE UNIQUE INDEX "task_queues_key" ON "task_queues" USING btree ("key");--> statement-breakpoint
CREATE INDEX "task_queues_group" ON "task_queues" USING btree ("vo","owner_group");--> statement-breakpoint
CREATE UNIQUE INDEX "ce_queues_name" ON "ce_queues" USING btree ("ce_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "computing_elements_name" ON "computing_elements" USING btree ("name");--> statement-breakpoint
CREATE UNIQUE INDEX "pilots_stamp" ON "pilots" USING btree ("stamp");--> statement-breakpoint
CREATE INDEX "pilots_site_status" ON "pilots" USING btree ("site","ce","status");--> statement-breakpoint
CREATE INDEX "job_sandboxes_sha" ON "job_sandboxes" USING btree ("sha256");