//! One `chathooks serve` child process of a test cluster: started with the cluster's flags, its stdout and
//! stderr captured line by line in memory (cases read which node ran a hook from the plugins' log lines),
//! and controlled like an operator or a crash would: SIGKILL, SIGSTOP/SIGCONT, a restart with the same
//! node id and data folder. Dropping it kills the process, so a failing case leaves nothing running.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::wait::{PATIENCE, must};

/// Prefix of the line `chathooks serve` prints on stdout once it listens.
const LISTENING: &str = "chathooks listening on ";

/// A node of the test cluster.
pub struct Node {
    /// Its `--node-id` (`n1`, `n2`, ...).
    pub id: String,
    /// The `serve` arguments, kept for [`Node::restart`].
    args: Vec<OsString>,
    /// The running process; `None` after [`Node::kill`].
    child: Option<Child>,
    /// `http://127.0.0.1:<port>` of the current process (a restart binds a new port).
    pub base: String,
    /// Every line it printed on stdout and stderr, across restarts, in the order read.
    lines: Arc<Mutex<Vec<String>>>,
    /// The HTTP client the cases use for this node.
    pub http: reqwest::Client,
}

impl Node {
    /// Starts the process without waiting for it to listen; [`Node::wait_listening`] does that, so that
    /// several nodes start at once.
    pub fn spawn(id: &str, args: Vec<OsString>) -> Node {
        let http = must(
            reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build(),
            "an HTTP client",
        );
        let mut node = Node {
            id: id.to_owned(),
            args,
            child: None,
            base: String::new(),
            lines: Arc::default(),
            http,
        };
        node.launch();
        node
    }

    /// Waits for the listening line of the process started last and records its address; panics with the
    /// node's output when it exits or does not listen in time.
    pub fn wait_listening(&mut self) {
        let deadline = std::time::Instant::now() + PATIENCE * 2;
        loop {
            if let Some(base) = self.listening_since_start() {
                self.base = base;
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "node {} exited with {status} before listening:\n{}",
                    self.id,
                    self.tail(40)
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {} did not listen within {:?}:\n{}",
                self.id,
                PATIENCE * 2,
                self.tail(40)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address in the listening line printed since the last start, if any.
    fn listening_since_start(&self) -> Option<String> {
        let marker = format!("-- {} started", self.id);
        self.lines()
            .iter()
            .rev()
            .take_while(|line| !line.starts_with(&marker))
            .find_map(|line| line.strip_prefix(LISTENING))
            .map(|addr| {
                let addr = addr.trim();
                if addr.starts_with("http://") {
                    addr.to_owned()
                } else {
                    format!("http://{addr}")
                }
            })
    }

    /// Spawns the process and the threads that copy its output into `lines`.
    fn launch(&mut self) {
        let mut child = must(
            Command::new(env!("CARGO_BIN_EXE_chathooks"))
                .arg("serve")
                .args(&self.args)
                // Plugin log lines are `info`; no colours, so that lines can be matched.
                .env("RUST_LOG", "info")
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn(),
            "spawn chathooks serve",
        );
        // [`Node::wait_listening`] looks for a listening line printed after this mark.
        self.lines()
            .push(format!("-- {} started (pid {})", self.id, child.id()));
        if let Some(out) = child.stdout.take() {
            self.copy_lines(out);
        }
        if let Some(err) = child.stderr.take() {
            self.copy_lines(err);
        }
        self.base.clear();
        self.child = Some(child);
    }

    /// Copies `stream` line by line into `lines` until it ends.
    fn copy_lines(&self, stream: impl Read + Send + 'static) {
        let lines = Arc::clone(&self.lines);
        let (started, ready) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let _ = started.send(());
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let _ = ready.recv();
    }

    /// Every line the node printed so far (all its runs).
    pub fn lines(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lines containing `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.lines()
            .iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }

    /// The last `n` lines, for a failure message.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        let start = lines.len().saturating_sub(n);
        lines[start..].join("\n")
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running (not killed, not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// SIGKILL: a crash, as the rest of the cluster sees it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.lines().push(format!("-- {} killed", self.id));
        }
    }

    /// SIGSTOP: a hung process (its sockets stay open, it answers nothing).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Node::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("node {} is not running", self.id));
        let status = must(
            Command::new("kill")
                .args([signal, &pid.to_string()])
                .status(),
            "run kill",
        );
        assert!(status.success(), "kill {signal} {pid} failed: {status}");
    }

    /// Kills the process if it runs, then starts it again with the same node id, data folder and flags,
    /// and waits until it listens (on a new port).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
        self.wait_listening();
    }

    /// `<base><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `ws://127.0.0.1:<port>`.
    pub fn ws_base(&self) -> String {
        self.base.replacen("http://", "ws://", 1)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused process dies from SIGKILL too.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
