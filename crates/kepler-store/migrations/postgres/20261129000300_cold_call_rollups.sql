-- Rollups of the cost log, so the usage windows read a bounded number of rows
-- instead of counting every call of the month (issue 6).
--
-- Kept by a trigger on `cold_calls`, inside the statement that logs the call (so
-- inside the admission's transaction, under the account's lock): a rollup can
-- never disagree with the log. Buckets are aligned to UTC days and hours:
-- bucket = t - (t mod size), with a mod that stays non-negative (crate::windows
-- reads them with the same sizes). The month is a sum over its days (a month
-- starts on a UTC day boundary); a rolling window sums its whole hours and
-- counts the raw rows of its partial first hour through the cost-log indexes,
-- so every figure stays exact.

CREATE TABLE cold_call_days (
    account_id   UUID    NOT NULL REFERENCES accounts (account_id),
    day          BIGINT  NOT NULL,
    calls        BIGINT  NOT NULL,
    cost_micros  BIGINT  NOT NULL,
    PRIMARY KEY (account_id, day)
);

CREATE TABLE cold_call_account_hours (
    account_id  UUID    NOT NULL REFERENCES accounts (account_id),
    hour        BIGINT  NOT NULL,
    calls       BIGINT  NOT NULL,
    PRIMARY KEY (account_id, hour)
);

CREATE TABLE cold_call_key_hours (
    key_id  UUID    NOT NULL REFERENCES api_keys (key_id),
    hour    BIGINT  NOT NULL,
    calls   BIGINT  NOT NULL,
    PRIMARY KEY (key_id, hour)
);

-- The calls logged before the rollups existed.
INSERT INTO cold_call_days (account_id, day, calls, cost_micros)
    SELECT account_id, created_at - ((created_at % 86400000) + 86400000) % 86400000, COUNT(*), SUM(cost_micros)
    FROM cold_calls GROUP BY 1, 2;
INSERT INTO cold_call_account_hours (account_id, hour, calls)
    SELECT account_id, created_at - ((created_at % 3600000) + 3600000) % 3600000, COUNT(*)
    FROM cold_calls GROUP BY 1, 2;
INSERT INTO cold_call_key_hours (key_id, hour, calls)
    SELECT key_id, created_at - ((created_at % 3600000) + 3600000) % 3600000, COUNT(*)
    FROM cold_calls GROUP BY 1, 2;

CREATE FUNCTION cold_calls_roll_up() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cold_call_days AS d (account_id, day, calls, cost_micros)
        VALUES (NEW.account_id, NEW.created_at - ((NEW.created_at % 86400000) + 86400000) % 86400000, 1, NEW.cost_micros)
        ON CONFLICT (account_id, day) DO UPDATE SET calls = d.calls + 1, cost_micros = d.cost_micros + EXCLUDED.cost_micros;
    INSERT INTO cold_call_account_hours AS h (account_id, hour, calls)
        VALUES (NEW.account_id, NEW.created_at - ((NEW.created_at % 3600000) + 3600000) % 3600000, 1)
        ON CONFLICT (account_id, hour) DO UPDATE SET calls = h.calls + 1;
    INSERT INTO cold_call_key_hours AS h (key_id, hour, calls)
        VALUES (NEW.key_id, NEW.created_at - ((NEW.created_at % 3600000) + 3600000) % 3600000, 1)
        ON CONFLICT (key_id, hour) DO UPDATE SET calls = h.calls + 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER cold_calls_roll_up AFTER INSERT ON cold_calls
    FOR EACH ROW EXECUTE FUNCTION cold_calls_roll_up();
