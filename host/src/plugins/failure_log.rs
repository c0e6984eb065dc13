//! Rate-limited warnings about one plugin's failures: the first failure is logged at once, then at most
//! one line per [`FAILURE_WARN_INTERVAL`], saying how many were not logged in between. A plugin that fails
//! on every message (a before-hook timing out under a flood) therefore writes a few lines a minute, while
//! its counters in the admin API and `/metrics` count every one.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Shortest time between two failure warnings of one plugin. Ten seconds lets an operator watching the
/// log see a failing plugin within seconds while a flood costs six lines a minute.
pub const FAILURE_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// One plugin's warning rate limit.
#[derive(Debug, Default)]
pub struct FailureLog {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_warned: Option<Instant>,
    /// Failures not logged since the last warning.
    suppressed: u64,
}

/// Whether to log a failure now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warn {
    /// Log it, saying that this many failures were not logged since the last warning.
    Now {
        /// Failures not logged since the last warning.
        suppressed: u64,
    },
    /// Do not log it (it is counted for the next warning).
    Quiet,
}

impl FailureLog {
    /// Records a failure at `now` and says whether to log it.
    pub fn admit(&self, now: Instant) -> Warn {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let due = s
            .last_warned
            .is_none_or(|at| now.saturating_duration_since(at) >= FAILURE_WARN_INTERVAL);
        if !due {
            s.suppressed += 1;
            return Warn::Quiet;
        }
        s.last_warned = Some(now);
        Warn::Now {
            suppressed: std::mem::take(&mut s.suppressed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_failures_is_logged_once_per_interval_with_the_count_left_out() {
        let (log, t0) = (FailureLog::default(), Instant::now());
        assert_eq!(log.admit(t0), Warn::Now { suppressed: 0 });
        for i in 1..=999 {
            assert_eq!(log.admit(t0 + Duration::from_millis(i)), Warn::Quiet);
        }
        let later = t0 + FAILURE_WARN_INTERVAL;
        assert_eq!(log.admit(later), Warn::Now { suppressed: 999 });
        assert_eq!(log.admit(later), Warn::Quiet);
        assert_eq!(
            log.admit(later + FAILURE_WARN_INTERVAL),
            Warn::Now { suppressed: 1 }
        );
    }
}
