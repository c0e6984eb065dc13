//! Users' push device tokens (`POST /v1/me/devices`), handed to the push gateway with each notification.

use rusqlite::{Connection, params};

use super::writer::Writing;
use crate::model::Millis;
use crate::store::error::Result;
use crate::store::records::Device;

/// Registers (or re-registers) a device token for `user_id`.
pub fn add_device(
    tx: &Writing<'_>,
    user_id: &str,
    platform: &str,
    token: &str,
    now: Millis,
) -> Result<Device> {
    tx.execute(
        "INSERT INTO devices (user_id, token, platform, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id, token) DO UPDATE SET platform = ?3, created_at = ?4",
        params![user_id, token, platform, now],
    )?;
    Ok(Device {
        user_id: user_id.to_owned(),
        platform: platform.to_owned(),
        token: token.to_owned(),
        created_at: now,
    })
}

/// Removes a device token; whether it was there.
pub fn remove_device(tx: &Writing<'_>, user_id: &str, token: &str) -> Result<bool> {
    let n = tx.execute(
        "DELETE FROM devices WHERE user_id = ?1 AND token = ?2",
        params![user_id, token],
    )?;
    Ok(n > 0)
}

/// The devices of these users, by user then token.
pub fn devices_of(conn: &Connection, user_ids: &[String]) -> Result<Vec<Device>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, platform, token, created_at FROM devices WHERE user_id = ?1 ORDER BY token",
    )?;
    let mut out = Vec::new();
    for user in user_ids {
        let rows = stmt.query_map(params![user], |r| {
            Ok(Device {
                user_id: r.get(0)?,
                platform: r.get(1)?,
                token: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?;
        out.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
    }
    Ok(out)
}
