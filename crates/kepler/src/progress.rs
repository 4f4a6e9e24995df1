//! The progress line `kepler score` draws on stderr (when it is a terminal)
//! while a cold run is in flight: a spinner, the job's status and the elapsed
//! time, redrawn between polls so the clock keeps moving.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kepler_client::{JobProgress, JobStatus};
use tokio::task::JoinHandle;

const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
const REDRAW: Duration = Duration::from_millis(120);

/// The last status the client reported, and when the wait began.
type Seen = Arc<Mutex<Option<(String, JobStatus, Instant)>>>;

/// A running progress line; [`Progress::finish`] erases it.
#[derive(Debug)]
pub struct Progress {
    seen: Seen,
    ticker: JoinHandle<()>,
}

impl Progress {
    /// Starts the redraw loop; it draws nothing until a job is reported.
    pub fn start() -> Progress {
        let seen: Seen = Arc::default();
        let shown = seen.clone();
        let ticker = tokio::spawn(async move {
            let mut frame = 0usize;
            loop {
                tokio::time::sleep(REDRAW).await;
                let current = shown.lock().unwrap_or_else(PoisonError::into_inner).clone();
                if let Some((domain, status, since)) = current {
                    let text = line(&domain, status, since.elapsed(), frame);
                    let mut stderr = std::io::stderr().lock();
                    let _ = write!(stderr, "\r{text}");
                    let _ = stderr.flush();
                    frame += 1;
                }
            }
        });
        Progress { seen, ticker }
    }

    /// The callback to give the client.
    pub fn observer(&self) -> impl Fn(&JobProgress) + Send + Sync + 'static {
        let seen = self.seen.clone();
        move |p: &JobProgress| {
            let since = Instant::now()
                .checked_sub(p.elapsed)
                .unwrap_or_else(Instant::now);
            *seen.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((p.domain.clone(), p.status, since));
        }
    }

    /// Stops redrawing and erases the line, so what follows starts clean.
    pub fn finish(self) {
        self.ticker.abort();
        let drawn = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        if drawn {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K");
            let _ = stderr.flush();
        }
    }
}

/// One frame of the line, e.g. `/ example.com  running   12s`.
fn line(domain: &str, status: JobStatus, elapsed: Duration, frame: usize) -> String {
    let spinner = FRAMES[frame % FRAMES.len()];
    format!(
        "{spinner} {domain}  {:<8} {:>4}s ",
        status.as_str(),
        elapsed.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_status_and_elapsed_seconds() {
        assert_eq!(
            line(
                "example.com",
                JobStatus::Running,
                Duration::from_millis(12_400),
                1
            ),
            "/ example.com  running    12s "
        );
        assert_eq!(
            line("example.com", JobStatus::Pending, Duration::ZERO, 4),
            "| example.com  pending     0s "
        );
    }
}
