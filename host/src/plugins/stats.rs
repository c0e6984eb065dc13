//! Call statistics per plugin and hook: counts and latency histograms, lock-free on the call path (a few
//! atomic increments per call). The admin API reads p50/p99 from them; `/metrics` exports them as
//! Prometheus counters and histograms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::hooks::Hook;

/// Upper bounds of the latency buckets, in seconds. A warm Rust hook takes a few microseconds, an
/// interpreter's tens to hundreds; budgets go up to seconds. Roughly 1-2.5-5 steps keep a quantile read
/// from the buckets within a factor of about two of the truth over that whole range.
pub const LATENCY_BUCKETS: [f64; 21] = [
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
];

/// Number of hooks, for per-hook arrays.
const HOOKS: usize = Hook::ALL.len();

/// A latency histogram with [`LATENCY_BUCKETS`] (plus one bucket above the last bound).
#[derive(Debug)]
pub struct Histogram {
    /// Non-cumulative counts per bucket; the last is "above every bound".
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// Sum of observations in nanoseconds.
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

/// A histogram's counts at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Non-cumulative counts per bucket of [`LATENCY_BUCKETS`], then the overflow bucket.
    pub buckets: Vec<u64>,
    /// Sum of observations in seconds.
    pub sum_seconds: f64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let index = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum_seconds: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64(),
        }
    }
}

impl HistogramSnapshot {
    /// An empty snapshot, to add others into.
    pub fn empty() -> Self {
        HistogramSnapshot {
            buckets: vec![0; LATENCY_BUCKETS.len() + 1],
            sum_seconds: 0.0,
        }
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &HistogramSnapshot) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum_seconds += other.sum_seconds;
    }

    /// The observations made after `earlier` (a snapshot of the same histogram taken before).
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self
                .buckets
                .iter()
                .zip(earlier.buckets.iter().chain(std::iter::repeat(&0)))
                .map(|(now, before)| now.saturating_sub(*before))
                .collect(),
            sum_seconds: (self.sum_seconds - earlier.sum_seconds).max(0.0),
        }
    }

    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The `q` quantile (0..=1) in seconds, interpolated linearly inside its bucket as Prometheus'
    /// `histogram_quantile` does; `None` without observations. Past the last bound it answers the last
    /// bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, count) in self.buckets.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let reached = (below + count) as f64;
            if *count > 0 && reached >= rank {
                let Some(upper) = LATENCY_BUCKETS.get(i) else {
                    return LATENCY_BUCKETS.last().copied();
                };
                let lower = if i == 0 { 0.0 } else { LATENCY_BUCKETS[i - 1] };
                #[allow(clippy::cast_precision_loss)]
                let within = (rank - below as f64) / *count as f64;
                return Some(lower + (upper - lower) * within);
            }
            below += count;
        }
        LATENCY_BUCKETS.last().copied()
    }
}

/// Counts and latency of one hook of one plugin.
#[derive(Debug, Default)]
pub struct HookStats {
    /// Calls made (not counting calls refused by the circuit breaker).
    pub calls: AtomicU64,
    /// Calls that failed: trap, timeout, memory cap, oversized answer, after-hook `err`.
    pub failures: AtomicU64,
    /// The failures that ran out of time.
    pub timeouts: AtomicU64,
    /// How long calls took, failed ones included.
    pub latency: Histogram,
}

/// Statistics of one plugin (every version of it), per hook.
#[derive(Debug)]
pub struct PluginStats {
    hooks: [HookStats; HOOKS],
    last_error: Mutex<Option<String>>,
}

impl Default for PluginStats {
    fn default() -> Self {
        PluginStats {
            hooks: std::array::from_fn(|_| HookStats::default()),
            last_error: Mutex::new(None),
        }
    }
}

/// Totals over every hook of a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsTotals {
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Calls that timed out.
    pub timeouts: u64,
    /// Latency of every call.
    pub latency: HistogramSnapshot,
}

impl PluginStats {
    /// The statistics of `hook`.
    pub fn hook(&self, hook: Hook) -> &HookStats {
        let index = Hook::ALL.iter().position(|h| *h == hook).unwrap_or(0);
        &self.hooks[index]
    }

    /// Records a call to `hook` that took `took`.
    pub fn record_call(&self, hook: Hook, took: Duration) {
        let stats = self.hook(hook);
        stats.calls.fetch_add(1, Ordering::Relaxed);
        stats.latency.observe(took);
    }

    /// Records that a call to `hook` failed with `error`.
    pub fn record_failure(&self, hook: Hook, error: String, timeout: bool) {
        let stats = self.hook(hook);
        stats.failures.fetch_add(1, Ordering::Relaxed);
        if timeout {
            stats.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    /// The last failure's message.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sums over every hook.
    pub fn totals(&self) -> StatsTotals {
        let mut totals = StatsTotals {
            calls: 0,
            failures: 0,
            timeouts: 0,
            latency: HistogramSnapshot::empty(),
        };
        for stats in &self.hooks {
            totals.calls += stats.calls.load(Ordering::Relaxed);
            totals.failures += stats.failures.load(Ordering::Relaxed);
            totals.timeouts += stats.timeouts.load(Ordering::Relaxed);
            totals.latency.add(&stats.latency.snapshot());
        }
        totals
    }

    /// Timeouts of the hooks of one kind (before-hooks: messages that went through unfiltered or were
    /// rejected because the filter ran out of time).
    pub fn timeouts_of(&self, kind: super::hooks::HookKind) -> u64 {
        Hook::ALL
            .iter()
            .zip(&self.hooks)
            .filter(|(h, _)| h.kind() == kind)
            .map(|(_, s)| s.timeouts.load(Ordering::Relaxed))
            .sum()
    }

    /// Each hook that has been called, with its statistics.
    pub fn called_hooks(&self) -> impl Iterator<Item = (Hook, &HookStats)> {
        Hook::ALL
            .iter()
            .copied()
            .zip(self.hooks.iter())
            .filter(|(_, s)| s.calls.load(Ordering::Relaxed) > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let h = Histogram::default();
        assert_eq!(h.snapshot().quantile(0.5), None);
        for _ in 0..98 {
            h.observe(Duration::from_micros(3));
        }
        h.observe(Duration::from_millis(40));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count(), 100);
        let p50 = s.quantile(0.5).unwrap_or_default();
        assert!((0.000_002_5..=0.000_005).contains(&p50), "{p50}");
        let p99 = s.quantile(0.99).unwrap_or_default();
        assert!((0.025..=0.05).contains(&p99), "{p99}");
        assert_eq!(s.quantile(1.0), Some(10.0));
        assert!((s.sum_seconds - 60.04).abs() < 0.01);
    }

    #[test]
    fn since_counts_only_the_later_observations() {
        let h = Histogram::default();
        for _ in 0..100 {
            h.observe(Duration::from_micros(3));
        }
        let before = h.snapshot();
        assert_eq!(h.snapshot().since(&before).count(), 0);
        assert_eq!(h.snapshot().since(&before).quantile(0.5), None);
        // A slow interval after many fast calls reads as slow, not as the all-time median.
        h.observe(Duration::from_millis(40));
        h.observe(Duration::from_millis(40));
        let later = h.snapshot().since(&before);
        assert_eq!(later.count(), 2);
        let p50 = later.quantile(0.5).unwrap_or_default();
        assert!((0.025..=0.05).contains(&p50), "{p50}");
        assert!(
            (later.sum_seconds - 0.08).abs() < 0.001,
            "{}",
            later.sum_seconds
        );
        // An earlier snapshot with fewer buckets (or a reset) never underflows.
        let short = HistogramSnapshot {
            buckets: vec![500],
            sum_seconds: 1000.0,
        };
        let odd = h.snapshot().since(&short);
        assert_eq!(odd.buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!(odd.sum_seconds, 0.0);
    }
}
