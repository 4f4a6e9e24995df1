-- Many admissions in one call and one commit (issue 6, cold admission). One
-- call of `kepler_admit` a commit held the account's lock from the grant to
-- the commit's WAL flush, so one account's cold calls were one commit each
-- (~1 ms here); a node now hands the admissions waiting at one moment to
-- `kepler_admit_batch`, which carries each out exactly as `kepler_admit`
-- does (it calls it), one after another in one transaction: each checks its
-- facts after the writes of those before it, so the limits stay exact, and
-- they share the lock's hand-over and the commit. pgbench, one account,
-- eight clients: 16 admissions a call admitted 5.5 x as many a second as one
-- a call.
--
-- Arrays of equal length, one place per admission, with `kepler_admit`'s
-- arguments; the answer is `kepler_admit`'s row for each place.
--
-- Locks are taken in one order by every call, so that two nodes' batches
-- cannot wait for each other: first every account's row, by account id
-- (`kepler_admit` locks its account again: already held, nothing to wait
-- for), then the admissions in the order of their domains, each locking or
-- creating its domain's run. A single `kepler_admit` follows the same order
-- (its account, then its run).
CREATE FUNCTION kepler_admit_batch(
    p_account      UUID[],
    p_key          UUID[],
    p_domain       TEXT[],
    p_month        BIGINT[],
    p_key_since    BIGINT[],
    p_key_edge     BIGINT[],
    p_day_since    BIGINT[],
    p_day_edge     BIGINT[],
    p_month_limit  BIGINT[],
    p_key_limit    BIGINT[],
    p_day_limit    BIGINT[],
    p_record_at    BIGINT[],
    p_job_id       UUID[],
    p_run_id       UUID[],
    p_force_fresh  BOOLEAN[],
    p_now          BIGINT[],
    p_cost         BIGINT[]
) RETURNS TABLE (
    place        INT,      -- 1-based, as in the arrays
    outcome      TEXT,
    run_running  BOOLEAN,
    month_n      BIGINT,
    month_cost   BIGINT,
    key_n        BIGINT,
    day_n        BIGINT
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_place INT;
BEGIN
    PERFORM 1 FROM accounts WHERE account_id = ANY (p_account)
        ORDER BY account_id FOR NO KEY UPDATE;
    FOR v_place IN
        SELECT d.o FROM unnest(p_domain) WITH ORDINALITY AS d(domain, o) ORDER BY d.domain, d.o
    LOOP
        RETURN QUERY SELECT v_place, a.outcome, a.run_running, a.month_n, a.month_cost, a.key_n, a.day_n
            FROM kepler_admit(p_account[v_place], p_key[v_place], p_domain[v_place],
                p_month[v_place], p_key_since[v_place], p_key_edge[v_place],
                p_day_since[v_place], p_day_edge[v_place], p_month_limit[v_place],
                p_key_limit[v_place], p_day_limit[v_place], p_record_at[v_place],
                p_job_id[v_place], p_run_id[v_place], p_force_fresh[v_place],
                p_now[v_place], p_cost[v_place]) AS a;
    END LOOP;
END
$$;
