//! Emoji reactions, unique per (message, user, emoji): reacting twice with the same emoji is a no-op.

use rusqlite::{Connection, OptionalExtension, params};

use super::messages;
use super::users::RawUser;
use super::writer::Writing;
use crate::model::{Millis, Reaction};
use crate::store::error::{Result, StoreError};
use crate::store::limits::MAX_EMOJI_LEN;
use crate::store::records::Outcome;

/// Adds `user_id`'s `emoji` reaction to `message_id`; an existing identical reaction is returned with
/// `changed == false`. [`StoreError::Conflict`] on a deleted message.
pub fn add_reaction(
    tx: &Writing<'_>,
    message_id: &str,
    user_id: &str,
    emoji: &str,
    now: Millis,
) -> Result<Outcome<Reaction>> {
    if emoji.trim().is_empty() || emoji.chars().count() > MAX_EMOJI_LEN {
        return Err(StoreError::Invalid(format!(
            "emoji must be 1-{MAX_EMOJI_LEN} characters"
        )));
    }
    if messages::get_message(tx, message_id)?.deleted {
        return Err(StoreError::Conflict(format!(
            "message {message_id:?} is deleted"
        )));
    }
    let changed = tx
        .prepare_cached(
            "INSERT INTO reactions (message_id, user_id, emoji, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![message_id, user_id, emoji, now])?;
    let reaction = find(tx, message_id, user_id, emoji)?
        .ok_or_else(|| StoreError::not_found("reaction", emoji))?;
    Ok(Outcome {
        value: reaction,
        changed: changed > 0,
    })
}

/// Removes a reaction and returns it (for the `reaction.deleted` event), or `None` if there was none.
pub fn remove_reaction(
    tx: &Writing<'_>,
    message_id: &str,
    user_id: &str,
    emoji: &str,
) -> Result<Option<Reaction>> {
    let Some(reaction) = find(tx, message_id, user_id, emoji)? else {
        return Ok(None);
    };
    tx.prepare_cached(
        "DELETE FROM reactions WHERE message_id = ?1 AND user_id = ?2 AND emoji = ?3",
    )?
    .execute([message_id, user_id, emoji])?;
    Ok(Some(reaction))
}

/// Every reaction to `message_id`, oldest first.
pub fn reactions_for_message(conn: &Connection, message_id: &str) -> Result<Vec<Reaction>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.message_id, r.emoji, r.created_at, u.id, u.name, u.metadata
         FROM reactions r JOIN users u ON u.id = r.user_id WHERE r.message_id = ?1
         ORDER BY r.created_at, r.user_id, r.emoji",
    )?;
    let rows = stmt
        .query_map([message_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, RawUser::from_row(r, 3)?))
        })?
        .collect::<rusqlite::Result<Vec<(String, String, Millis, RawUser)>>>()?;
    rows.into_iter()
        .map(|(message_id, emoji, created_at, user)| {
            Ok(Reaction {
                message_id,
                user: user.into_user()?,
                emoji,
                created_at,
            })
        })
        .collect()
}

fn find(
    conn: &Connection,
    message_id: &str,
    user_id: &str,
    emoji: &str,
) -> Result<Option<Reaction>> {
    let row = conn
        .prepare_cached(
            "SELECT r.created_at, u.id, u.name, u.metadata FROM reactions r JOIN users u ON u.id = r.user_id
             WHERE r.message_id = ?1 AND r.user_id = ?2 AND r.emoji = ?3",
        )?
        .query_row([message_id, user_id, emoji], |r| {
            Ok((r.get::<_, Millis>(0)?, RawUser::from_row(r, 1)?))
        })
        .optional()?;
    row.map(|(created_at, user)| {
        Ok(Reaction {
            message_id: message_id.to_owned(),
            user: user.into_user()?,
            emoji: emoji.to_owned(),
            created_at,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::testutil::TestDb;

    /// `reactions_for_message` is SQLite's own, not on the seam; reactions themselves are tested on every
    /// backend in `store/tests/`.
    #[test]
    fn reactions_for_message_lists_them_oldest_first() -> Result<()> {
        let t = TestDb::with_users(&["a", "b"])?;
        let conv = t.conversation(&["a", "b"])?;
        let m = t.send(&conv.id, "a", "hi")?;
        t.db.write(|tx| add_reaction(tx, &m.id, "b", ":tada:", 4))?;
        t.db.write(|tx| add_reaction(tx, &m.id, "b", "👍", 1))?;
        t.db.write(|tx| add_reaction(tx, &m.id, "a", "👍", 3))?;
        t.db.write(|tx| remove_reaction(tx, &m.id, "a", "👍"))?;
        let listed: Vec<_> =
            t.db.read(|c| reactions_for_message(c, &m.id))?
                .into_iter()
                .map(|r| (r.user.id, r.emoji, r.created_at))
                .collect();
        assert_eq!(
            listed,
            [
                ("b".to_owned(), "👍".to_owned(), 1),
                ("b".to_owned(), ":tada:".to_owned(), 4)
            ]
        );
        Ok(())
    }
}
