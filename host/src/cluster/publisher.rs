//! A publisher node: a cluster node whose plugins folder (`--plugins-dir`) feeds the cluster's catalog
//! (SCALE-OUT.md 2.8).
//!
//! The folder is watched with the hot-reload watcher's rules (settling, partial writes, lost events:
//! [`crate::plugins::watcher`]), but a settled file is checked ([`super::upload`]) and pushed to the
//! catalog instead of being loaded; the node then loads it from the catalog like every other node. The
//! catalog is content-addressed, so pushing files it already has changes nothing, and several publishers
//! with the same files are harmless.
//!
//! **Deleting a file does nothing to the catalog**: a publisher that restarts with an emptied or
//! half-provisioned folder must not take plugins away from the whole cluster. Removal is explicit:
//! `chathooks plugins remove <name> --database ...`. Note the other side of that: every publisher pushes
//! its whole folder when it starts, so a publisher whose folder holds an older version than the catalog
//! rolls the cluster back to it. Keep one publisher, or give them the same folder contents.

use std::path::Path;
use std::sync::Arc;

use crate::plugins::reload::{Attempt, Change, ReloadReport};
use crate::plugins::runtime::Runtime;
use crate::plugins::watcher::WatchTarget;
use crate::store::Db;
use crate::store::postgres::catalog;

use super::upload::read_and_check;

/// Pushes a folder's settled plugin files to a cluster's catalog.
#[derive(Debug)]
pub struct Publisher {
    db: Arc<Db>,
    cluster: String,
    /// Checks files before they are pushed: the node's runtime, whose compile cache the node's own
    /// load of the same bytes then hits.
    runtime: Runtime,
    dir: std::path::PathBuf,
}

impl Publisher {
    /// A publisher of `dir` into `cluster`'s catalog in `db` (PostgreSQL), checking files with `runtime`.
    pub fn new(db: Arc<Db>, cluster: &str, runtime: Runtime, dir: &Path) -> Publisher {
        Publisher {
            db,
            cluster: cluster.to_owned(),
            runtime,
            dir: dir.to_path_buf(),
        }
    }

    /// Checks and pushes the plugin at `wasm`. Blocking (compiles; waits for the database).
    pub fn push(&self, wasm: &Path) -> Result<ReloadReport, String> {
        self.push_if(wasm, &|| true)
            .map_err(|e| e.unwrap_or_else(|| "the file changed while it was read".to_owned()))
    }

    /// [`Publisher::push`] unless `still_same` says the files changed after they were read (`Err(None)`).
    fn push_if(
        &self,
        wasm: &Path,
        still_same: &dyn Fn() -> bool,
    ) -> Result<ReloadReport, Option<String>> {
        let upload = read_and_check(&self.runtime, wasm).map_err(|e| Some(e.to_string()));
        if !still_same() {
            return Err(None);
        }
        let upload = upload?;
        let Some(pg) = self.db.as_postgres() else {
            return Err(Some("a cluster's catalog is in PostgreSQL".to_owned()));
        };
        let put = pg
            .handle()
            .block_on(catalog::put(
                pg.pool(),
                &self.cluster,
                &upload.name,
                &upload.wasm,
                upload.manifest.as_deref(),
            ))
            .map_err(|e| Some(format!("cannot push to the cluster's catalog: {e}")))?;
        if put.changed() {
            tracing::info!(plugin = %upload.name, sha256 = %upload.sha256, generation = put.generation(),
                "pushed the plugin to the cluster's catalog");
        }
        Ok(ReloadReport {
            name: upload.name,
            change: if put.changed() {
                Change::Loaded
            } else {
                Change::Unchanged
            },
            hash: Some(upload.sha256),
            error: None,
        })
    }

    /// Pushes every plugin file of the folder (at start, and after events the OS lost); a file that
    /// fails is logged and the others still go. Returns how many changed the catalog. Blocking.
    pub fn push_all(&self) -> std::io::Result<usize> {
        let mut changed = 0;
        for wasm in crate::plugins::reload::wasm_files(&self.dir)? {
            match self.push(&wasm) {
                Ok(report) if report.change != Change::Unchanged => changed += 1,
                Ok(_) => {}
                Err(e) => tracing::error!(file = %wasm.display(), "plugin not pushed: {e}"),
            }
        }
        Ok(changed)
    }
}

impl WatchTarget for Publisher {
    fn try_take(&self, wasm: &Path, still_same: &dyn Fn() -> bool) -> Attempt {
        match self.push_if(wasm, still_same) {
            Ok(report) => Attempt::Done(report),
            Err(None) => Attempt::Changed,
            Err(Some(error)) => Attempt::Failed(error),
        }
    }

    fn record_failure(&self, wasm: &Path, error: String) {
        tracing::error!(file = %wasm.display(), "plugin not pushed to the cluster's catalog: {error}");
    }

    fn removed(&self, name: &str) {
        tracing::info!(
            plugin = name,
            "plugin file removed from the publisher's folder; the cluster keeps running it (remove it \
             with `chathooks plugins remove {name} --database ...`)"
        );
    }

    fn rescan(&self) -> std::io::Result<()> {
        self.push_all().map(drop)
    }
}
