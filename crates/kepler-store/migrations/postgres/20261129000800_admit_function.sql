-- The write half of an admission as one call that commits on its own (issue 6).
-- It was BEGIN, the account's lock, the facts again, the run (look-up, insert,
-- NOTIFY), the job, the cost-log row and COMMIT: eight round trips, seven of
-- them holding the account's lock, so one account's cold calls serialised on
-- round trips, and an admission took ~2.5 ms of an enqueue → start of ~4 ms.
--
-- The caller has already decided `Admit` on a snapshot (the facts statement,
-- without a lock). Under the account's lock this function checks that the
-- decision still holds, and only then writes:
--   * the account's windows are still under the limits the caller passes
--     (the limits `kepler_core::admission::decide` compared them with), counted
--     exactly as the facts statement counts them (crate::postgres::admission's
--     `window_columns`: day rollups for the month; raw calls of the first partial
--     hour plus hour rollups for the rolling windows);
--   * the caller still has no job in flight for the domain;
--   * the domain's newest record is still the one the caller saw (a record
--     stored meanwhile may be fresh: a cached answer instead of a cold call).
-- Otherwise it writes nothing and answers 'changed': the caller reads the facts
-- again and decides again. Other admissions of the account only ever raise the
-- counts, so under contention a call is admitted as long as the limits allow,
-- with no retry.
--
-- Each statement of a VOLATILE PL/pgSQL function takes a new snapshot, so the
-- checks after the lock see every admission committed before it was granted.
--
-- Answers: 'admitted' (with the run's state: a job joining a running run is
-- running from the moment it joins), 'changed', 'no_account', or 'busy' (the
-- domain's run kept changing under the admission; nothing written).
CREATE FUNCTION kepler_admit(
    p_account        UUID,
    p_key            UUID,
    p_domain         TEXT,
    p_month          BIGINT,   -- the window bounds, as the facts statement's $3..$7
    p_key_since      BIGINT,
    p_key_edge       BIGINT,
    p_day_since      BIGINT,
    p_day_edge       BIGINT,
    p_month_limit    BIGINT,
    p_key_limit      BIGINT,
    p_day_limit      BIGINT,
    p_record_at      BIGINT,   -- the newest record's scored_at the caller saw (NULL: none)
    p_job_id         UUID,
    p_run_id         UUID,     -- the id of the run, if this admission creates it
    p_force_fresh    BOOLEAN,
    p_now            BIGINT,
    p_cost           BIGINT
) RETURNS TABLE (
    outcome      TEXT,
    run_running  BOOLEAN,
    month_n      BIGINT,   -- the counts under the lock, before this call
    month_cost   BIGINT,
    key_n        BIGINT,
    day_n        BIGINT
)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_run     UUID;
    v_status  TEXT;
BEGIN
    -- NO KEY UPDATE excludes other admissions of the account but not the
    -- foreign-key checks of rows that merely reference it (new keys, jobs).
    PERFORM 1 FROM accounts WHERE account_id = p_account FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        outcome := 'no_account';
        RETURN NEXT;
        RETURN;
    END IF;

    SELECT COALESCE(SUM(d.calls), 0), COALESCE(SUM(d.cost_micros), 0)
        INTO month_n, month_cost
        FROM cold_call_days AS d WHERE d.account_id = p_account AND d.day >= p_month;
    key_n := (SELECT COUNT(*) FROM cold_calls AS c
                WHERE c.key_id = p_key AND c.created_at >= p_key_since AND c.created_at < p_key_edge)
           + (SELECT COALESCE(SUM(h.calls), 0) FROM cold_call_key_hours AS h
                WHERE h.key_id = p_key AND h.hour >= p_key_edge);
    day_n := (SELECT COUNT(*) FROM cold_calls AS c
                WHERE c.account_id = p_account AND c.created_at >= p_day_since AND c.created_at < p_day_edge)
           + (SELECT COALESCE(SUM(h.calls), 0) FROM cold_call_account_hours AS h
                WHERE h.account_id = p_account AND h.hour >= p_day_edge);
    IF month_n >= p_month_limit OR key_n >= p_key_limit OR day_n >= p_day_limit
       OR EXISTS (SELECT 1 FROM jobs WHERE account_id = p_account AND domain = p_domain
            AND status IN ('pending', 'running'))
       OR (SELECT scored_at FROM records WHERE domain = p_domain
            ORDER BY scored_at DESC, record_id DESC LIMIT 1) IS DISTINCT FROM p_record_at
    THEN
        outcome := 'changed';
        RETURN NEXT;
        RETURN;
    END IF;

    -- The domain's run in flight, locked so that no worker settles (or claims)
    -- it while the job joins; created and announced when there is none. Another
    -- account's admission may create it at the same moment: the unique index
    -- makes one of us wait and then find it.
    FOR attempt IN 1..5 LOOP
        SELECT run_id, status INTO v_run, v_status FROM runs
            WHERE domain = p_domain AND status IN ('pending', 'running') FOR UPDATE;
        IF FOUND THEN
            IF p_force_fresh THEN
                UPDATE runs SET force_fresh = TRUE WHERE run_id = v_run;
            END IF;
            EXIT;
        END IF;
        INSERT INTO runs (run_id, domain, status, force_fresh, created_at)
            VALUES (p_run_id, p_domain, 'pending', p_force_fresh, p_now)
            ON CONFLICT (domain) WHERE status IN ('pending', 'running') DO NOTHING
            RETURNING run_id INTO v_run;
        IF v_run IS NOT NULL THEN
            v_status := 'pending';
            -- Delivered at commit; the payload is the schema (crate::postgres::queue).
            PERFORM pg_notify('kepler_runs', COALESCE(current_schema(), ''));
            EXIT;
        END IF;
    END LOOP;
    IF v_run IS NULL THEN
        outcome := 'busy';
        RETURN NEXT;
        RETURN;
    END IF;

    INSERT INTO jobs (job_id, account_id, key_id, run_id, domain, status, created_at, started_at)
        VALUES (p_job_id, p_account, p_key, v_run, p_domain,
                CASE WHEN v_status = 'running' THEN 'running' ELSE 'pending' END,
                p_now, CASE WHEN v_status = 'running' THEN p_now END);
    INSERT INTO cold_calls (account_id, key_id, job_id, domain, cost_micros, created_at)
        VALUES (p_account, p_key, p_job_id, p_domain, p_cost, p_now);
    outcome := 'admitted';
    run_running := v_status = 'running';
    RETURN NEXT;
END
$$;
