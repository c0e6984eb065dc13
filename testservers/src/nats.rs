//! A throwaway `nats-server` on a free loopback port.
//!
//! Core NATS only (no `-js`): cluster mode uses it as an at-most-once bus (`SCALE-OUT.md` 2.5), and without
//! JetStream the server keeps nothing on disk and is ready in about 20 ms.
//!
//! The port is picked by binding port 0 and closing it, so another process can take it before the server
//! binds; the server then exits, and the first start tries once more with a new port. Readiness is the
//! server's `INFO` greeting carrying the unique name it was started with, so a greeting from some other
//! server that happens to hold the port is not taken for ours.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{find_program, free_port, random_suffix, tail};
use crate::{Error, REQUIRE_NATS_ENV, Result, or_skip};

const SERVER: &str = "nats-server";

/// Names the `nats-server` binary when it is neither on `PATH` nor in `/usr/sbin` or `/usr/local/bin`.
pub const NATS_SERVER_ENV: &str = "CHATHOOKS_NATS_SERVER";

/// How long a start may take before it is a failure: about 20 ms here, the margin is for a busy machine.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `nats-server`, killed on drop.
#[derive(Debug)]
pub struct Nats {
    /// The binary.
    program: PathBuf,
    /// Holds the server's log; deleted on drop.
    dir: tempfile::TempDir,
    /// The loopback port it listens on; kept across [`Nats::restart`].
    port: u16,
    /// The server process.
    child: Child,
}

impl Nats {
    /// Starts a server of its own on a free loopback port. [`Error::NotInstalled`] when `nats-server` is
    /// not on this machine.
    pub fn start() -> Result<Nats> {
        let program = find_nats_server()?;
        let dir = tempfile::Builder::new()
            .prefix("chathooks-nats-")
            .tempdir()
            .map_err(|source| io_error("creating a temp folder", source))?;
        let pick = || free_port().map_err(|source| io_error("picking a free port", source));
        let mut port = pick()?;
        // Once more with another port: someone may have bound the first between our probe and the server.
        let child = match spawn_ready(&program, dir.path(), port) {
            Ok(child) => child,
            Err(_) => {
                port = pick()?;
                spawn_ready(&program, dir.path(), port)?
            }
        };
        Ok(Nats {
            program,
            dir,
            port,
            child,
        })
    }

    /// [`Nats::start`], or `None` after printing why `nats-server` is missing; see the crate docs for
    /// `CHATHOOKS_REQUIRE_NATS`. Panics when it is installed but does not start.
    pub fn start_or_skip() -> Option<Nats> {
        or_skip(Nats::start(), REQUIRE_NATS_ENV)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL: what a crash looks like to its clients) and starts a new one on the same
    /// port, for tests of reconnecting clients.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.child = spawn_ready(&self.program, self.dir.path(), self.port)?;
        Ok(())
    }

    /// The end of the server's log, for a failing test's message.
    pub fn log(&self) -> String {
        tail(&self.dir.path().join("nats.log"), 4000)
    }

    /// Kills the server and deletes its log; what dropping does.
    pub fn stop(self) {}

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

fn find_nats_server() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(NATS_SERVER_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::NotInstalled {
                server: SERVER,
                detail: format!("{NATS_SERVER_ENV}={} is not a file", path.display()),
            })
        };
    }
    find_program(
        "nats-server",
        &["/usr/sbin", "/usr/local/bin", "/usr/local/sbin"],
    )
    .ok_or_else(|| Error::NotInstalled {
        server: SERVER,
        detail: format!(
            "no nats-server on PATH, in /usr/sbin or /usr/local/bin, nor named by \
                 ${NATS_SERVER_ENV}; install it, e.g. `apt-get install nats-server`"
        ),
    })
}

/// Starts `nats-server` on `port` and waits until it greets a client with the name it was given.
fn spawn_ready(program: &Path, dir: &Path, port: u16) -> Result<Child> {
    let name = format!("chathooks-test-{}", random_suffix());
    let log = dir.join("nats.log");
    let stderr = std::fs::File::create(dir.join("stderr.log"))
        .map_err(|source| io_error("creating its stderr file", source))?;
    let mut child = Command::new(program)
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-n",
            &name,
            "-l",
        ])
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|source| io_error("spawning", source))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(failed(dir, port, format!("it exited with {status}")));
        }
        if greets_as(addr, &name) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(
                dir,
                port,
                format!("not ready after {READY_TIMEOUT:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether the server on `addr` answers a connection with an `INFO` line naming `name`.
fn greets_as(addr: SocketAddr, name: &str) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok()
        && line.starts_with("INFO ")
        && line.contains(&format!("\"server_name\":\"{name}\""))
}

fn failed(dir: &Path, port: u16, what: String) -> Error {
    Error::Failed {
        server: SERVER,
        step: format!("starting on 127.0.0.1:{port}"),
        detail: format!(
            "{what}\nstderr:\n{}\nlog:\n{}",
            tail(&dir.join("stderr.log"), 2000),
            tail(&dir.join("nats.log"), 2000)
        ),
    }
}

fn io_error(step: &str, source: std::io::Error) -> Error {
    Error::Io {
        server: SERVER,
        step: step.to_owned(),
        source,
    }
}
