"""What SQLite itself needs for one cold admission, with no driver hops and no HTTP.

Runs the store's own statements (the facts read, the run, job and cost-log
inserts with their rollup triggers, the commit) through Python's sqlite3
module with prepared statements on a database `kepler admin` migrated, and
times each part. Usage: sqlite_admission.py DB_PATH ACCOUNT_ID KEY_ID [N]
"""

import sqlite3
import sys
import time
import uuid

HOUR = 3_600_000
DAY = 86_400_000

# The facts statement of crates/kepler-store/src/sqlite/admission.rs
# (FACTS_SQL), binds in the same order.
FACTS = """SELECT
 (SELECT COALESCE(SUM(calls), 0) FROM cold_call_days WHERE account_id = ?2 AND day >= ?4),
 (SELECT COALESCE(SUM(cost_micros), 0) FROM cold_call_days WHERE account_id = ?2 AND day >= ?4),
 (SELECT COUNT(*) FROM cold_calls WHERE key_id = ?3 AND created_at >= ?5 AND created_at < ?6)
   + (SELECT COALESCE(SUM(calls), 0) FROM cold_call_key_hours WHERE key_id = ?3 AND hour >= ?6),
 (SELECT created_at FROM cold_calls WHERE key_id = ?3 AND created_at >= ?5 ORDER BY created_at LIMIT 1),
 (SELECT COUNT(*) FROM cold_calls WHERE account_id = ?2 AND created_at >= ?7 AND created_at < ?8)
   + (SELECT COALESCE(SUM(calls), 0) FROM cold_call_account_hours WHERE account_id = ?2 AND hour >= ?8),
 (SELECT created_at FROM cold_calls WHERE account_id = ?2 AND created_at >= ?7 ORDER BY created_at LIMIT 1),
 r.scored_at, r.record_id,
 (SELECT job_id FROM jobs WHERE account_id = ?2 AND domain = ?1 AND status IN ('pending', 'running') LIMIT 1),
 (SELECT run_id FROM runs WHERE domain = ?1 AND status IN ('pending', 'running')),
 (SELECT status FROM runs WHERE domain = ?1 AND status IN ('pending', 'running'))
FROM (SELECT 1) LEFT JOIN (SELECT scored_at, record_id FROM records WHERE domain = ?1
  ORDER BY scored_at DESC, record_id DESC LIMIT 1) AS r ON 1"""
RUN = "INSERT INTO runs (run_id, domain, status, force_fresh, created_at) VALUES (?, ?, 'pending', 0, ?)"
JOB = ("INSERT INTO jobs (job_id, account_id, key_id, run_id, domain, status, created_at, started_at) "
       "VALUES (?, ?, ?, ?, ?, 'pending', ?, NULL)")
CALL = ("INSERT INTO cold_calls (account_id, key_id, job_id, domain, cost_micros, created_at) "
        "VALUES (?, ?, ?, ?, 1000, ?)")


def main():
    path, account, key = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 4000
    db = sqlite3.connect(path, isolation_level=None, cached_statements=64)
    # The store's own settings (crates/kepler-store/src/sqlite/mod.rs).
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    tag = uuid.uuid4().hex[:8]
    print(f"SQLite {sqlite3.sqlite_version}, {n} admissions of one account per measurement")

    def admit(domain, parts):
        now = int(time.time() * 1000)
        key_since, day_since = now - HOUR, now - DAY
        binds = (domain, account, key, now - now % DAY, key_since,
                 key_since - key_since % HOUR + HOUR, day_since, day_since - day_since % HOUR + HOUR)
        run, job = str(uuid.uuid4()), str(uuid.uuid4())
        steps = (
            ("facts", lambda: db.execute(FACTS, binds).fetchone()),
            ("run", lambda: db.execute(RUN, (run, domain, now))),
            ("job", lambda: db.execute(JOB, (job, account, key, run, domain, now))),
            ("cost log", lambda: db.execute(CALL, (account, key, job, domain, now))),
        )
        for name, step in steps:
            started = time.perf_counter()
            step()
            parts[name] = parts.get(name, 0.0) + time.perf_counter() - started

    for per_commit in (1, 16):
        parts = {}
        started = time.perf_counter()
        for i in range(n):
            if i % per_commit == 0:
                db.execute("BEGIN IMMEDIATE")
            admit(f"floor{tag}c{per_commit}n{i}.bench.example", parts)
            if i % per_commit == per_commit - 1 or i == n - 1:
                t = time.perf_counter()
                db.execute("COMMIT")
                parts["commit"] = parts.get("commit", 0.0) + time.perf_counter() - t
        elapsed = time.perf_counter() - started
        each = ", ".join(f"{k} {v / n * 1e6:.0f}" for k, v in parts.items())
        print(f"  {per_commit:>2} per commit: {n / elapsed:,.0f} admissions/s "
              f"({elapsed / n * 1e6:.0f} us each; us per admission: {each})")


if __name__ == "__main__":
    main()
