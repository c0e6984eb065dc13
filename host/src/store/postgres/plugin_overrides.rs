//! Admins' overrides of plugins on PostgreSQL; the model is that of
//! [`store::sqlite::plugin_overrides`](crate::store::sqlite::plugin_overrides). Rows are per `scope`: the
//! cluster's name on a node of a cluster, '' on a server on its own (`schema/v9.sql`).

use super::transaction::Transaction;
use tokio_postgres::Row;

use crate::model::Millis;
use crate::store::error::Result;
use crate::store::records::PluginOverridesRow;

fn overrides_row(r: &Row) -> Result<PluginOverridesRow> {
    let settings: String = r.try_get(2)?;
    Ok(PluginOverridesRow {
        name: r.try_get(0)?,
        disabled: r.try_get(1)?,
        settings: serde_json::from_str(&settings)?,
        revision: r.try_get(3)?,
        updated_at: r.try_get(4)?,
    })
}

/// The overrides of plugin `name` in `scope`, if an admin ever set any.
pub async fn plugin_overrides(
    tx: &Transaction<'_>,
    scope: &str,
    name: &str,
) -> Result<Option<PluginOverridesRow>> {
    let stmt = tx
        .prepare_cached(
            "SELECT name, disabled, settings, revision, updated_at FROM plugin_overrides
             WHERE cluster = $1 AND name = $2",
        )
        .await?;
    tx.query_opt(&stmt, &[&scope, &name])
        .await?
        .map(|r| overrides_row(&r))
        .transpose()
}

/// Every plugin's overrides in `scope`, by name.
pub async fn all_plugin_overrides(
    tx: &Transaction<'_>,
    scope: &str,
) -> Result<Vec<PluginOverridesRow>> {
    let stmt = tx
        .prepare_cached(
            "SELECT name, disabled, settings, revision, updated_at FROM plugin_overrides
             WHERE cluster = $1 ORDER BY name",
        )
        .await?;
    tx.query(&stmt, &[&scope])
        .await?
        .iter()
        .map(overrides_row)
        .collect()
}

/// Sets plugin `name`'s overrides in `scope` (creating the row, revision 1, or replacing it, revision
/// + 1); the row afterwards.
pub async fn put_plugin_overrides(
    tx: &Transaction<'_>,
    scope: &str,
    name: &str,
    disabled: bool,
    settings: &serde_json::Map<String, serde_json::Value>,
    now: Millis,
) -> Result<PluginOverridesRow> {
    let text = serde_json::Value::Object(settings.clone()).to_string();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO plugin_overrides (cluster, name, disabled, settings, revision, updated_at)
             VALUES ($1, $2, $3, $4, 1, $5)
             ON CONFLICT (cluster, name) DO UPDATE SET disabled = EXCLUDED.disabled,
                 settings = EXCLUDED.settings, revision = plugin_overrides.revision + 1,
                 updated_at = EXCLUDED.updated_at
             RETURNING name, disabled, settings, revision, updated_at",
        )
        .await?;
    let row = tx
        .query_one(&stmt, &[&scope, &name, &disabled, &text, &now])
        .await?;
    overrides_row(&row)
}
