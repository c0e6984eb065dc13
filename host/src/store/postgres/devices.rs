//! Users' push device tokens on PostgreSQL, as [`store::sqlite::devices`](crate::store::sqlite::devices)
//! keeps them.

use super::transaction::Transaction;

use super::values::no_nul;
use crate::model::Millis;
use crate::store::error::Result;
use crate::store::records::Device;

/// Registers (or re-registers) a device token for `user_id`.
pub async fn add_device(
    tx: &Transaction<'_>,
    user_id: &str,
    platform: &str,
    token: &str,
    now: Millis,
) -> Result<Device> {
    no_nul("platform", platform)?;
    no_nul("token", token)?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO devices (user_id, token, platform, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, token) DO UPDATE SET platform = $3, created_at = $4",
        )
        .await?;
    tx.execute(&stmt, &[&user_id, &token, &platform, &now])
        .await?;
    Ok(Device {
        user_id: user_id.to_owned(),
        platform: platform.to_owned(),
        token: token.to_owned(),
        created_at: now,
    })
}

/// Removes a device token; whether it was there.
pub async fn remove_device(tx: &Transaction<'_>, user_id: &str, token: &str) -> Result<bool> {
    if token.contains('\0') {
        // add_device refuses such a token, so none is stored: nothing to remove, as SQLite would find.
        return Ok(false);
    }
    let stmt = tx
        .prepare_cached("DELETE FROM devices WHERE user_id = $1 AND token = $2")
        .await?;
    Ok(tx.execute(&stmt, &[&user_id, &token]).await? > 0)
}

/// The devices of these users, in the order the users are given (duplicates included), then by token:
/// one statement for the whole list.
pub async fn devices_of(tx: &Transaction<'_>, user_ids: &[String]) -> Result<Vec<Device>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = tx
        .prepare_cached(
            "SELECT d.user_id, d.platform, d.token, d.created_at
             FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) JOIN devices d ON d.user_id = u.id
             ORDER BY u.n, d.token",
        )
        .await?;
    let rows = tx.query(&stmt, &[&user_ids]).await?;
    rows.iter()
        .map(|r| {
            Ok(Device {
                user_id: r.try_get(0)?,
                platform: r.try_get(1)?,
                token: r.try_get(2)?,
                created_at: r.try_get(3)?,
            })
        })
        .collect()
}
