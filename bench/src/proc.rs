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

    /// Kills the process now (SIGKILL: what a crash looks like to everything it was connected to) and
    /// waits for it.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().context("killing a child process")?;
        self.child
            .wait()
            .context("waiting for a killed child process")?;
        Ok(())
    }

    /// Resident memory of the process in KiB (`VmRSS`), if readable.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid())
    }

    /// Resident memory of the process, all of it and its own, if readable.
    pub fn resident(&self) -> Option<Resident> {
        resident(self.pid())
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
    resident(pid).map(|r| r.total_kib)
}

/// A process's resident memory, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy)]
pub struct Resident {
    /// All of it (`VmRSS`), KiB. It counts the pages of the executable mapped in, which depend on how
    /// large the binary is and on the page cache (a binary just written maps more of them).
    pub total_kib: u64,
    /// The process's own (`RssAnon`), KiB: heap, stacks, plugin instances; what its work costs.
    pub private_kib: u64,
}

/// The resident memory of process `pid`, if readable.
pub fn resident(pid: u32) -> Option<Resident> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse().ok())
    };
    Some(Resident {
        total_kib: field("VmRSS:")?,
        private_kib: field("RssAnon:")?,
    })
}

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`): 100 on every Linux
/// architecture the benchmark runs on, whatever the kernel's own tick rate.
const TICKS_PER_SECOND: u64 = 100;

/// The CPU times of one process from `/proc/<pid>/stat`, in clock ticks.
struct StatTimes {
    /// Its parent's process id.
    ppid: u32,
    /// User + system time of the process itself.
    own: u64,
    /// User + system time of its children that have ended and been waited for.
    reaped_children: u64,
}

/// `/proc/<pid>/stat`'s parent and CPU times, if the process exists.
fn stat_times(pid: u32) -> Option<StatTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces); see proc(5).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(StatTimes {
        ppid: u32::try_from(field(1)?).ok()?,
        own: field(11)? + field(12)?,
        reaped_children: field(13)? + field(14)?,
    })
}

fn ticks(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

/// CPU time (user + system) process `pid` has used so far.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    stat_times(pid).map(|t| ticks(t.own))
}

/// CPU time used so far by process `pid` and its children, the live ones and those that ended (a
/// PostgreSQL server: the postmaster, its background processes and one backend per connection). A child
/// that ends between two readings moves from the live sum to the parent's reaped time, so differences
/// between readings stay right. Grandchildren that are still running are not counted.
pub fn tree_cpu_time(pid: u32) -> Option<Duration> {
    let parent = stat_times(pid)?;
    let children: u64 = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat_times)
        .filter(|t| t.ppid == pid)
        .map(|t| t.own + t.reaped_children)
        .sum();
    Some(ticks(parent.own + parent.reaped_children + children))
}

/// The process whose command line has every one of `words` among its arguments (the first found), e.g. the
/// nats-server started with `-p <port>`, whose handle does not expose its id.
pub fn find_by_args(words: &[&str]) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|raw| {
                let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
                words.iter().all(|w| args.contains(&w.as_bytes()))
            })
        })
}
