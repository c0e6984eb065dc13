//! A periodic log line per busy plugin: calls, failures, timeouts and latency since the server started,
//! so the log alone shows how plugins behave (the admin API and `/metrics` show the same live).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::registry::Registry;

/// How often the summary is logged: often enough to follow a problem from the log, rarely enough that
/// a busy server logs one line per plugin per minute.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// Logs a summary of every plugin that was called since the last one, every [`SUMMARY_INTERVAL`].
/// Runs until aborted.
pub async fn log_periodically(registry: Arc<Registry>) {
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut tick = tokio::time::interval(SUMMARY_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        let registry = registry.clone();
        let Ok(statuses) = tokio::task::spawn_blocking(move || registry.plugins_status()).await
        else {
            continue;
        };
        for s in statuses {
            // Only plugins that were called since the last line (a plugin never called is not busy).
            let before = seen.insert(s.name.clone(), s.calls).unwrap_or(0);
            if s.calls == before {
                continue;
            }
            tracing::info!(
                plugin = %s.name,
                state = ?s.state,
                calls = s.calls,
                failures = s.failures,
                timeouts = s.timeouts,
                before_hook_timeouts = s.before_hook_timeouts,
                p50_ms = s.latency_p50_ms.unwrap_or_default(),
                p99_ms = s.latency_p99_ms.unwrap_or_default(),
                log_lines_dropped = s.log_lines_dropped,
                log_bytes_dropped = s.log_bytes_dropped,
                "plugin statistics"
            );
        }
    }
}
