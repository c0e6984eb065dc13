//! Percentiles over samples, in microseconds.

use std::time::Duration;

/// Latency samples of one measurement.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    micros: Vec<f64>,
    /// Events that failed (their times are among the samples); with the first failure's message.
    pub failed: usize,
    /// Why the first failed event failed.
    pub first_failure: Option<String>,
}

impl Samples {
    /// Room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        Samples {
            micros: Vec::with_capacity(n),
            ..Samples::default()
        }
    }

    /// Samples given in microseconds.
    pub fn from_micros(micros: Vec<f64>) -> Self {
        Samples {
            micros,
            ..Samples::default()
        }
    }

    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        self.micros.push(d.as_secs_f64() * 1e6);
    }

    /// Adds `other`'s samples and failures to these.
    pub fn extend(&mut self, other: Samples) {
        self.micros.extend(other.micros);
        self.failed += other.failed;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// Whether there are none.
    #[allow(dead_code)]
    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// The `p`-th percentile (0..=100) in microseconds, nearest-rank; 0 without samples.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return 0.0;
        }
        let mut sorted = self.micros.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    /// The median in microseconds.
    pub fn p50(&self) -> f64 {
        self.percentile(50.0)
    }

    /// The 99th percentile in microseconds.
    pub fn p99(&self) -> f64 {
        self.percentile(99.0)
    }

    /// The raw samples in microseconds (the Extism host, which includes this file, prints them).
    #[allow(dead_code)]
    pub fn micros(&self) -> &[f64] {
        &self.micros
    }
}

/// `µs` with a precision that suits the size: `0.42`, `3.1`, `218`.
pub fn fmt_us(us: f64) -> String {
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 100.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

/// Milliseconds from microseconds, with a precision that suits the size.
pub fn fmt_ms(us: f64) -> String {
    let ms = us / 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// A ratio such as `7.3x`.
pub fn fmt_ratio(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.2}x")
    } else {
        format!("{r:.0}x")
    }
}
