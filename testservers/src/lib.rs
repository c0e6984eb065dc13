//! Throwaway PostgreSQL, NATS and WebDriver (chromedriver) servers for tests.
//!
//! ## Overview
//! Cluster mode keeps its state in PostgreSQL and fans live events out over NATS (`SCALE-OUT.md`), so its
//! tests need both servers running for real. This crate starts them the way the measured harness in
//! `SCALE-OUT.md` section 2.10 does, without systemd or root services:
//!
//! - [`Postgres::start`]: `initdb -N` into a temp folder (as the `postgres` user through `runuser` when
//!   the tests run as root, since `initdb` refuses root), then `pg_ctl -w start` listening **only on a
//!   Unix socket** in that folder: parallel test binaries never compete for a port. 0.6–1 s on an idle
//!   2-core machine, several seconds while builds share it (`initdb` is most of it).
//!   [`Postgres::shared`] starts one per test binary; each test takes a database of its own with
//!   [`Postgres::url_for_new_database`] (about 0.1 s).
//! - [`Nats::start`]: `nats-server -a 127.0.0.1 -p <free port>` as a child process, killed on drop;
//!   [`Nats::restart`] brings it back on the same port, for fault tests.
//! - [`Chromedriver::shared`]: one `chromedriver` per test binary on a free loopback port, for the web
//!   pages' tests in a real headless Chromium.
//!
//! ```no_run
//! let Some(pg) = chathooks_testservers::Postgres::shared() else { return };
//! let url = pg.url_for_new_database().expect("a fresh database");
//! // connect to `url` with tokio-postgres, run the code under test against it ...
//! ```
//!
//! ## When a server is not installed
//! `start` then returns [`Error::NotInstalled`], and [`Postgres::start_or_skip`] / [`Nats::start_or_skip`]
//! print why and return `None`, so a developer without PostgreSQL or NATS still runs every other test.
//! CI sets `CHATHOOKS_REQUIRE_POSTGRES=1` and `CHATHOOKS_REQUIRE_NATS=1`, which turn that skip into a
//! panic: a missing server there is a broken CI image, not a reason to pass. A server that is installed
//! but fails to start is always a panic in the `_or_skip` forms, with the server's log.
//!
//! ## Cleaning up
//! Drop (or `stop`) ends each server. A PostgreSQL cluster is also stopped when the test process ends
//! without dropping it — the shared instance lives in a `static`, whose destructor never runs, and a test
//! binary can be killed — by a small guardian shell started beside it that waits for the end of a pipe
//! the test process holds open; see [`postgres`].
//!
//! ## Layout
//! - [`postgres`]: [`Postgres`]; [`nats`]: [`Nats`]; [`chromedriver`]: [`Chromedriver`].
//! - `process`: finding binaries, running commands, free ports, random names.

pub mod chromedriver;
pub mod nats;
pub mod postgres;
mod process;

pub use chromedriver::Chromedriver;
pub use nats::Nats;
pub use postgres::Postgres;

/// Makes a missing PostgreSQL fail the tests instead of skipping them (`1` or `true`).
pub const REQUIRE_POSTGRES_ENV: &str = "CHATHOOKS_REQUIRE_POSTGRES";

/// Makes a missing `nats-server` fail the tests instead of skipping them (`1` or `true`).
pub const REQUIRE_NATS_ENV: &str = "CHATHOOKS_REQUIRE_NATS";

/// Makes a missing Chromium or `chromedriver` fail the tests instead of skipping them (`1` or `true`).
pub const REQUIRE_BROWSER_ENV: &str = "CHATHOOKS_REQUIRE_BROWSER";

/// Why a test server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server's binaries are not on this machine: tests that need it skip (see the crate docs).
    #[error("{server} is not installed here: {detail}")]
    NotInstalled {
        /// `PostgreSQL`, `nats-server` or `chromedriver`.
        server: &'static str,
        /// Where we looked and how to install it.
        detail: String,
    },
    /// A step failed although the server is installed.
    #[error("{server}: {step} failed: {detail}")]
    Failed {
        /// `PostgreSQL`, `nats-server` or `chromedriver`.
        server: &'static str,
        /// What we were doing (`initdb`, `pg_ctl start`, `CREATE DATABASE`, ...).
        step: String,
        /// The command's output or the server's log.
        detail: String,
    },
    /// The operating system refused something (a temp folder, spawning a process).
    #[error("{server}: {step}: {source}")]
    Io {
        /// `PostgreSQL`, `nats-server` or `chromedriver`.
        server: &'static str,
        /// What we were doing.
        step: String,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// The result of starting or using a test server.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether the environment variable `var` asks for the servers to be required.
fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The message a test skips with when `err` says the server is missing. Panics instead when the server is
/// missing but `require_var` is set, or when it is installed but failed.
fn skip_reason(err: Error, require_var: &str) -> String {
    match err {
        Error::NotInstalled { .. } if required(require_var) => {
            panic!("{require_var} is set, so this test may not skip: {err}")
        }
        Error::NotInstalled { .. } => {
            format!("skipping: {err} (set {require_var}=1 to make this an error)")
        }
        other => panic!("{other}"),
    }
}

/// The `_or_skip` forms' answer: the server, or `None` after printing why it is missing (see
/// [`skip_reason`] for when it panics).
fn or_skip<T>(started: Result<T>, require_var: &str) -> Option<T> {
    started
        .map_err(|err| eprintln!("{}", skip_reason(err, require_var)))
        .ok()
}
