-- A claim on its own (a worker with free slots, woken by an admission) commits
-- without waiting for its WAL flush: on this machine's disk a flush is ~2.8 ms,
-- a third or more of an admission's wait until a worker starts it (issue 6:
-- enqueue → start). Safe because a claim that a database crash loses undoes
-- itself: the run is pending again with its old lease and attempt count, the
-- worker that lost it cannot settle it (the settle's UPDATE names the lease
-- owner and a running status) and it is claimed again. Admissions and settles,
-- whose answers promise the caller something, keep durable commits; a settle
-- that claims the worker's next run in the same call flushes both.
-- `set_config(…, true)` lasts until the end of the calling transaction, so it
-- covers the commit of the `SELECT … FROM kepler_claim_runs(…)` that called it.
CREATE OR REPLACE FUNCTION kepler_claim_runs(
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
    PERFORM set_config('synchronous_commit', 'off', true);
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
