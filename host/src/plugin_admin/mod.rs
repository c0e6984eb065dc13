//! Operating plugins over the admin API: uploading one (component and manifest), enabling and
//! disabling it, and setting values of its manifest's settings.
//!
//! ## Overview
//! What an admin sets is kept in the database (`plugin_overrides`, through the storage seam), so it
//! survives restarts and is the same on every node of a cluster. The registry reads it at every load of a
//! plugin ([`overrides::DbOverrides`]), which is how a change takes effect: after writing it,
//! [`PluginAdmin`] reloads the plugin through the registry's one load path. A disabled plugin is not
//! loaded (its file stays); a setting's value replaces the manifest's default in what the plugin reads
//! through `config`.
//!
//! Where the plugin's files are ([`Home`]):
//! - **A server on its own**: its plugins folder. An upload is checked and written into the folder by
//!   [`Registry::install`](crate::plugins::registry::Registry::install); a change of settings or of
//!   enabled reloads the plugin's file at once, so the answer says what happened.
//! - **A node of a cluster**: the cluster's catalog. An upload is checked on this node the same way
//!   (the loader's checks and the cluster's overrides), then put into the catalog; every node, this one
//!   included, loads it from there. Overrides are the cluster's rows; every node's catalog mirror
//!   reloads a plugin whose row changed ([`crate::cluster::catalog`]). Each change is announced on NATS,
//!   so nodes apply it at once rather than at their next look.
//!
//! Settings are checked against the manifest the next load will use: the file in the folder, or the
//! catalog's. Each value must have its setting's type; `null` removes a value (back to the default).

pub mod overrides;
pub mod view;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::cluster::upload::valid_name;
use crate::plugins::install::{InstallError, Upload};
use crate::plugins::manifest::PluginSettings;
use crate::plugins::registry::Registry;
use crate::plugins::settings::{self, SettingError};
use crate::store::{Db, StoreError};
pub use view::{PluginControls, SettingView};

/// Why an admin's plugin operation was refused or failed. Callers (the API) match on it.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No plugin of that name (no file in the folder, or not in the cluster's catalog).
    #[error("no plugin `{name}`: upload it first (PUT /v1/admin/plugins/{name})")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// A field of the request is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field (`name`, `wasm`, `manifest`, `settings.<key>`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A setting's value is not acceptable, or is not a declared setting.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The upload would not load; nothing was changed.
    #[error("the plugin would not load: {reason}")]
    Refused {
        /// The loader's reason.
        reason: String,
    },
    /// The plugin's current manifest does not parse, so its settings cannot be checked.
    #[error("the plugin's manifest is not valid ({message}); upload a fixed one first")]
    BadManifest {
        /// The manifest's error.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else (a file that cannot be written, a task that panicked).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Where a server's plugins come from.
#[derive(Debug, Clone)]
pub enum Home {
    /// The registry's plugins folder (a server on its own).
    Folder,
    /// Cluster `cluster`'s catalog, with the NATS client that announces changes to its nodes.
    Cluster {
        /// The cluster's name.
        cluster: String,
        /// Pokes the nodes' catalog mirrors.
        nats: async_nats::Client,
    },
}

/// The admin's plugin operations. Share it as `Arc<PluginAdmin>`.
#[derive(Debug)]
pub struct PluginAdmin {
    db: Arc<Db>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    home: Home,
}

impl PluginAdmin {
    /// Operations on `registry`'s plugins, kept in `db`, timed by `clock`, their files in `home`.
    pub fn new(db: Arc<Db>, registry: Arc<Registry>, clock: Arc<dyn Clock>, home: Home) -> Self {
        PluginAdmin {
            db,
            registry,
            clock,
            home,
        }
    }

    /// The controls of plugin `name`: enabled, and its declared settings with their values.
    pub async fn controls(&self, name: &str) -> Result<PluginControls, AdminError> {
        let manifest = self.manifest(name).await?;
        let (db, key) = (self.db.clone(), name.to_owned());
        let row = blocking(move || db.read(|r| r.plugin_overrides(&key))).await??;
        let (disabled, values) = row.map_or((false, Map::new()), |r| (r.disabled, r.settings));
        Ok(PluginControls::new(name, &manifest, disabled, &values))
    }

    /// Disables (`true`) or enables plugin `name`, and applies it.
    pub async fn set_disabled(
        &self,
        name: &str,
        disabled: bool,
    ) -> Result<PluginControls, AdminError> {
        self.manifest(name).await?;
        let now = self.clock.now_ms();
        self.change(name, move |_, settings| (disabled, settings), now)
            .await?;
        self.applied(name).await
    }

    /// Sets the settings in `patch` (each checked against the manifest's declaration; `null` removes the
    /// admin's value), keeps the others, and applies them.
    pub async fn patch_settings(
        &self,
        name: &str,
        patch: Map<String, Value>,
    ) -> Result<PluginControls, AdminError> {
        let manifest = self.manifest(name).await?;
        let mut checked: Vec<(String, Option<Value>)> = Vec::with_capacity(patch.len());
        for (key, value) in patch {
            let spec = settings::find(&manifest.settings, &key)?;
            let value = match value {
                Value::Null => None,
                value => Some(spec.check(&value)?),
            };
            checked.push((key, value));
        }
        let now = self.clock.now_ms();
        self.change(
            name,
            move |disabled, mut settings| {
                for (key, value) in &checked {
                    match value {
                        Some(value) => settings.insert(key.clone(), value.clone()),
                        None => settings.remove(key),
                    };
                }
                (disabled, settings)
            },
            now,
        )
        .await?;
        self.applied(name).await
    }

    /// Uploads plugin `name`: `wasm` (a component) with `manifest` (its text, if any) and values of its
    /// settings (`settings`, checked against the uploaded manifest, stored over the admin's earlier ones:
    /// how a required secret comes with the plugin that needs it). Checked as a load would be; refused
    /// ([`AdminError::Refused`]) with nothing changed if it would not load. Returns the controls and, on a
    /// server on its own, what the load did.
    pub async fn upload(
        &self,
        name: &str,
        wasm: Vec<u8>,
        manifest: Option<String>,
        settings: Map<String, Value>,
    ) -> Result<PluginControls, AdminError> {
        if !valid_name(name) {
            return Err(AdminError::Invalid {
                field: "name".to_owned(),
                message: format!(
                    "{name:?} is not a plugin name: 1-{} letters, digits, '-', '_' or '.', not \
                     starting with '.'",
                    crate::cluster::upload::MAX_NAME_LEN
                ),
            });
        }
        let declared = match &manifest {
            Some(text) => PluginSettings::parse(text).map_err(|e| AdminError::Invalid {
                field: "manifest".to_owned(),
                message: e,
            })?,
            None => PluginSettings::default(),
        };
        let mut values = Map::new();
        for (key, value) in settings {
            let spec = settings::find(&declared.settings, &key)?;
            if !value.is_null() {
                values.insert(key, spec.check(&value)?);
            }
        }
        let (registry, db, now) = (self.registry.clone(), self.db.clone(), self.clock.now_ms());
        let key = name.to_owned();
        let reload = match &self.home {
            Home::Folder => {
                let report = blocking(move || {
                    let upload = Upload {
                        name: &key,
                        wasm: &wasm,
                        manifest: manifest.as_deref(),
                        settings: &values,
                    };
                    registry.install(upload, || {
                        store_values(&db, &key, &values, now).map_err(|e| e.to_string())
                    })
                })
                .await?;
                Some(report.map_err(install_error)?)
            }
            Home::Cluster { cluster, nats } => {
                let checked = blocking(move || {
                    let upload = Upload {
                        name: &key,
                        wasm: &wasm,
                        manifest: manifest.as_deref(),
                        settings: &values,
                    };
                    registry.check_upload(upload)?;
                    store_values(&db, &key, &values, now).map_err(|e| InstallError::Keep {
                        reason: e.to_string(),
                    })?;
                    Ok::<_, InstallError>((wasm, manifest))
                })
                .await?;
                let (wasm, manifest) = checked.map_err(install_error)?;
                let pg = self.db.as_postgres().ok_or_else(|| {
                    anyhow::anyhow!(
                        "a cluster's catalog is in PostgreSQL; this node's database is not"
                    )
                })?;
                pg.put_plugin(cluster, name, wasm, manifest)
                    .await
                    .map_err(StoreError::from)?;
                crate::cluster::catalog::poke(nats, cluster).await;
                None
            }
        };
        let mut controls = self.controls(name).await?;
        controls.reload = reload;
        Ok(controls)
    }

    /// Reads, changes with `f` (given the stored disabled flag and settings) and writes `name`'s
    /// overrides in one transaction.
    async fn change(
        &self,
        name: &str,
        f: impl Fn(bool, Map<String, Value>) -> (bool, Map<String, Value>) + Send + 'static,
        now: crate::model::Millis,
    ) -> Result<(), AdminError> {
        let (db, name) = (self.db.clone(), name.to_owned());
        blocking(move || {
            db.write(|tx| {
                let row = tx.plugin_overrides(&name)?;
                let (disabled, settings) =
                    row.map_or((false, Map::new()), |r| (r.disabled, r.settings));
                let (disabled, settings) = f(disabled, settings);
                tx.put_plugin_overrides(&name, disabled, &settings, now)
            })
        })
        .await??;
        Ok(())
    }

    /// Applies a change of `name`'s overrides: reloads its file now (a server on its own), or tells the
    /// cluster's nodes to look. Returns the controls with what the reload did.
    async fn applied(&self, name: &str) -> Result<PluginControls, AdminError> {
        let reload = match &self.home {
            Home::Folder => {
                let path = self.wasm_path(name)?;
                let registry = self.registry.clone();
                Some(blocking(move || registry.load_file(&path)).await?)
            }
            Home::Cluster { cluster, nats } => {
                crate::cluster::catalog::poke(nats, cluster).await;
                None
            }
        };
        let mut controls = self.controls(name).await?;
        controls.reload = reload;
        Ok(controls)
    }

    /// The manifest plugin `name`'s next load will use ([`AdminError::NotFound`] if there is no such
    /// plugin, [`AdminError::BadManifest`] if it does not parse).
    async fn manifest(&self, name: &str) -> Result<PluginSettings, AdminError> {
        let not_found = || AdminError::NotFound {
            name: name.to_owned(),
        };
        if !valid_name(name) {
            return Err(not_found());
        }
        let text = match &self.home {
            Home::Folder => {
                let wasm = self.wasm_path(name)?;
                blocking(move || {
                    if !wasm.is_file() {
                        return Ok(None);
                    }
                    match std::fs::read_to_string(wasm.with_extension("toml")) {
                        Ok(text) => Ok(Some(Some(text))),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some(None)),
                        Err(e) => Err(e),
                    }
                })
                .await?
                .map_err(|e| anyhow::anyhow!("reading the manifest of {name}: {e}"))?
            }
            Home::Cluster { cluster, .. } => {
                let pg = self.db.as_postgres().ok_or_else(not_found)?;
                let catalog = pg.plugin_catalog(cluster).await.map_err(StoreError::from)?;
                catalog
                    .into_iter()
                    .find(|entry| entry.name == name)
                    .map(|entry| entry.manifest)
            }
        };
        let text = text.ok_or_else(not_found)?;
        match text {
            None => Ok(PluginSettings::default()),
            Some(text) => {
                PluginSettings::parse(&text).map_err(|message| AdminError::BadManifest { message })
            }
        }
    }

    /// `<plugins folder>/<name>.wasm`.
    fn wasm_path(&self, name: &str) -> Result<PathBuf, AdminError> {
        let folder = self
            .registry
            .folder()
            .ok_or_else(|| anyhow::anyhow!("the server has no plugins folder"))?;
        Ok(folder.join(format!("{name}.wasm")))
    }
}

/// Stores `values` over `name`'s stored setting values (nothing to do without values).
fn store_values(
    db: &Db,
    name: &str,
    values: &Map<String, Value>,
    now: crate::model::Millis,
) -> crate::store::Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    db.write(|tx| {
        let row = tx.plugin_overrides(name)?;
        let (disabled, mut settings) =
            row.map_or((false, Map::new()), |r| (r.disabled, r.settings));
        settings.extend(values.clone());
        tx.put_plugin_overrides(name, disabled, &settings, now)
    })?;
    Ok(())
}

fn install_error(error: InstallError) -> AdminError {
    match error {
        InstallError::Refused { reason } => AdminError::Refused { reason },
        other => AdminError::Internal(other.into()),
    }
}

/// Runs `f` on a blocking thread (database and file work, compiling).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AdminError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AdminError::Internal(anyhow::anyhow!("a blocking task failed: {e}")))
}
