-- Jobs are looked up by run and counted by status only while in flight (a
-- claim starts a run's jobs, a settle or hand-back changes them, /metrics
-- counts them). Indexes over the whole history took two index entries per
-- settled job that no query reads; partial ones stop at the settle (issue 6).
-- Reads unchanged: every such query names an in-flight status, which implies
-- the predicate.
CREATE INDEX jobs_in_flight_by_run ON jobs (run_id) WHERE status IN ('pending', 'running');
CREATE INDEX jobs_in_flight_by_status ON jobs (status, created_at) WHERE status IN ('pending', 'running');
DROP INDEX jobs_by_run;
DROP INDEX jobs_by_status;
