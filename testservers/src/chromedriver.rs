//! A throwaway `chromedriver` on a free loopback port, for tests that drive headless Chromium through the
//! WebDriver protocol.
//!
//! [`Chromedriver::shared`] starts one per test binary; each browser session a test opens is a Chromium
//! process of its own, so tests in parallel do not share pages, cookies or storage.
//!
//! The driver runs under a guardian `sh` whose standard input is a pipe only this process holds (as for
//! PostgreSQL, see [`crate::postgres`]): when the pipe closes — drop, or the test process ending in any
//! way, SIGKILL included — the guardian stops the driver, which closes the browsers it started. The shared
//! driver lives in a `static` that is never dropped, so this is how it ends with its test binary.
//!
//! Readiness is `GET /status` answering `"ready": true`. The port is picked by binding port 0 and closing
//! it; a driver that loses the port to another process exits, and the start is tried once more.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::process::{find_program, free_port, tail};
use crate::{Error, REQUIRE_BROWSER_ENV, Result, or_skip};

const SERVER: &str = "chromedriver";

/// Names the `chromedriver` binary when it is not on `PATH`.
pub const CHROMEDRIVER_ENV: &str = "CHATHOOKS_CHROMEDRIVER";

/// Names the Chromium (or Chrome) binary when it is not on `PATH` as `chromium`.
pub const CHROMIUM_ENV: &str = "CHATHOOKS_CHROMIUM";

/// How long a start may take before it is a failure: about 50 ms here, the margin is for a busy machine.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `chromedriver`, stopped on drop (see the module docs).
#[derive(Debug)]
pub struct Chromedriver {
    /// The browser binary sessions should start.
    browser: PathBuf,
    /// Holds the driver's log; deleted on drop.
    dir: tempfile::TempDir,
    /// The loopback port it listens on.
    port: u16,
    /// The guardian shell, parent of the driver.
    guardian: Child,
    /// Our end of the guardian's standard input; closing it stops the driver.
    guardian_pipe: Option<ChildStdin>,
}

impl Chromedriver {
    /// Starts a driver of its own. [`Error::NotInstalled`] when `chromedriver` or Chromium is not on this
    /// machine.
    pub fn start() -> Result<Chromedriver> {
        let driver = find_driver()?;
        let browser = find_browser()?;
        let dir = tempfile::Builder::new()
            .prefix("chathooks-chromedriver-")
            .tempdir()
            .map_err(|source| io_error("creating a temp folder", source))?;
        let first = spawn_ready(&driver, dir.path());
        let (port, guardian, guardian_pipe) = match first {
            Ok(started) => started,
            Err(_) => spawn_ready(&driver, dir.path())?,
        };
        Ok(Chromedriver {
            browser,
            dir,
            port,
            guardian,
            guardian_pipe: Some(guardian_pipe),
        })
    }

    /// The driver shared by every test of this process, started on first use; `None` after printing why
    /// when Chromium or its driver is missing (a panic instead when `CHATHOOKS_REQUIRE_BROWSER` is set).
    pub fn shared() -> Option<&'static Chromedriver> {
        static SHARED: OnceLock<Option<Chromedriver>> = OnceLock::new();
        SHARED
            .get_or_init(|| or_skip(Chromedriver::start(), REQUIRE_BROWSER_ENV))
            .as_ref()
    }

    /// `http://127.0.0.1:<port>`, the WebDriver endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Chromium binary sessions should name in their `goog:chromeOptions.binary`.
    pub fn browser(&self) -> &Path {
        &self.browser
    }

    /// The end of the driver's log, for a failing test's message.
    pub fn log(&self) -> String {
        tail(&self.dir.path().join("chromedriver.log"), 4000)
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        drop(self.guardian_pipe.take());
        let _ = self.guardian.wait();
    }
}

fn find_driver() -> Result<PathBuf> {
    find(
        CHROMEDRIVER_ENV,
        &["chromedriver"],
        "apt-get install chromium-driver",
    )
}

fn find_browser() -> Result<PathBuf> {
    find(
        CHROMIUM_ENV,
        &["chromium", "chromium-browser", "google-chrome"],
        "apt-get install chromium",
    )
}

/// The program named by `$env`, else the first of `names` on `PATH` (or in `/usr/bin`).
fn find(env: &str, names: &[&str], install: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::NotInstalled {
                server: SERVER,
                detail: format!("{env}={} is not a file", path.display()),
            })
        };
    }
    names
        .iter()
        .find_map(|name| find_program(name, &["/usr/bin", "/usr/local/bin"]))
        .ok_or_else(|| Error::NotInstalled {
            server: SERVER,
            detail: format!(
                "none of {names:?} is on PATH nor named by ${env}; install it, e.g. `{install}`"
            ),
        })
}

/// Starts the guardian and the driver under it on a free port; waits until the driver is ready.
fn spawn_ready(driver: &Path, dir: &Path) -> Result<(u16, Child, ChildStdin)> {
    let port = free_port().map_err(|source| io_error("picking a free port", source))?;
    let log = dir.join("chromedriver.log");
    // The guardian: starts the driver, waits for its standard input to close, then stops the driver (and
    // so the browsers it started).
    let script = r#""$0" --port="$1" --allowed-ips=127.0.0.1 --log-path="$2" >/dev/null 2>&1 &
driver=$!
cat >/dev/null
kill "$driver" 2>/dev/null
wait "$driver" 2>/dev/null"#;
    let mut guardian = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(driver)
        .arg(port.to_string())
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|source| io_error("spawning its guardian", source))?;
    let pipe = guardian.stdin.take().ok_or_else(|| {
        io_error(
            "opening the guardian's pipe",
            std::io::ErrorKind::Other.into(),
        )
    })?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if is_ready(addr) {
            return Ok((port, guardian, pipe));
        }
        let exited = matches!(guardian.try_wait(), Ok(Some(_)));
        if exited || Instant::now() > deadline {
            drop(pipe);
            let _ = guardian.wait();
            return Err(Error::Failed {
                server: SERVER,
                step: format!("starting on 127.0.0.1:{port}"),
                detail: format!(
                    "not ready after {READY_TIMEOUT:?}\nlog:\n{}",
                    tail(&log, 2000)
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the driver on `addr` answers `GET /status` with `"ready": true`.
fn is_ready(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("\"ready\":true") || answer.contains("\"ready\": true")
}

fn io_error(step: &str, source: std::io::Error) -> Error {
    Error::Io {
        server: SERVER,
        step: step.to_owned(),
        source,
    }
}
