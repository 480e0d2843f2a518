-- pilots.status: text -> the enum of core/pilot-states.ts. The default is dropped first (the
-- text default cannot be cast to the enum in place) and set again after; a row holding a
-- status outside the enum makes the migration fail rather than lose it.
CREATE TYPE "public"."pilot_status" AS ENUM('Submitted', 'Waiting', 'Running', 'Done', 'Failed', 'Aborted', 'Deleted', 'Unknown');--> statement-breakpoint
ALTER TABLE "pilots" ALTER COLUMN "status" DROP DEFAULT;--> statement-breakpoint
ALTER TABLE "pilots" ALTER COLUMN "status" SET DATA TYPE "public"."pilot_status" USING "status"::"public"."pilot_status";--> statement-breakpoint
ALTER TABLE "pilots" ALTER COLUMN "status" SET DEFAULT 'Submitted'::"public"."pilot_status";
