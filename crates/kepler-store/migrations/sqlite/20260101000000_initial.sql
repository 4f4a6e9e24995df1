-- Kepler's schema on SQLite.
--
-- Every timestamp is INTEGER milliseconds since the Unix epoch (UTC): it orders
-- and compares exactly, and window bounds are plain integer comparisons.
-- Identifiers are hyphenated lower-case UUID text.
-- STRICT tables make SQLite refuse values of the wrong type.

CREATE TABLE accounts (
    account_id  TEXT    PRIMARY KEY NOT NULL,
    name        TEXT    NOT NULL,
    tier        TEXT    NOT NULL CHECK (tier IN ('free', 'starter', 'growth', 'scale', 'enterprise')),
    created_at  INTEGER NOT NULL
) STRICT;

-- A key is stored only as the SHA-256 of the whole presented string (hex).
CREATE TABLE api_keys (
    key_id      TEXT    PRIMARY KEY NOT NULL,
    account_id  TEXT    NOT NULL REFERENCES accounts (account_id),
    sandbox     INTEGER NOT NULL CHECK (sandbox IN (0, 1)),
    key_hash    TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

CREATE INDEX api_keys_by_account ON api_keys (account_id);

-- Score records, append-only; `body` is the record as JSON.
CREATE TABLE records (
    record_id       INTEGER PRIMARY KEY,
    domain          TEXT    NOT NULL,
    scored_at       INTEGER NOT NULL,
    engine_version  TEXT    NOT NULL,
    score           INTEGER NOT NULL,
    grade           TEXT    NOT NULL,
    body            TEXT    NOT NULL
) STRICT;

-- The newest record of a domain.
CREATE INDEX records_latest ON records (domain, scored_at DESC, record_id DESC);

-- Engine runs: at most one pending or running per domain, shared by every job that asked.
CREATE TABLE runs (
    run_id            TEXT    PRIMARY KEY NOT NULL,
    domain            TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'complete', 'failed')),
    force_fresh       INTEGER NOT NULL CHECK (force_fresh IN (0, 1)),
    created_at        INTEGER NOT NULL,
    first_started_at  INTEGER,
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    attempts          INTEGER NOT NULL DEFAULT 0,
    finished_at       INTEGER,
    scored_at         INTEGER,
    failure_reason    TEXT
) STRICT;

CREATE UNIQUE INDEX runs_one_in_flight_per_domain ON runs (domain) WHERE status IN ('pending', 'running');
CREATE INDEX runs_pending_by_age ON runs (created_at, run_id) WHERE status = 'pending';
CREATE INDEX runs_running_by_lease ON runs (lease_expires_at) WHERE status = 'running';

-- User-visible jobs: one per admitted cold call, attached to the domain's run.
CREATE TABLE jobs (
    job_id          TEXT    PRIMARY KEY NOT NULL,
    account_id      TEXT    NOT NULL REFERENCES accounts (account_id),
    key_id          TEXT    NOT NULL REFERENCES api_keys (key_id),
    run_id          TEXT    NOT NULL REFERENCES runs (run_id),
    domain          TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'complete', 'failed')),
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER,
    scored_at       INTEGER,
    failure_reason  TEXT
) STRICT;

CREATE UNIQUE INDEX jobs_one_in_flight_per_account_domain ON jobs (account_id, domain) WHERE status IN ('pending', 'running');
CREATE INDEX jobs_by_run ON jobs (run_id, status);
CREATE INDEX jobs_by_status ON jobs (status, created_at);

-- The cost log: one row per admitted cold call. The usage windows count these rows.
CREATE TABLE cold_calls (
    call_id      INTEGER PRIMARY KEY,
    account_id   TEXT    NOT NULL REFERENCES accounts (account_id),
    key_id       TEXT    NOT NULL REFERENCES api_keys (key_id),
    job_id       TEXT    NOT NULL UNIQUE REFERENCES jobs (job_id),
    domain       TEXT    NOT NULL,
    cost_micros  INTEGER NOT NULL CHECK (cost_micros >= 0),
    created_at   INTEGER NOT NULL
) STRICT;

-- Covering indexes for the month (count and cost), the account's 24 h and the key's hour.
CREATE INDEX cold_calls_by_account ON cold_calls (account_id, created_at, cost_micros);
CREATE INDEX cold_calls_by_key ON cold_calls (key_id, created_at);

-- Saved answers for `Idempotency-Key`; `headers` is a JSON array of [name, value] pairs.
CREATE TABLE idempotency (
    account_id    TEXT    NOT NULL REFERENCES accounts (account_id),
    idem_key      TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    body          TEXT    NOT NULL,
    headers       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (account_id, idem_key)
) STRICT;

CREATE INDEX idempotency_by_age ON idempotency (created_at);
