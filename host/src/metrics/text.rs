//! The Prometheus text exposition format (version 0.0.4), written by hand: a family header (`# HELP`,
//! `# TYPE`) followed by its samples, one per line, label values escaped.

use std::fmt::{Display, Write};

use crate::plugins::stats::{HistogramSnapshot, LATENCY_BUCKETS};

/// The content type of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a family measures.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Only goes up (resets on restart).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, sum and count.
    Histogram,
}

/// A document being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts the family `name`.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape(value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// The samples of one histogram (`_bucket` per bound, cumulative, then `+Inf`, `_sum`, `_count`).
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (count, bound) in h.buckets.iter().zip(LATENCY_BUCKETS.iter()) {
            cumulative += count;
            let le = bound.to_string();
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative);
        }
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        with_le.push(("le", "+Inf"));
        self.sample(&bucket, &with_le, h.count());
        self.sample(&format!("{name}_sum"), labels, h.sum_seconds);
        self.sample(&format!("{name}_count"), labels, h.count());
    }

    /// The document.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::stats::Histogram;
    use std::time::Duration;

    #[test]
    fn families_samples_and_histograms_are_well_formed() {
        let mut e = Exposition::default();
        e.family("x_total", "Things.\nMore", Kind::Counter);
        e.sample("x_total", &[("a", "q\"uo\\te\n")], 3);
        let h = Histogram::default();
        h.observe(Duration::from_micros(3));
        h.observe(Duration::from_secs(20));
        e.family("d_seconds", "Durations.", Kind::Histogram);
        e.histogram("d_seconds", &[("p", "x")], &h.snapshot());
        let text = e.finish();
        assert!(text.starts_with("# HELP x_total Things.\\nMore\n# TYPE x_total counter\n"));
        assert!(
            text.contains("x_total{a=\"q\\\"uo\\\\te\\n\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{p=\"x\",le=\"0.0000025\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{p=\"x\",le=\"0.000005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{p=\"x\",le=\"10\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{p=\"x\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("d_seconds_count{p=\"x\"} 2\n"), "{text}");
    }
}
