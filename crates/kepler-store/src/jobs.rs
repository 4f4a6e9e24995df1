//! How a job is read, the same SQL on every backend.

/// The columns a backend's `rows::job` reads, for
/// `SELECT {JOB_COLUMNS} FROM {JOBS_WITH_RUNS}`. A job that waited for its run
/// stays stored as pending while the run is under way (a claim writes only the
/// run), so it is read as running, started at the run's first claim, while its
/// run is running.
pub(crate) const JOB_COLUMNS: &str = "j.job_id, j.account_id, j.domain, \
     CASE WHEN j.status = 'pending' AND r.status = 'running' THEN 'running' ELSE j.status END AS status, \
     j.created_at, \
     COALESCE(j.started_at, CASE WHEN j.status = 'pending' AND r.status = 'running' THEN r.first_started_at END) AS started_at, \
     j.finished_at, j.scored_at, j.failure_reason";

/// Jobs (`j`) with their runs (`r`), for [`JOB_COLUMNS`].
pub(crate) const JOBS_WITH_RUNS: &str = "jobs j JOIN runs r ON r.run_id = j.run_id";

/// Jobs in flight by status as the API reports them, and the oldest pending
/// one's creation: `pending`, `running`, `oldest`.
pub(crate) const IN_FLIGHT_COUNTS: &str = "SELECT \
     COUNT(*) FILTER (WHERE j.status = 'pending' AND r.status <> 'running') AS pending, \
     COUNT(*) FILTER (WHERE j.status = 'running' OR r.status = 'running') AS running, \
     MIN(j.created_at) FILTER (WHERE j.status = 'pending' AND r.status <> 'running') AS oldest \
     FROM jobs j JOIN runs r ON r.run_id = j.run_id WHERE j.status IN ('pending', 'running')";

/// A new job or run id. Time-ordered (UUIDv7), so each insert lands at the
/// right edge of the id indexes rather than on a random leaf page: a batch of
/// admissions dirties, and its commit writes, a few pages instead of one per
/// admission per index. Ids are never a secret (a job is read only by its own
/// account), so the creation instant they carry gives nothing away.
pub(crate) fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// The job an admission creates at `now` (already truncated to the millisecond)
/// for `request`: pending, or running from the moment it joins a run already
/// under way.
pub(crate) fn admitted(
    job_id: uuid::Uuid,
    request: &crate::AdmissionRequest,
    now: chrono::DateTime<chrono::Utc>,
    run_running: bool,
) -> crate::Job {
    let (status, started_at) = if run_running {
        (kepler_core::JobStatus::Running, Some(now))
    } else {
        (kepler_core::JobStatus::Pending, None)
    };
    crate::Job {
        job_id,
        account_id: request.caller.account_id,
        domain: request.domain.as_str().to_owned(),
        status,
        created_at: now,
        started_at,
        finished_at: None,
        scored_at: None,
        failure_reason: None,
    }
}
