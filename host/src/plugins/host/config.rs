//! `chathooks:plugin/config`: the `[config]` table of the plugin's manifest and the effective value of each
//! of its typed settings (the admin's, else the default: `plugins/settings.rs`), read-only. Always granted.
//! The values are resolved when the plugin version is loaded, so an admin's change reloads the plugin.

use std::sync::Arc;

use crate::plugins::bindings::config::Host;
use crate::plugins::powers::PluginPowers;

/// What `config` needs: the plugin version's powers (their `config` map).
pub struct ConfigCtx {
    powers: Arc<PluginPowers>,
}

impl ConfigCtx {
    /// A context reading `powers.config`.
    pub(crate) fn new(powers: Arc<PluginPowers>) -> Self {
        ConfigCtx { powers }
    }
}

impl Host for ConfigCtx {
    fn get(&mut self, key: String) -> Option<String> {
        self.powers.config.get(&key).map(|v| v.to_string())
    }

    fn get_all(&mut self) -> String {
        serde_json::Value::Object(self.powers.config.clone()).to_string()
    }
}
