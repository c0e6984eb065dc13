//! Every node runs the cluster's plugins (SCALE-OUT.md 2.8): it mirrors the catalog
//! ([`crate::store::postgres::catalog`]) into a folder of its own, `<data dir>/cluster-plugins/`, and its
//! registry loads from that folder through the usual reload path (which keeps the running version
//! serving when a new one fails to load, and does nothing for unchanged bytes and manifest).
//!
//! ## When a node looks
//! Every [`POLL_EVERY`], and at once on a poke on the cluster's NATS subject
//! [`plugins`](super::subjects::plugins) (sent by `chathooks plugins push` and by publisher nodes after a
//! change). A lost poke costs at most one poll interval.
//!
//! ## One look ([`Mirror::sync`])
//! The catalog is listed without blobs (manifests included: they are small). A plugin whose SHA-256
//! differs from the folder's is fetched, its hash checked, and written atomically (a hidden temporary
//! file renamed into place, the manifest before the component), then loaded; one whose manifest alone
//! changed gets the new manifest without fetching the bytes; a file whose plugin left the catalog is deleted and the
//! plugin unloaded. Files nobody asked for (a hand-copied `x.wasm`) are deleted too: the folder belongs to
//! the mirror.
//!
//! A plugin whose admin overrides (`plugin_overrides`: disabled, settings) changed since the last look is
//! loaded again too, so a change made on any node through the admin API reaches every node: the registry
//! reads the overrides at every load.
//!
//! ## Publishers
//! A node whose plugins folder exists pushes it to the catalog at start and watches it
//! ([`super::publisher`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use super::subjects;
use super::upload::valid_name;
use crate::plugins::cache::content_hash;
use crate::plugins::registry::Registry;
use crate::plugins::reload::ReloadReport;
use crate::plugins::watcher::OnChange;
use crate::store::Db;
use crate::store::postgres::PgDb;
use crate::store::postgres::catalog::CatalogEntry;

/// How often a node looks at the catalog without being poked.
pub const POLL_EVERY: Duration = Duration::from_secs(3);

/// The folder, in the data folder, a cluster node mirrors the catalog into and loads its plugins from.
pub const MIRROR_DIR: &str = "cluster-plugins";

/// Why a look at the catalog failed; the next one tries again.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The database cannot be read.
    #[error("cannot read the cluster's plugin catalog: {0}")]
    Database(#[from] crate::store::postgres::PgError),
    /// The mirror folder cannot be written.
    #[error("cannot write {}: {source}; check the data folder's permissions and free space", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The admins' overrides of plugins cannot be read.
    #[error("cannot read the admins' plugin overrides: {0}")]
    Overrides(String),
    /// The database is not PostgreSQL.
    #[error("a cluster's catalog is in PostgreSQL; this node's database is not")]
    NotPostgres,
}

/// What one look changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// One report per plugin written or removed, from the registry.
    pub changes: Vec<ReloadReport>,
    /// Catalog rows skipped (a bad name, or a blob whose hash is not the row's), with why.
    pub skipped: Vec<String>,
}

/// The bytes' hash and manifest of a plugin in the mirror folder.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Local {
    sha256: String,
    manifest: Option<String>,
}

/// Keeps a folder equal to a cluster's catalog and the registry loaded from it.
#[derive(Debug)]
pub struct Mirror {
    db: Arc<Db>,
    registry: Arc<Registry>,
    cluster: String,
    dir: PathBuf,
    /// What the folder holds, as last written or read (so unchanged files are not hashed every look).
    known: HashMap<String, Local>,
    /// The revision of each plugin's admin overrides (disabled, settings) as of the last look: a plugin
    /// whose row changed since is loaded again, so the registry applies the new overrides.
    overrides_seen: HashMap<String, i64>,
}

impl Mirror {
    /// A mirror of `cluster`'s catalog in `db` into `dir`, loaded into `registry`.
    pub fn new(db: Arc<Db>, registry: Arc<Registry>, cluster: &str, dir: &Path) -> Mirror {
        Mirror {
            db,
            registry,
            cluster: cluster.to_owned(),
            dir: dir.to_path_buf(),
            known: HashMap::new(),
            overrides_seen: HashMap::new(),
        }
    }

    fn pg(&self) -> Result<&PgDb, SyncError> {
        self.db.as_postgres().ok_or(SyncError::NotPostgres)
    }

    /// Looks at the catalog once and brings the folder and the registry in line with it.
    pub async fn sync(&mut self) -> Result<SyncReport, SyncError> {
        let entries = self.pg()?.plugin_catalog(&self.cluster).await?;
        let mut report = SyncReport::default();
        let mut wanted: BTreeMap<String, CatalogEntry> = BTreeMap::new();
        for entry in entries {
            if valid_name(&entry.name) {
                wanted.insert(entry.name.clone(), entry);
            } else {
                report.skipped.push(format!(
                    "{:?}: not a plugin name; remove it with `chathooks plugins remove`",
                    entry.name
                ));
            }
        }
        let mut load = Vec::new();
        for entry in wanted.values() {
            let local = self.local(&entry.name).await;
            if local.as_ref() == Some(&Local::of(entry)) {
                continue;
            }
            if local.is_some_and(|l| l.sha256 == entry.sha256) {
                // Only the manifest changed: the bytes are here already.
                self.write_manifest(&entry.name, entry.manifest.as_deref())?;
                self.known.insert(entry.name.clone(), Local::of(entry));
                load.push(self.wasm_path(&entry.name));
                continue;
            }
            let Some(blob) = self.pg()?.fetch_plugin(&self.cluster, &entry.name).await? else {
                continue; // Removed since the list: the next look deletes it.
            };
            let sha256 = content_hash(&blob.wasm);
            if sha256 != blob.sha256 {
                report.skipped.push(format!(
                    "{}: its bytes hash to {sha256}, not to the catalog's {}; push it again",
                    blob.name, blob.sha256
                ));
                continue;
            }
            self.write(&blob.name, &blob.wasm, blob.manifest.as_deref())?;
            self.known.insert(
                blob.name.clone(),
                Local {
                    sha256,
                    manifest: blob.manifest,
                },
            );
            load.push(self.wasm_path(&blob.name));
        }
        for name in self.overrides_changed().await? {
            let path = self.wasm_path(&name);
            if wanted.contains_key(&name) && !load.contains(&path) {
                load.push(path);
            }
        }
        let mut gone = Vec::new();
        for name in self.folder_names()? {
            if !wanted.contains_key(&name) {
                self.delete(&name)?;
                gone.push(name);
            }
        }
        for line in &report.skipped {
            tracing::error!(cluster = %self.cluster, "plugin catalog row not mirrored: {line}");
        }
        if load.is_empty() && gone.is_empty() {
            return Ok(report);
        }
        let registry = self.registry.clone();
        report.changes = tokio::task::spawn_blocking(move || {
            let mut changes: Vec<ReloadReport> =
                load.iter().map(|p| registry.load_file(p)).collect();
            changes.extend(gone.iter().filter_map(|name| registry.unload(name)));
            changes
        })
        .await
        .unwrap_or_else(|e| {
            tracing::error!("loading the catalog's plugins panicked: {e}");
            Vec::new()
        });
        Ok(report)
    }

    /// The plugins whose admin overrides changed since the last look (every plugin with overrides, at the
    /// first look: loading an unchanged plugin again costs a hash of its file and nothing else).
    async fn overrides_changed(&mut self) -> Result<Vec<String>, SyncError> {
        let db = self.db.clone();
        let rows = tokio::task::spawn_blocking(move || db.read(|r| r.all_plugin_overrides()))
            .await
            .map_err(|e| SyncError::Overrides(format!("the task reading them failed: {e}")))?
            .map_err(|e| SyncError::Overrides(e.to_string()))?;
        let mut changed = Vec::new();
        for row in rows {
            if self.overrides_seen.get(&row.name) != Some(&row.revision) {
                self.overrides_seen.insert(row.name.clone(), row.revision);
                changed.push(row.name);
            }
        }
        Ok(changed)
    }

    fn wasm_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.wasm"))
    }

    fn toml_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.toml"))
    }

    /// What the folder holds for `name` (read and hashed once, then remembered).
    async fn local(&mut self, name: &str) -> Option<Local> {
        if let Some(known) = self.known.get(name) {
            return Some(known.clone());
        }
        let (wasm, toml) = (self.wasm_path(name), self.toml_path(name));
        let read = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(wasm).ok()?;
            let manifest = std::fs::read_to_string(toml).ok();
            Some(Local {
                sha256: content_hash(&bytes),
                manifest,
            })
        })
        .await
        .ok()
        .flatten()?;
        self.known.insert(name.to_owned(), read.clone());
        Some(read)
    }

    /// Writes the manifest (or removes it), then the component, each through a hidden temporary file
    /// renamed into place.
    fn write(&self, name: &str, wasm: &[u8], manifest: Option<&str>) -> Result<(), SyncError> {
        self.write_manifest(name, manifest)?;
        write_atomically(&self.wasm_path(name), wasm)
    }

    /// Writes `<name>.toml` (atomically), or removes it for `None`.
    fn write_manifest(&self, name: &str, manifest: Option<&str>) -> Result<(), SyncError> {
        let toml = self.toml_path(name);
        match manifest {
            Some(text) => write_atomically(&toml, text.as_bytes()),
            None => remove_if_present(&toml),
        }
    }

    fn delete(&mut self, name: &str) -> Result<(), SyncError> {
        self.known.remove(name);
        remove_if_present(&self.wasm_path(name))?;
        remove_if_present(&self.toml_path(name))
    }

    /// The plugin names of the folder's `.wasm` files.
    fn folder_names(&self) -> Result<Vec<String>, SyncError> {
        let files =
            crate::plugins::reload::wasm_files(&self.dir).map_err(|source| SyncError::Write {
                path: self.dir.clone(),
                source,
            })?;
        Ok(files
            .iter()
            .map(|p| crate::plugins::runtime::plugin_name(p))
            .collect())
    }
}

impl Local {
    fn of(entry: &CatalogEntry) -> Local {
        Local {
            sha256: entry.sha256.clone(),
            manifest: entry.manifest.clone(),
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SyncError> {
    crate::plugins::install::write_atomically(path, bytes).map_err(|source| SyncError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn remove_if_present(path: &Path) -> Result<(), SyncError> {
    crate::plugins::install::remove_if_present(path).map_err(|source| SyncError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The running catalog loop. Stop it with [`CatalogSync::stop`]; dropping it stops it too.
#[derive(Debug)]
pub struct CatalogSync {
    wake: Arc<Notify>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl CatalogSync {
    /// Looks at the catalog now (what a NATS poke does).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops the loop, waiting for a look in progress.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for CatalogSync {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Starts `mirror`'s loop: a look every `poll`, and at once on a poke on the cluster's
/// [`plugins`](subjects::plugins) subject or [`CatalogSync::wake`]. `on_change` runs after every look that
/// changed the registry (the server wakes its dispatcher). The first look happens at once.
pub async fn spawn(
    mut mirror: Mirror,
    nats: async_nats::Client,
    poll: Duration,
    on_change: OnChange,
) -> anyhow::Result<CatalogSync> {
    let subject = subjects::plugins(&mirror.cluster);
    let mut pokes = nats
        .subscribe(subject.clone())
        .await
        .map_err(|e| anyhow::anyhow!("subscribing to {subject} on NATS: {e}"))?;
    let wake = Arc::new(Notify::new());
    let (stop, mut stopped) = oneshot::channel::<()>();
    let woken = wake.clone();
    let task = tokio::spawn(async move {
        let mut failing = false;
        loop {
            match mirror.sync().await {
                Ok(report) => {
                    if failing {
                        tracing::info!("the cluster's plugin catalog can be read again");
                        failing = false;
                    }
                    if !report.changes.is_empty() {
                        on_change();
                    }
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!("{e} (trying again every {poll:?})");
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = &mut stopped => break,
                () = woken.notified() => {}
                poke = pokes.next() => if poke.is_none() {
                    // The subscription ended (the client is closing): polling still works.
                    tokio::select! {
                        _ = &mut stopped => break,
                        () = tokio::time::sleep(poll) => {}
                    }
                },
                () = tokio::time::sleep(poll) => {}
            }
        }
    });
    Ok(CatalogSync {
        wake,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Tells every node of `cluster` to look at the catalog now. Failures are logged: nodes still poll.
pub async fn poke(nats: &async_nats::Client, cluster: &str) {
    let subject = subjects::plugins(cluster);
    if let Err(e) = nats.publish(subject.clone(), bytes::Bytes::new()).await {
        tracing::warn!("cannot poke {subject} on NATS (nodes notice within {POLL_EVERY:?}): {e}");
    } else if let Err(e) = nats.flush().await {
        tracing::warn!("cannot poke {subject} on NATS (nodes notice within {POLL_EVERY:?}): {e}");
    }
}
