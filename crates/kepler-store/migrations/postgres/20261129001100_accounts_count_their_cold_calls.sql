-- Each account counts the changes to its cost log (issue 6, cached hits). A
-- node that served a cached hit keeps the facts it read; the next hit for the
-- same key and domain reads only the key row, this counter and the domain's
-- newest record id (one light statement instead of the usage windows' eight
-- sub-selects) and reuses the facts while all three are unchanged. The
-- counter moves with every row of `cold_calls` the account gains or loses —
-- by `kepler_admit`, under the account's lock, or by hand, a `TRUNCATE`
-- included — so no change to the account's windows goes unseen.
--
-- A table of its own, not a column of `accounts`: an admission locks its
-- account's row while the others of the account wait for it, and updating
-- that row would send every waiter after its newest version (one account's
-- cold admissions: p99 ~42 -> ~88 ms in `kepler-bench http`).
CREATE TABLE cold_call_changes (
    account_id  UUID    PRIMARY KEY REFERENCES accounts (account_id),
    changes     BIGINT  NOT NULL
);

INSERT INTO cold_call_changes (account_id, changes)
    SELECT account_id, COUNT(*) FROM cold_calls GROUP BY account_id;

CREATE FUNCTION cold_calls_count_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO cold_call_changes AS c (account_id, changes) VALUES (NEW.account_id, 1)
            ON CONFLICT (account_id) DO UPDATE SET changes = c.changes + 1;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO cold_call_changes AS c (account_id, changes) VALUES (OLD.account_id, 1)
            ON CONFLICT (account_id) DO UPDATE SET changes = c.changes + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER cold_calls_count_changes AFTER INSERT OR UPDATE OR DELETE ON cold_calls
    FOR EACH ROW EXECUTE FUNCTION cold_calls_count_changes();

CREATE FUNCTION cold_calls_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cold_call_changes SET changes = changes + 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER cold_calls_truncated AFTER TRUNCATE ON cold_calls
    FOR EACH STATEMENT EXECUTE FUNCTION cold_calls_truncated();
