//! Child processes of the benchmark: this binary re-invoked with a subcommand (the chat server, the
//! webhook server, the load generators). Each is killed when its handle drops.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running child process whose stdout lines are read by a thread.
pub struct Child {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far (for error messages).
    seen: Vec<String>,
}

impl Child {
    /// Starts this binary with `args` and extra environment `envs`; stderr goes to `stderr_file` if given,
    /// else it is discarded.
    pub fn spawn_self_logged(
        args: &[&str],
        envs: &[(&str, &str)],
        stderr_file: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the benchmark binary")?;
        let mut command = Command::new(exe);
        command
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        match stderr_file {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?;
                command.stderr(file);
            }
            None => {
                command.stderr(Stdio::null());
            }
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting `chathooks-bench {}`", args.join(" ")))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Child {
            child,
            lines,
            seen: Vec::new(),
        })
    }

    /// Starts this binary with `args` and `envs`, stderr discarded.
    pub fn spawn_self(args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::spawn_self_logged(args, envs, None)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return Ok(rest.trim().to_owned());
                    }
                    self.seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!(
                        "no line starting with {prefix:?} within {timeout:?}; it printed: {:?}",
                        self.seen
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    bail!(
                        "the child exited ({status:?}) before printing {prefix:?}; it printed: {:?}",
                        self.seen
                    )
                }
            }
        }
    }

    /// Waits for the process to exit and returns its stdout lines not yet read.
    pub fn finish(mut self, timeout: Duration) -> anyhow::Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut out = std::mem::take(&mut self.seen);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => out.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!("the child did not finish in {timeout:?}")
                }
            }
        }
        let status = self.child.wait()?;
        if !status.success() {
            bail!("the child failed ({status}); it printed: {out:?}");
        }
        Ok(out)
    }

    /// Resident memory of the process in KiB (`VmRSS`), if readable.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
}
