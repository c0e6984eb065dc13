//! `chathooks plugins push|remove|list --database postgres://...`: manage a cluster's plugin catalog
//! (SCALE-OUT.md 2.8), from CI or an operator's machine, without a running node.
//!
//! `push` takes a `.wasm` file, or a folder whose every `.wasm` goes, each with the `<name>.toml` manifest
//! beside it if there is one. Every file is checked first as the loader would check it (the manifest
//! parses, the bytes are a component of our WIT): one bad file and nothing is pushed. The catalog is
//! content-addressed, so pushing what it already has changes nothing. With `--nats` the nodes are poked
//! and load the change at once; without it they notice within their poll interval
//! ([`POLL_EVERY`](crate::cluster::catalog::POLL_EVERY)).

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
