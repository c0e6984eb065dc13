//! The dispatcher's warnings, rate-limited per plugin: a failed after-hook delivery and its retry, a dead
//! letter, a delivery not queued because the plugin's backlog is full, deliveries given up because the
//! plugin stayed unloaded.
//!
//! These need an operator's attention, so they are warnings (visible at `RUST_LOG=warn`, the level
//! servers run at). A plugin failing on every event would otherwise write a line per event and attempt,
//! so per plugin the first warning is written at once and the next ones within
//! [`WARNING_INTERVAL`] are only counted; when the interval ends, one summary line says how many there
//! were, of which kind, and the last one. A plugin that keeps failing thus writes one line per interval;
//! one that failed once writes one line. Time comes from the dispatcher's clock (the round's `now`), so
//! tests drive it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::Millis;

/// How long after a plugin's warning its next ones are only counted, and how often the count is written.
/// A minute, like the periodic plugin statistics line: a plugin failing on every event costs one log line
/// a minute, and an operator reading the log learns of a new failure at once and of a lasting one within
/// the minute.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// What a warning is about (the summary counts each kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WarningKind {
    /// An attempt failed; a retry is scheduled.
    Retry,
    /// The last attempt failed; the delivery is a dead letter.
    DeadLettered,
    /// The plugin's backlog was full; the delivery went to the dead letters unattempted.
    BacklogFull,
    /// The plugin stayed unloaded past the grace period; its waiting deliveries went to the dead letters.
    Unloaded,
}

impl WarningKind {
    fn describe(self, n: u64) -> String {
        match self {
            WarningKind::Retry => format!("{n} failed attempts retried"),
            WarningKind::DeadLettered => {
                format!("{n} deliveries dead-lettered after their last attempt")
            }
            WarningKind::BacklogFull => format!("{n} deliveries dead-lettered: backlog full"),
            WarningKind::Unloaded => {
                format!("{n} times the waiting deliveries were given up: plugin not loaded")
            }
        }
    }
}

/// One plugin's warnings since its last line.
#[derive(Debug)]
struct Window {
    /// When the last line (a warning or a summary) was written.
    since: Millis,
    /// Warnings counted, not written, since then, by kind.
    suppressed: BTreeMap<WarningKind, u64>,
    /// The last of them.
    last: String,
}

/// Per-plugin rate limiting of the dispatcher's warnings (see the module docs).
#[derive(Debug)]
pub(super) struct Warnings {
    interval: Millis,
    windows: BTreeMap<String, Window>,
}

impl Default for Warnings {
    fn default() -> Self {
        Self::new(WARNING_INTERVAL)
    }
}

impl Warnings {
    /// Warnings at most one line per plugin per `interval` after the first.
    pub fn new(interval: Duration) -> Self {
        Warnings {
            interval: Millis::try_from(interval.as_millis()).unwrap_or(Millis::MAX),
            windows: BTreeMap::new(),
        }
    }

    /// Writes `message` about `plugin` as a warning now, unless one was written within the interval: then
    /// it is counted for the summary.
    pub fn warn(&mut self, plugin: &str, kind: WarningKind, now: Millis, message: String) {
        if let Some(window) = self.windows.get_mut(plugin) {
            *window.suppressed.entry(kind).or_default() += 1;
            window.last = message;
            return;
        }
        tracing::warn!(plugin, "{message}");
        self.windows.insert(
            plugin.to_owned(),
            Window {
                since: now,
                suppressed: BTreeMap::new(),
                last: String::new(),
            },
        );
    }

    /// Ends the intervals that are over at `now`: a plugin with warnings counted gets its summary line
    /// (and a new interval, so a lasting failure writes one line per interval); one without is forgotten,
    /// so its next warning is written at once.
    pub fn flush(&mut self, now: Millis) {
        self.summarize(now, false);
    }

    /// Writes every pending summary now, interval over or not (the dispatcher is stopping).
    pub fn finish(&mut self, now: Millis) {
        self.summarize(now, true);
    }

    fn summarize(&mut self, now: Millis, all: bool) {
        let interval = self.interval;
        self.windows.retain(|plugin, window| {
            if !all && now.saturating_sub(window.since) < interval {
                return true;
            }
            if window.suppressed.is_empty() {
                return false;
            }
            let total: u64 = window.suppressed.values().sum();
            let kinds: Vec<String> = window
                .suppressed
                .iter()
                .map(|(kind, n)| kind.describe(*n))
                .collect();
            let secs = now.saturating_sub(window.since) / 1000;
            tracing::warn!(
                plugin = plugin.as_str(),
                suppressed = total,
                "{total} more delivery warnings in the last {secs} s ({}); the last: {}",
                kinds.join(", "),
                window.last
            );
            window.since = now;
            window.suppressed.clear();
            window.last.clear();
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::test_log::capture_warnings;

    #[test]
    fn the_first_warning_is_written_then_one_summary_per_plugin_per_interval() {
        let lines = capture_warnings(|| {
            let mut w = Warnings::new(Duration::from_secs(60));
            w.warn("a", WarningKind::Retry, 0, "a failed 1".into());
            w.warn("b", WarningKind::Retry, 10, "b failed 1".into());
            for n in 2..=5 {
                w.warn("a", WarningKind::Retry, n * 1000, format!("a failed {n}"));
            }
            w.warn("a", WarningKind::DeadLettered, 6000, "a dead".into());
            w.flush(59_999);
            w.flush(60_000);
            w.flush(60_010);
            // a keeps failing: counted in a new interval; b was quiet: its next warning is written.
            w.warn("a", WarningKind::Retry, 61_000, "a failed 6".into());
            w.warn("b", WarningKind::Retry, 61_000, "b failed 2".into());
            w.flush(120_000);
            w.flush(180_000);
            w.warn("a", WarningKind::Retry, 180_001, "a failed 7".into());
            w.warn("a", WarningKind::Retry, 180_002, "a failed 8".into());
            w.finish(180_003);
        });
        assert_eq!(lines.len(), 7, "{lines:#?}");
        assert!(lines[0].contains("a failed 1"), "{}", lines[0]);
        assert!(lines[1].contains("b failed 1"), "{}", lines[1]);
        assert!(
            lines[2].contains("5 more delivery warnings in the last 60 s")
                && lines[2].contains("4 failed attempts retried")
                && lines[2].contains("1 deliveries dead-lettered after their last attempt")
                && lines[2].contains("the last: a dead"),
            "{}",
            lines[2]
        );
        assert!(lines[3].contains("b failed 2"), "{}", lines[3]);
        assert!(
            lines[4].contains("1 more delivery warnings") && lines[4].contains("a failed 6"),
            "{}",
            lines[4]
        );
        assert!(
            lines[5].contains("a failed 7"),
            "written at once after a quiet interval"
        );
        assert!(
            lines[6].contains("1 more delivery warnings in the last 0 s")
                && lines[6].contains("a failed 8"),
            "what was held back is written on stopping: {}",
            lines[6]
        );
    }
}
