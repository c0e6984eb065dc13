//! `chathooks migrate`: create or upgrade a database's schema without serving, and print its version.
//!
//! For PostgreSQL this is, for now, the only command that speaks to the server: serving from PostgreSQL
//! arrives once the storage seam is cut. Running it before starting (or upgrading) a cluster's nodes is
//! optional — each node will migrate at start under the same advisory lock — but it surfaces a wrong
//! setting or a refused schema before any node is up. For a SQLite file it does what `serve` does when it
//! opens the file, while holding the data folder's lock, so it cannot change the schema under a running
//! server.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

use crate::config::{CHAT_DB_FILE, DEFAULT_DATA_DIR};
use crate::store::data_lock::DataLock;
use crate::store::postgres::{self, PgPool, PgSetting, PoolOptions};
use crate::store::sqlite;
use crate::store::sqlite::migrations;

/// The `migrate` subcommand's flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MigrateArgs {
    /// The database: a PostgreSQL URL (`postgres://user:password@host:5432/chathooks`) or key-value
    /// string (`host=/run/postgresql dbname=chathooks user=chathooks`), or a SQLite file's path
    /// [default: <data-dir>/chat.db].
    // `--help` text, which clap prints as written: backticks around `<data-dir>` would show there.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, env = "CHATHOOKS_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// The data folder whose chat.db is migrated when --database is not given [default: ./data].
    #[arg(long, env = "CHATHOOKS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Migrates the database `args` name and prints its schema version to `out`.
pub fn migrate(args: &MigrateArgs, out: &mut impl Write) -> anyhow::Result<bool> {
    match args.database.as_deref() {
        Some(setting) if PgSetting::is_postgres(setting) => migrate_postgres(setting, out),
        Some(other) if other.contains("://") => anyhow::bail!(
            "unknown kind of database {:?}: give a postgres:// URL or a SQLite file's path",
            postgres::setting::redact(other)
        ),
        Some(path) => migrate_sqlite(Path::new(path), out),
        None => {
            let dir = args
                .data_dir
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_DATA_DIR));
            migrate_sqlite(&dir.join(CHAT_DB_FILE), out)
        }
    }
}

fn migrate_postgres(setting: &str, out: &mut impl Write) -> anyhow::Result<bool> {
    let setting = PgSetting::parse(setting)?;
    let shown = setting.redacted().to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let migrated = runtime.block_on(async {
        let options = PoolOptions {
            size: 1,
            ..PoolOptions::default()
        };
        let pool = PgPool::connect(setting, options).await?;
        postgres::migrate(&pool).await
    })?;
    writeln!(
        out,
        "PostgreSQL {shown}: schema version {}{}",
        migrated.to,
        was(migrated.from, migrated.to)
    )?;
    Ok(true)
}

fn migrate_sqlite(path: &Path, out: &mut impl Write) -> anyhow::Result<bool> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let _lock = DataLock::acquire(folder)?;
    let from = if path.exists() {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", path.display()))?;
        migrations::current_version(&conn)?
    } else {
        0
    };
    let db = sqlite::Db::open(path).with_context(|| format!("migrating {}", path.display()))?;
    let to = db.read(migrations::current_version)?;
    writeln!(
        out,
        "SQLite {}: schema version {to}{}",
        path.display(),
        was(from, to)
    )?;
    Ok(true)
}

fn was(from: i64, to: i64) -> String {
    if from == to {
        " (already up to date)".to_owned()
    } else {
        format!(" (migrated from {from})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &MigrateArgs) -> anyhow::Result<String> {
        let mut out = Vec::new();
        migrate(args, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn migrates_the_data_folders_sqlite_file_once() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let args = MigrateArgs {
            database: None,
            data_dir: Some(dir.path().to_path_buf()),
        };
        let latest = migrations::latest_version();
        let file = dir.path().join(CHAT_DB_FILE);
        let shown = file.display();
        assert_eq!(
            run(&args)?,
            format!("SQLite {shown}: schema version {latest} (migrated from 0)\n")
        );
        assert_eq!(
            run(&args)?,
            format!("SQLite {shown}: schema version {latest} (already up to date)\n")
        );
        Ok(())
    }

    #[test]
    fn migrates_a_postgres_database_named_by_url() -> anyhow::Result<()> {
        let Some(pg) = chathooks_testservers::Postgres::shared() else {
            return Ok(());
        };
        let url = pg.url_for_new_database()?;
        let args = MigrateArgs {
            database: Some(url.clone()),
            data_dir: None,
        };
        let latest = postgres::migrations::latest_version();
        assert_eq!(
            run(&args)?,
            format!("PostgreSQL {url}: schema version {latest} (migrated from 0)\n")
        );
        assert!(run(&args)?.ends_with("(already up to date)\n"));
        Ok(())
    }

    #[test]
    fn refuses_other_kinds_of_url_without_showing_their_password() {
        let args = MigrateArgs {
            database: Some("mysql://alice:s3cret@db/chat".to_owned()),
            data_dir: None,
        };
        let err = run(&args)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("unknown kind of database"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
