ALTER TABLE "ce_queues" ADD COLUMN "paused_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "ce_queues" ADD COLUMN "pause_reason" text;--> statement-breakpoint
ALTER TABLE "ce_queues" ADD COLUMN "pause_count" integer DEFAULT 0 NOT NULL;