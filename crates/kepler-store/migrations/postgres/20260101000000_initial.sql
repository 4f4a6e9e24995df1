-- Kepler's schema on PostgreSQL: the same tables as on SQLite, native types.
--
-- Every timestamp is BIGINT milliseconds since the Unix epoch (UTC), as on
-- SQLite: window bounds are computed once in Rust (`windows.rs`) and compared
-- exactly, whatever the backend. Names are unqualified: the tables live in the
-- first schema of the connection's `search_path`.

CREATE TABLE accounts (
    account_id  UUID    PRIMARY KEY,
    name        TEXT    NOT NULL,
    tier        TEXT    NOT NULL CHECK (tier IN ('free', 'starter', 'growth', 'scale', 'enterprise')),
    created_at  BIGINT  NOT NULL
);

-- A key is stored only as the SHA-256 of the whole presented string (hex).
CREATE TABLE api_keys (
    key_id      UUID    PRIMARY KEY,
    account_id  UUID    NOT NULL REFERENCES accounts (account_id),
    sandbox     BOOLEAN NOT NULL,
    key_hash    TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);

CREATE INDEX api_keys_by_account ON api_keys (account_id);

-- Score records, append-only; `body` is the record as JSON.
CREATE TABLE records (
    record_id       BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain          TEXT    NOT NULL,
    scored_at       BIGINT  NOT NULL,
    engine_version  TEXT    NOT NULL,
    score           INTEGER NOT NULL,
    grade           TEXT    NOT NULL,
    body            JSONB   NOT NULL
);

-- The newest record of a domain.
CREATE INDEX records_latest ON records (domain, scored_at DESC, record_id DESC);

-- Engine runs: at most one pending or running per domain, shared by every job that asked.
CREATE TABLE runs (
    run_id            UUID    PRIMARY KEY,
    domain            TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'complete', 'failed')),
    force_fresh       BOOLEAN NOT NULL,
    created_at        BIGINT  NOT NULL,
    first_started_at  BIGINT,
    lease_owner       TEXT,
    lease_expires_at  BIGINT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    finished_at       BIGINT,
    scored_at         BIGINT,
    failure_reason    TEXT
);

CREATE UNIQUE INDEX runs_one_in_flight_per_domain ON runs (domain) WHERE status IN ('pending', 'running');
-- Claims walk the runs in flight oldest first: pending ones and running ones
-- whose lease expired. Running runs with a live lease are few (one per busy
-- worker slot), so the walk skips little.
CREATE INDEX runs_in_flight_by_age ON runs (created_at, run_id) WHERE status IN ('pending', 'running');

-- User-visible jobs: one per admitted cold call, attached to the domain's run.
CREATE TABLE jobs (
    job_id          UUID    PRIMARY KEY,
    account_id      UUID    NOT NULL REFERENCES accounts (account_id),
    key_id          UUID    NOT NULL REFERENCES api_keys (key_id),
    run_id          UUID    NOT NULL REFERENCES runs (run_id),
    domain          TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'complete', 'failed')),
    created_at      BIGINT  NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT,
    scored_at       BIGINT,
    failure_reason  TEXT
);

CREATE UNIQUE INDEX jobs_one_in_flight_per_account_domain ON jobs (account_id, domain) WHERE status IN ('pending', 'running');
CREATE INDEX jobs_by_run ON jobs (run_id, status);
CREATE INDEX jobs_by_status ON jobs (status, created_at);

-- The cost log: one row per admitted cold call. The usage windows count these rows.
CREATE TABLE cold_calls (
    call_id      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   UUID    NOT NULL REFERENCES accounts (account_id),
    key_id       UUID    NOT NULL REFERENCES api_keys (key_id),
    job_id       UUID    NOT NULL UNIQUE REFERENCES jobs (job_id),
    domain       TEXT    NOT NULL,
    cost_micros  BIGINT  NOT NULL CHECK (cost_micros >= 0),
    created_at   BIGINT  NOT NULL
);

-- Covering indexes for the month (count and cost), the account's 24 h and the key's hour.
CREATE INDEX cold_calls_by_account ON cold_calls (account_id, created_at) INCLUDE (cost_micros);
CREATE INDEX cold_calls_by_key ON cold_calls (key_id, created_at);

-- Saved answers for `Idempotency-Key`; `body` is kept byte for byte, `headers`
-- is a JSON array of [name, value] pairs.
CREATE TABLE idempotency (
    account_id    UUID    NOT NULL REFERENCES accounts (account_id),
    idem_key      TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    body          TEXT    NOT NULL,
    headers       JSONB   NOT NULL,
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (account_id, idem_key)
);

CREATE INDEX idempotency_by_age ON idempotency (created_at);
