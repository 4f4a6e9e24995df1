-- A claim no longer writes the run's jobs (issue 6, queue drain): a job that
-- waited for its run stays stored as `pending` until the run settles, and is
-- read as running while its run is (`started_at`: the run's first claim). Per
-- job that is one heap tuple and four index entries fewer (a status change
-- moves the row in every index of `jobs`): +7-11 % jobs/s in
-- `kepler-bench queue` at 20,000 and 200,000 jobs. Jobs that join a run
-- already under way are still stored as running, and a hand-back still resets
-- those. The settle stamps waiting jobs with the run's first claim.
--
-- While nodes of the previous release still run, they read such jobs as
-- pending until their run settles.
--
-- The body is restated from migration 20261129000500 (a function is replaced
-- whole); only the claim's jobs update and the settle's `started_at` changed.
CREATE OR REPLACE FUNCTION kepler_settle_and_claim(
    p_run_id          UUID,
    p_worker          TEXT,
    p_status          TEXT,
    p_now             BIGINT,  -- the settle's finished_at, the claim's now
    p_failure_reason  TEXT,
    p_domain          TEXT,
    p_scored_at       BIGINT,
    p_engine_version  TEXT,
    p_score           INTEGER,
    p_grade           TEXT,
    p_body            JSONB,
    p_served          TEXT,
    p_claim_next      BOOLEAN,
    p_lease_until     BIGINT
) RETURNS TABLE (
    held              TEXT,
    run_id            UUID,
    domain            TEXT,
    attempts          INTEGER,
    first_started_at  BIGINT,
    force_fresh       BOOLEAN,
    reclaimed         BOOLEAN
)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_started  BIGINT;  -- the settled run's first claim: its waiting jobs started then
BEGIN
    IF p_run_id IS NOT NULL THEN
        UPDATE runs SET status = p_status, finished_at = p_now, scored_at = p_scored_at,
                failure_reason = p_failure_reason, lease_expires_at = NULL
            WHERE runs.run_id = p_run_id AND runs.status = 'running' AND runs.lease_owner = p_worker
              AND (p_status <> 'complete' OR runs.domain = p_domain)
            RETURNING runs.domain, runs.first_started_at INTO held, v_started;
        IF held IS NULL THEN
            -- Not held, or a record of another domain (a caller's bug).
            SELECT runs.domain INTO held FROM runs
                WHERE runs.run_id = p_run_id AND runs.status = 'running' AND runs.lease_owner = p_worker;
            IF held IS NOT NULL THEN
                RETURN NEXT;
                RETURN;
            END IF;
        ELSE
            IF p_status = 'complete' THEN
                INSERT INTO records (domain, scored_at, engine_version, score, grade, body, served)
                    VALUES (p_domain, p_scored_at, p_engine_version, p_score, p_grade, p_body, p_served);
            END IF;
            UPDATE jobs SET status = p_status, finished_at = p_now, scored_at = p_scored_at,
                    failure_reason = p_failure_reason,
                    started_at = COALESCE(jobs.started_at, v_started, p_now)
                WHERE jobs.run_id = p_run_id AND jobs.status IN ('pending', 'running');
        END IF;
    END IF;
    IF p_claim_next THEN
        WITH next AS (
            SELECT runs.run_id, runs.status AS was FROM runs
            WHERE runs.status IN ('pending', 'running')
              AND (runs.status = 'pending' OR runs.lease_expires_at < p_now)
            ORDER BY runs.created_at, runs.run_id
            LIMIT 1
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE runs SET status = 'running', lease_owner = p_worker, lease_expires_at = p_lease_until,
                    attempts = runs.attempts + 1,
                    first_started_at = COALESCE(runs.first_started_at, p_now)
                FROM next WHERE runs.run_id = next.run_id
                RETURNING runs.run_id, runs.domain, runs.attempts, runs.first_started_at,
                    runs.force_fresh, next.was = 'running' AS reclaimed
        )
        SELECT c.run_id, c.domain, c.attempts, c.first_started_at, c.force_fresh, c.reclaimed
            INTO run_id, domain, attempts, first_started_at, force_fresh, reclaimed
            FROM claimed AS c;
    END IF;
    RETURN NEXT;
END
$$;
