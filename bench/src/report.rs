//! The report: one Markdown table per section with notes under it, printed at the end of the run.

use std::fmt::Write as _;

/// One section of the report.
#[derive(Debug, Default)]
pub struct Section {
    /// The heading, e.g. `1. Hook dispatch`.
    pub title: String,
    /// What the figures are, printed above the table.
    pub intro: Vec<String>,
    /// Column headings.
    pub columns: Vec<String>,
    /// Table rows.
    pub rows: Vec<Vec<String>>,
    /// Remarks printed under the table (targets met or missed, skipped variants).
    pub notes: Vec<String>,
}

impl Section {
    /// A section with a title and columns.
    pub fn new(title: &str, columns: &[&str]) -> Self {
        Section {
            title: title.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            ..Section::default()
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Adds a line under the table.
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        eprintln!("  {note}");
        self.notes.push(note);
    }

    /// The section as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!("### {}\n\n", self.title);
        for line in &self.intro {
            let _ = writeln!(out, "{line}");
        }
        if !self.intro.is_empty() {
            out.push('\n');
        }
        if !self.rows.is_empty() {
            let _ = writeln!(out, "| {} |", self.columns.join(" | "));
            let rule: Vec<&str> = self.columns.iter().map(|_| "---").collect();
            let _ = writeln!(out, "| {} |", rule.join(" | "));
            for row in &self.rows {
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
            out.push('\n');
        }
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        out
    }
}

/// What machine and build the figures come from: the first lines of the report.
pub fn machine_header() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or_else(
            || "?".to_owned(),
            |kb| format!("{:.0}", kb / 1024.0 / 1024.0),
        );
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "rustc ?".to_owned());
    format!(
        "Machine: **{cores} cores** ({cpu}), {mem_gib} GiB RAM, {os}. Build: release, {rustc}, wasmtime 48.0.8.",
        os = std::env::consts::OS
    )
}

/// The 1-minute load average (`/proc/loadavg`): how busy the machine was with other work.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
