//! Where section 2's servers keep their data: SQLite files in each server's data folder (what `chathooks
//! serve` does by default), or PostgreSQL, single node (`chathooks serve --database postgres://...`), in a
//! throwaway cluster the benchmark starts once ([`Cluster`]) with a fresh database for every server.
//!
//! The cluster is `chathooks_testservers::Postgres`, the one the tests use: `initdb` into a temp folder,
//! listening only on a Unix socket there, `fsync`, `synchronous_commit` and `full_page_writes` off, stopped
//! and deleted when the benchmark ends however it ends. The report says what `fsync=off` flatters.

use crate::proc;
use anyhow::Context;
use chathooks_testservers::{Error, Postgres};
use std::time::Duration;

/// A chat database backend section 2 can run its servers on (`--backends sqlite,postgres`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// SQLite files in the server's data folder: `chathooks serve` without `--database`.
    Sqlite,
    /// PostgreSQL, single node: `chathooks serve --database postgres://...`.
    Postgres,
}

impl Backend {
    /// Every backend, in the order they run and are reported.
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// The throwaway PostgreSQL cluster of section 2; stopped and deleted on drop.
pub struct Cluster {
    pg: Postgres,
    /// `SHOW server_version`, for the report.
    version: String,
}

/// Whether the PostgreSQL runs can happen.
pub enum Availability {
    /// The cluster is running.
    Ready(Cluster),
    /// Why not, as the report's row says it (`skipped: PostgreSQL is not installed here: ...`).
    Skipped(String),
}

impl Cluster {
    /// Starts the cluster (a few seconds, `initdb` most of it); [`Availability::Skipped`] when PostgreSQL is
    /// not installed or does not start, so that the SQLite runs still happen.
    pub fn start() -> Availability {
        eprintln!("  starting a throwaway PostgreSQL cluster (chathooks-testservers)");
        let started = Postgres::start().map_err(|err| match err {
            Error::NotInstalled { .. } => format!("skipped: {err}"),
            other => format!("skipped: PostgreSQL did not start: {other}"),
        });
        let cluster = started.and_then(|pg| {
            let version = pg
                .psql("postgres", "SHOW server_version")
                .map_err(|err| format!("skipped: PostgreSQL does not answer: {err}"))?;
            Ok(Cluster {
                version: version.trim().to_owned(),
                pg,
            })
        });
        match cluster {
            Ok(cluster) => Availability::Ready(cluster),
            Err(why) => {
                eprintln!("  {why}");
                Availability::Skipped(why)
            }
        }
    }

    /// The server's version, e.g. `15.14 (Debian 15.14-0+deb12u1)`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// A new empty database; its `postgres://` URL (the socket folder percent-encoded as its host).
    pub fn new_database(&self) -> anyhow::Result<String> {
        self.pg
            .url_for_new_database()
            .context("creating a database in the throwaway PostgreSQL cluster")
    }

    /// CPU time the cluster has used so far: the postmaster and every process it started (a backend per
    /// connection, the WAL writer, the checkpointer, autovacuum).
    pub fn cpu_time(&self) -> Option<Duration> {
        proc::tree_cpu_time(self.pg.server_pid().ok()?)
    }
}

/// Where one run's server keeps its data.
#[derive(Clone, Copy)]
pub enum Store<'a> {
    /// In its data folder.
    Sqlite,
    /// In a fresh database of the cluster.
    Postgres(&'a Cluster),
}

impl Store<'_> {
    /// Which backend this is.
    pub fn backend(self) -> Backend {
        match self {
            Store::Sqlite => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// The `--database` of a new server: `None` for SQLite (the data folder's files), a new database's
    /// URL for PostgreSQL.
    pub fn new_database(self) -> anyhow::Result<Option<String>> {
        match self {
            Store::Sqlite => Ok(None),
            Store::Postgres(cluster) => cluster.new_database().map(Some),
        }
    }

    /// CPU time used so far by a database server outside the chat server's process: `None` for SQLite,
    /// which runs inside it.
    pub fn cpu_time(self) -> Option<Duration> {
        match self {
            Store::Sqlite => None,
            Store::Postgres(cluster) => cluster.cpu_time(),
        }
    }
}
