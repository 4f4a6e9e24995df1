-- Rollups of the cost log, so the usage windows read a bounded number of rows
-- instead of counting every call of the month (issue 6).
--
-- Kept by triggers on `cold_calls`, inside the statement that logs the call (so
-- inside the admission's transaction): a rollup can never disagree with the log.
-- Buckets are aligned to UTC days and hours: bucket = t - (t mod size), with a
-- mod that stays non-negative (crate::windows reads them with the same sizes).
-- The month is a sum over its days (a month starts on a UTC day boundary); a
-- rolling window sums its whole hours and counts the raw rows of its partial
-- first hour through the cost-log indexes, so every figure stays exact.

CREATE TABLE cold_call_days (
    account_id   TEXT    NOT NULL REFERENCES accounts (account_id),
    day          INTEGER NOT NULL,
    calls        INTEGER NOT NULL,
    cost_micros  INTEGER NOT NULL,
    PRIMARY KEY (account_id, day)
) STRICT, WITHOUT ROWID;

CREATE TABLE cold_call_account_hours (
    account_id  TEXT    NOT NULL REFERENCES accounts (account_id),
    hour        INTEGER NOT NULL,
    calls       INTEGER NOT NULL,
    PRIMARY KEY (account_id, hour)
) STRICT, WITHOUT ROWID;

CREATE TABLE cold_call_key_hours (
    key_id  TEXT    NOT NULL REFERENCES api_keys (key_id),
    hour    INTEGER NOT NULL,
    calls   INTEGER NOT NULL,
    PRIMARY KEY (key_id, hour)
) STRICT, WITHOUT ROWID;

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

CREATE TRIGGER cold_calls_roll_up AFTER INSERT ON cold_calls
BEGIN
    INSERT INTO cold_call_days (account_id, day, calls, cost_micros)
        VALUES (NEW.account_id, NEW.created_at - ((NEW.created_at % 86400000) + 86400000) % 86400000, 1, NEW.cost_micros)
        ON CONFLICT (account_id, day) DO UPDATE SET calls = calls + 1, cost_micros = cost_micros + excluded.cost_micros;
    INSERT INTO cold_call_account_hours (account_id, hour, calls)
        VALUES (NEW.account_id, NEW.created_at - ((NEW.created_at % 3600000) + 3600000) % 3600000, 1)
        ON CONFLICT (account_id, hour) DO UPDATE SET calls = calls + 1;
    INSERT INTO cold_call_key_hours (key_id, hour, calls)
        VALUES (NEW.key_id, NEW.created_at - ((NEW.created_at % 3600000) + 3600000) % 3600000, 1)
        ON CONFLICT (key_id, hour) DO UPDATE SET calls = calls + 1;
END;
