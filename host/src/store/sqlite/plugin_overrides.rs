//! Admins' overrides of plugins (table `plugin_overrides`, schema version 8): disabled, and setting
//! values over the manifest's defaults. One row per plugin name, written whole by
//! [`put_plugin_overrides`] (the caller reads, changes and writes it in one transaction), never deleted.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::writer::Writing;
use crate::model::Millis;
use crate::store::error::Result;
use crate::store::records::PluginOverridesRow;

const SELECT: &str = "SELECT name, disabled, settings, revision, updated_at FROM plugin_overrides";

fn raw_row(r: &Row<'_>) -> rusqlite::Result<(String, bool, String, i64, Millis)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn into_row(
    (name, disabled, settings, revision, updated_at): (String, bool, String, i64, Millis),
) -> Result<PluginOverridesRow> {
    Ok(PluginOverridesRow {
        settings: serde_json::from_str(&settings)?,
        name,
        disabled,
        revision,
        updated_at,
    })
}

/// The overrides of plugin `name`, if an admin ever set any.
pub fn plugin_overrides(conn: &Connection, name: &str) -> Result<Option<PluginOverridesRow>> {
    let row = conn
        .prepare_cached(&format!("{SELECT} WHERE name = ?1"))?
        .query_row([name], raw_row)
        .optional()?;
    row.map(into_row).transpose()
}

/// Every plugin's overrides, by name.
pub fn all_plugin_overrides(conn: &Connection) -> Result<Vec<PluginOverridesRow>> {
    let rows = conn
        .prepare_cached(&format!("{SELECT} ORDER BY name"))?
        .query_map([], raw_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(into_row).collect()
}

/// Sets plugin `name`'s overrides to `disabled` and `settings` (creating the row, revision 1, or
/// replacing it, revision + 1); the row afterwards.
pub fn put_plugin_overrides(
    tx: &Writing<'_>,
    name: &str,
    disabled: bool,
    settings: &serde_json::Map<String, serde_json::Value>,
    now: Millis,
) -> Result<PluginOverridesRow> {
    let text = serde_json::Value::Object(settings.clone()).to_string();
    let row = tx
        .prepare_cached(
            "INSERT INTO plugin_overrides (name, disabled, settings, revision, updated_at)
             VALUES (?1, ?2, ?3, 1, ?4)
             ON CONFLICT (name) DO UPDATE SET disabled = excluded.disabled,
                 settings = excluded.settings, revision = plugin_overrides.revision + 1,
                 updated_at = excluded.updated_at
             RETURNING name, disabled, settings, revision, updated_at",
        )?
        .query_row(params![name, disabled, text, now], raw_row)?;
    into_row(row)
}
