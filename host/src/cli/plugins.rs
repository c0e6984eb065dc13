//! `chathooks plugins push|remove|list --database postgres://...`: manage a cluster's plugin catalog
//! (SCALE-OUT.md 2.8), from CI or an operator's machine, without a running node.
//!
//! `push` takes a `.wasm` file, or a folder whose every `.wasm` goes, each with the `<name>.toml` manifest
//! beside it if there is one. Every file is checked first as the loader would check it (the manifest
//! parses, the bytes are a component of our WIT): one bad file and nothing is pushed. The catalog is
//! content-addressed, so pushing what it already has changes nothing. With `--nats` the nodes are poked
//! and load the change at once; without it they notice within their poll interval
//! ([`POLL_EVERY`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cluster::catalog::POLL_EVERY;
use crate::cluster::upload::{Upload, read_and_check};
use crate::config::cluster::{DEFAULT_CLUSTER_NAME, check_name};
use crate::store::postgres::catalog::{self, Put};
use crate::store::postgres::{PgPool, PgSetting, PoolOptions};

/// Where the catalog is: the database, the cluster, and optionally NATS to poke the nodes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CatalogArgs {
    /// The cluster's PostgreSQL database (`postgres://user:password@host:5432/chathooks`, or a
    /// key-value string).
    #[arg(long, env = "CHATHOOKS_DATABASE", hide_env_values = true)]
    pub database: String,
    /// The cluster's name [default: chathooks].
    #[arg(long, env = "CHATHOOKS_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// NATS servers (comma-separated): tell the nodes to look at the catalog now, rather than at their
    /// next poll.
    #[arg(long, env = "CHATHOOKS_NATS", value_delimiter = ',')]
    pub nats: Vec<String>,
}

/// The `plugins` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum PluginsCommand {
    /// Check and push a plugin (`x.wasm`, with `x.toml` beside it if any), or every plugin of a folder,
    /// to the cluster's catalog; every node then loads it.
    Push {
        /// A `.wasm` file or a folder of them.
        path: PathBuf,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
    /// Remove a plugin from the cluster's catalog; every node unloads it.
    Remove {
        /// The plugin's name.
        name: String,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
    /// List the cluster's catalog: name, SHA-256, generation, size.
    List {
        #[command(flatten)]
        catalog: CatalogArgs,
    },
}

/// Runs a `plugins` subcommand, printing what it did to `out`. Returns whether it succeeded.
pub fn plugins(command: &PluginsCommand, out: &mut impl Write) -> anyhow::Result<bool> {
    let args = match command {
        PluginsCommand::Push { catalog, .. }
        | PluginsCommand::Remove { catalog, .. }
        | PluginsCommand::List { catalog } => catalog,
    };
    let cluster = args
        .cluster_name
        .clone()
        .unwrap_or_else(|| DEFAULT_CLUSTER_NAME.to_owned());
    check_name("cluster_name", &cluster)?;
    // Checked before connecting: a bad file is refused even when the database is away.
    let uploads = match command {
        PluginsCommand::Push { path, .. } => check_all(path)?,
        _ => Vec::new(),
    };
    let setting = PgSetting::parse(&args.database)?;
    let shown = setting.redacted().to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let options = PoolOptions {
            size: 1,
            ..PoolOptions::default()
        };
        let pool = PgPool::connect(setting, options).await?;
        crate::store::postgres::migrate(&pool).await?;
        let changed = match command {
            PluginsCommand::Push { .. } => push(&pool, &cluster, &uploads, out).await?,
            PluginsCommand::Remove { name, .. } => {
                if catalog::remove(&pool, &cluster, name).await? {
                    writeln!(out, "removed {name} from cluster {cluster} ({shown})")?;
                    true
                } else {
                    writeln!(
                        out,
                        "{name} is not in cluster {cluster}'s catalog ({shown})"
                    )?;
                    return Ok(false);
                }
            }
            PluginsCommand::List { .. } => {
                list(&pool, &cluster, out).await?;
                false
            }
        };
        if changed {
            poke(&args.nats, &cluster, out).await?;
        }
        Ok(true)
    })
}

/// Reads and checks `path` (a `.wasm` file or a folder of them), all or nothing.
fn check_all(path: &Path) -> anyhow::Result<Vec<Upload>> {
    let files = if path.is_dir() {
        let files = crate::plugins::reload::wasm_files(path)
            .with_context(|| format!("reading the folder {}", path.display()))?;
        anyhow::ensure!(!files.is_empty(), "{} holds no .wasm files", path.display());
        files
    } else {
        anyhow::ensure!(
            path.extension().is_some_and(|x| x == "wasm"),
            "{} is not a .wasm file (a plugin is `<name>.wasm`, its manifest `<name>.toml` beside it)",
            path.display()
        );
        vec![path.to_path_buf()]
    };
    let (runtime, _, _) = super::tool_runtime()?;
    let mut uploads = Vec::new();
    let mut refused = Vec::new();
    for file in files {
        match read_and_check(&runtime, &file) {
            Ok(upload) => uploads.push(upload),
            Err(e) => refused.push(e.to_string()),
        }
    }
    anyhow::ensure!(
        refused.is_empty(),
        "nothing was pushed: {}",
        refused.join("; ")
    );
    Ok(uploads)
}

async fn push(
    pool: &PgPool,
    cluster: &str,
    uploads: &[Upload],
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let mut changed = false;
    for upload in uploads {
        let put = catalog::put(
            pool,
            cluster,
            &upload.name,
            &upload.wasm,
            upload.manifest.as_deref(),
        )
        .await
        .with_context(|| format!("pushing {}", upload.name))?;
        let what = match put {
            Put::Added { .. } => "added",
            Put::Updated { .. } => "updated",
            Put::Unchanged { .. } => "unchanged",
        };
        changed |= put.changed();
        writeln!(
            out,
            "{}: {what} in cluster {cluster} (sha256 {}, generation {})",
            upload.name,
            upload.sha256,
            put.generation()
        )?;
    }
    Ok(changed)
}

async fn list(pool: &PgPool, cluster: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let entries = catalog::list(pool, cluster).await?;
    if entries.is_empty() {
        writeln!(out, "cluster {cluster}'s catalog is empty")?;
    }
    for e in entries {
        let manifest = if e.manifest.is_some() {
            " +manifest"
        } else {
            ""
        };
        writeln!(
            out,
            "{}  {}  generation {}  {} bytes{manifest}",
            e.name, e.sha256, e.generation, e.size
        )?;
    }
    Ok(())
}

/// Pokes the nodes through NATS when servers were given; says when they will notice otherwise.
async fn poke(nats: &[String], cluster: &str, out: &mut impl Write) -> anyhow::Result<()> {
    if nats.is_empty() {
        writeln!(
            out,
            "nodes load the change within {POLL_EVERY:?} (give --nats to tell them at once)"
        )?;
        return Ok(());
    }
    let servers = nats.join(",");
    let client = async_nats::connect(&servers)
        .await
        .with_context(|| format!("connecting to NATS at {servers} (the catalog was changed)"))?;
    crate::cluster::catalog::poke(&client, cluster).await;
    writeln!(out, "nodes told through NATS")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::chat::testkit::fixture;
    use crate::plugins::cache::content_hash;

    fn run(command: &PluginsCommand) -> anyhow::Result<String> {
        let mut out = Vec::new();
        plugins(command, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    fn catalog_args(database: &str) -> CatalogArgs {
        CatalogArgs {
            database: database.to_owned(),
            cluster_name: Some("blue".to_owned()),
            nats: Vec::new(),
        }
    }

    #[test]
    fn pushes_a_compiled_plugin_with_its_manifest_lists_and_removes_it() -> anyhow::Result<()> {
        let Some(pg) = chathooks_testservers::Postgres::shared() else {
            return Ok(());
        };
        let url = pg.url_for_new_database()?;
        let dir = tempfile::tempdir()?;
        let wasm = dir.path().join("echo.wasm");
        std::fs::copy(fixture("only_sent").wasm, &wasm)?;
        std::fs::write(dir.path().join("echo.toml"), "priority = 2\n")?;
        let hash = content_hash(&std::fs::read(&wasm)?);
        let push = PluginsCommand::Push {
            path: dir.path().to_path_buf(),
            catalog: catalog_args(&url),
        };
        let out = run(&push)?;
        assert!(
            out.starts_with(&format!("echo: added in cluster blue (sha256 {hash}")),
            "{out}"
        );
        assert!(run(&push)?.starts_with("echo: unchanged"));

        let list = PluginsCommand::List {
            catalog: catalog_args(&url),
        };
        let out = run(&list)?;
        assert!(
            out.starts_with(&format!("echo  {hash}  generation ")),
            "{out}"
        );
        assert!(out.trim_end().ends_with("+manifest"), "{out}");

        let remove = PluginsCommand::Remove {
            name: "echo".to_owned(),
            catalog: catalog_args(&url),
        };
        assert!(run(&remove)?.starts_with("removed echo from cluster blue"));
        assert!(run(&list)?.contains("catalog is empty"));
        let mut out = Vec::new();
        assert!(
            !plugins(&remove, &mut out)?,
            "a second removal reports failure"
        );
        Ok(())
    }

    #[test]
    fn refuses_a_file_that_is_not_a_component_and_pushes_nothing() -> anyhow::Result<()> {
        let Some(pg) = chathooks_testservers::Postgres::shared() else {
            return Ok(());
        };
        let url = pg.url_for_new_database()?;
        let dir = tempfile::tempdir()?;
        std::fs::copy(fixture("only_sent").wasm, dir.path().join("good.wasm"))?;
        std::fs::write(dir.path().join("garbage.wasm"), b"this is not wasm")?;
        let err = run(&PluginsCommand::Push {
            path: dir.path().to_path_buf(),
            catalog: catalog_args(&url),
        })
        .map(|out| format!("pushed: {out}"))
        .unwrap_or_else(|e| format!("{e:#}"));
        assert!(err.starts_with("nothing was pushed: "), "{err}");
        assert!(
            err.contains("garbage.wasm is not a plugin this server can load"),
            "{err}"
        );
        let listed = run(&PluginsCommand::List {
            catalog: catalog_args(&url),
        })?;
        assert!(listed.contains("catalog is empty"), "{listed}");
        Ok(())
    }

    #[test]
    fn refuses_a_bad_manifest_and_a_file_that_is_not_wasm_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("echo.wasm");
        std::fs::copy(fixture("only_sent").wasm, &wasm).unwrap();
        std::fs::write(dir.path().join("echo.toml"), "priority = \"high\"\n").unwrap();
        // No database answers at this address: the refusal comes first.
        let unreachable = catalog_args("postgres://nobody@127.0.0.1:1/none");
        let err = |path: &Path| {
            run(&PluginsCommand::Push {
                path: path.to_path_buf(),
                catalog: unreachable.clone(),
            })
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default()
        };
        let bad_manifest = err(&wasm);
        assert!(bad_manifest.contains("invalid manifest"), "{bad_manifest}");
        let not_wasm = err(&dir.path().join("echo.toml"));
        assert!(not_wasm.contains("is not a .wasm file"), "{not_wasm}");
    }
}
