-- The matcher's claims, several in one call (db/queries/match.ts claimJobs): claim i of the
-- arrays walks its own task queues, p_tq_ids[p_tq_ends[i-1]+1 .. p_tq_ends[i]], in that order.
-- One transaction and one round trip for the whole batch; each claim sees the jobs the claims
-- before it took (they are no longer Waiting), so no job is handed out twice, and other
-- transactions' claims are skipped (FOR UPDATE SKIP LOCKED). One row per claim, in order:
-- r_again: a retried claim (same pilot and claim id) answered the job it already holds;
-- r_id null: nothing claimed (the generation is not the caller's, the site or CE is banned, a
-- live pilot was required and is unknown or final, or no queue had an unlocked waiting job).
CREATE OR REPLACE FUNCTION wms_claim_jobs(
  p_site text[], p_ce text[], p_tq_ids bigint[], p_tq_ends integer[], p_generation bigint[],
  p_pilot bigint[], p_source text[], p_live boolean[], p_claim text[], p_final pilot_status[]
) RETURNS TABLE (
  r_ord integer, r_generation bigint, r_pilot_status pilot_status, r_id bigint, r_jdl text,
  r_owner text, r_owner_group text, r_vo text, r_again boolean
) LANGUAGE plpgsql AS $$
DECLARE
  i integer;
  alive boolean;
  picked bigint;
BEGIN
  FOR i IN 1 .. coalesce(cardinality(p_site), 0) LOOP
    r_ord := i;
    r_again := false;
    r_id := NULL; r_jdl := NULL; r_owner := NULL; r_owner_group := NULL; r_vo := NULL;
    r_generation := coalesce((SELECT s.generation FROM task_queue_state s WHERE s.id = 1), 0);
    r_pilot_status := (SELECT p.status FROM pilots p WHERE p.id = p_pilot[i]);
    alive := NOT p_live[i] OR (r_pilot_status IS NOT NULL AND NOT (r_pilot_status = ANY (p_final)));
    -- A retried claim answers the job it took, while its pilot still holds it (jobs_pilot_claim).
    IF p_claim[i] IS NOT NULL AND alive THEN
      SELECT j.id, j.jdl, j.owner, j.owner_group, j.vo INTO r_id, r_jdl, r_owner, r_owner_group, r_vo
        FROM jobs j
       WHERE j.pilot_id = p_pilot[i] AND j.claim_id = p_claim[i]
         AND j.status IN ('Matched', 'Running', 'Completing', 'Stalled');
      IF r_id IS NOT NULL THEN
        r_again := true;
        RETURN NEXT;
        CONTINUE;
      END IF;
    END IF;
    IF r_generation <> p_generation[i] OR NOT alive
       OR EXISTS (SELECT 1 FROM sites s WHERE s.name = p_site[i] AND s.banned)
       OR EXISTS (SELECT 1 FROM computing_elements c WHERE c.name = p_ce[i] AND c.banned) THEN
      RETURN NEXT;
      CONTINUE;
    END IF;
    -- The oldest unlocked waiting job of the first queue that has one, in the given order
    -- (jobs_waiting_by_tq); LIMIT 1 stops the nested loop there, so one job is locked at most.
    picked := NULL;
    SELECT j.id INTO picked
      FROM unnest(p_tq_ids[coalesce(p_tq_ends[i - 1], 0) + 1 : p_tq_ends[i]]) AS c(tq)
     CROSS JOIN LATERAL (
       SELECT w.id FROM jobs w
        WHERE w.task_queue_id = c.tq AND w.status = 'Waiting'
        ORDER BY w.submitted_at, w.id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
     ) j
     LIMIT 1;
    IF picked IS NOT NULL THEN
      UPDATE jobs
         SET status = 'Matched', minor_status = 'Assigned', application_status = 'Unknown',
             site = p_site[i], pilot_id = p_pilot[i], claim_id = p_claim[i], report_seq = 0,
             heartbeat_at = NULL, last_update_at = now()
       WHERE jobs.id = picked
      RETURNING jobs.id, jobs.jdl, jobs.owner, jobs.owner_group, jobs.vo
           INTO r_id, r_jdl, r_owner, r_owner_group, r_vo;
      INSERT INTO job_history (job_id, status, minor_status, application_status, source)
      VALUES (picked, 'Matched', 'Assigned', 'Unknown', p_source[i]);
      IF p_pilot[i] IS NOT NULL THEN
        UPDATE pilots SET current_job_id = picked, last_update_at = now() WHERE pilots.id = p_pilot[i];
      END IF;
    END IF;
    RETURN NEXT;
  END LOOP;
END
$$;
