//! `chathooks:plugin/config`: the `[config]` table of the plugin's manifest, read-only. Always granted.

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
