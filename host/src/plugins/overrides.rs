//! What an admin has set over a plugin's files: whether it is disabled, and values of its manifest's
//! settings ([`super::settings`]). The server keeps them in its database (table `plugin_overrides`) and
//! changes them through the admin API; the registry reads them at every load of the plugin, so each load
//! path (start-up, the watcher, a rescan, the cluster catalog, an upload) applies them the same way.
//!
//! The registry reads them through [`OverrideSource`], a narrow trait like the powers' `HostServices`:
//! the server installs one over its database, while the harness and the CLI tools have none (no
//! overrides: every plugin enabled, every setting at its default).

use std::fmt::Debug;

use serde_json::{Map, Value};

/// An admin's overrides of one plugin. The default is none: enabled, every setting at its default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Disabled by an admin: the plugin is not loaded (its file stays) until it is enabled again.
    pub disabled: bool,
    /// Setting values over the manifest's defaults, by setting name.
    pub settings: Map<String, Value>,
}

/// Where the registry reads admins' overrides from.
pub trait OverrideSource: Send + Sync + Debug {
    /// The overrides of plugin `name` (the default when there are none). An error (the database cannot
    /// be read) fails the load, and the running version, if any, keeps serving.
    fn overrides(&self, name: &str) -> Result<Overrides, String>;
}
