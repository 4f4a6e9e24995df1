-- The queue's claim and settle as functions, so a busy worker pays one round
-- trip and one commit per job: settling a run and claiming its next one is a
-- single call (issue 6: a settle was BEGIN, lock, insert, update, COMMIT, and
-- the next claim another statement and commit).
--
-- PL/pgSQL rather than one statement with CTEs: every statement of a VOLATILE
-- function takes a fresh snapshot, so the jobs an admission attached to a run
-- while the settle waited for the run's lock are settled too (one statement
-- keeps the snapshot it started with and would leave them pending behind a
-- finished run), and a claim after a settle sees the queue as it is then.

-- Settles the run p_worker finished (p_run_id; NULL for none) and every job
-- still attached to it; with p_claim_next, then claims p_worker's next run in
-- the same transaction. `held` is the settled run's domain if p_worker still
-- held it, NULL if not (then the run is left alone). A completion whose record
-- names another domain changes nothing and claims nothing: the caller sees
-- `held` and reports the bug. The run's UPDATE is its lock, check and change at
-- once (no SELECT … FOR UPDATE first: one heap lock record and one index probe
-- fewer per job).
--
-- The claim takes the oldest claimable run: pending, or running under a lease
-- that has expired (its worker died). Rows another transaction holds are
-- skipped, not waited for. Its LIMIT is a literal 1, so the cached generic plan
-- knows one row comes back and stays on the indexes. (With a LIMIT parameter
-- the generic plan assumes a tenth of the table and hash-joins over sequential
-- scans of runs and jobs, so PostgreSQL re-plans every call: claim + settle
-- pairs at concurrency 10 went from 1,770/s to 3,017/s with the literal,
-- pgbench.) Inline here rather than a call to kepler_claim_runs: a nested call
-- cost ~7 % of a job.
CREATE FUNCTION kepler_settle_and_claim(
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
BEGIN
    IF p_run_id IS NOT NULL THEN
        UPDATE runs SET status = p_status, finished_at = p_now, scored_at = p_scored_at,
                failure_reason = p_failure_reason, lease_expires_at = NULL
            WHERE runs.run_id = p_run_id AND runs.status = 'running' AND runs.lease_owner = p_worker
              AND (p_status <> 'complete' OR runs.domain = p_domain)
            RETURNING runs.domain INTO held;
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
                    failure_reason = p_failure_reason, started_at = COALESCE(jobs.started_at, p_now)
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
        ), started AS (
            UPDATE jobs SET status = 'running', started_at = COALESCE(jobs.started_at, p_now)
                FROM claimed WHERE jobs.run_id = claimed.run_id AND jobs.status = 'pending'
        )
        SELECT c.run_id, c.domain, c.attempts, c.first_started_at, c.force_fresh, c.reclaimed
            INTO run_id, domain, attempts, first_started_at, force_fresh, reclaimed
            FROM claimed AS c;
    END IF;
    RETURN NEXT;
END
$$;

-- Claims up to p_limit of the oldest claimable runs for p_worker, one at a time
-- through kepler_settle_and_claim (the one copy of the claim): a worker filling
-- several free slots at once.
CREATE FUNCTION kepler_claim_runs(
    p_worker       TEXT,
    p_lease_until  BIGINT,
    p_now          BIGINT,
    p_limit        INTEGER
) RETURNS TABLE (
    run_id            UUID,
    domain            TEXT,
    attempts          INTEGER,
    first_started_at  BIGINT,
    force_fresh       BOOLEAN,
    reclaimed         BOOLEAN
)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    FOR i IN 1..p_limit LOOP
        SELECT c.run_id, c.domain, c.attempts, c.first_started_at, c.force_fresh, c.reclaimed
            INTO run_id, domain, attempts, first_started_at, force_fresh, reclaimed
            FROM kepler_settle_and_claim(NULL, p_worker, NULL, p_now, NULL, NULL, NULL, NULL,
                NULL, NULL, NULL, NULL, TRUE, p_lease_until) AS c;
        EXIT WHEN run_id IS NULL;
        RETURN NEXT;
    END LOOP;
END
$$;
