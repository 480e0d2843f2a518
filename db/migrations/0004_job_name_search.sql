-- The Jobs page searches job names by substring (ILIKE '%…%'): trigram index. pg_trgm is a trusted
-- extension (PostgreSQL 13+): the database owner may create it; PGlite loads it in openDb.
CREATE EXTENSION IF NOT EXISTS pg_trgm;--> statement-breakpoint
CREATE INDEX "jobs_name_trgm" ON "jobs" USING gin ("job_name" gin_trgm_ops);
