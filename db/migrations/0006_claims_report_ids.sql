ALTER TABLE "jobs" ADD COLUMN "claim_id" varchar(64);--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "report_seq" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_pilot_claim" ON "jobs" USING btree ("pilot_id","claim_id") WHERE "jobs"."claim_id" is not null;