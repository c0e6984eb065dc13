//! The registry's [`OverrideSource`] on the server: the `plugin_overrides` table of its database,
//! through the storage seam.

use std::sync::Arc;

use crate::plugins::overrides::{OverrideSource, Overrides};
use crate::store::Db;

/// Reads admins' overrides from the chat database (on a cluster node, the cluster's).
#[derive(Debug)]
pub struct DbOverrides {
    db: Arc<Db>,
}

impl DbOverrides {
    /// A source reading `db`.
    pub fn new(db: Arc<Db>) -> Self {
        DbOverrides { db }
    }
}

impl OverrideSource for DbOverrides {
    fn overrides(&self, name: &str) -> Result<Overrides, String> {
        let row = self
            .db
            .read(|r| r.plugin_overrides(name))
            .map_err(|e| e.to_string())?;
        Ok(row.map_or_else(Overrides::default, |row| Overrides {
            disabled: row.disabled,
            settings: row.settings,
        }))
    }
}
