//! Blocks: one user blocking another. A row per (blocker, blocked); what a block prevents (a one-to-one
//! message to the blocker) is the chat layer's rule (`chat/blocks.rs`).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::users::{RawUser, missing_users};
use super::writer::Writing;
use crate::model::{Block, Millis};
use crate::store::error::{Result, StoreError};
use crate::store::records::Outcome;

/// Block columns with the blocked user.
const BLOCK_SELECT: &str = "SELECT b.blocker_id, b.created_at, u.id, u.name, u.metadata
     FROM blocks b JOIN users u ON u.id = b.blocked_id";

fn block_row(r: &Row<'_>) -> rusqlite::Result<(String, Millis, RawUser)> {
    Ok((r.get(0)?, r.get(1)?, RawUser::from_row(r, 2)?))
}

fn into_block((blocker_id, created_at, blocked): (String, Millis, RawUser)) -> Result<Block> {
    Ok(Block {
        blocker_id,
        blocked: blocked.into_user()?,
        created_at,
    })
}

/// `blocker`'s block of `blocked`, if any.
pub fn block(conn: &Connection, blocker: &str, blocked: &str) -> Result<Option<Block>> {
    let sql = format!("{BLOCK_SELECT} WHERE b.blocker_id = ?1 AND b.blocked_id = ?2");
    let row = conn
        .prepare_cached(&sql)?
        .query_row([blocker, blocked], block_row)
        .optional()?;
    row.map(into_block).transpose()
}

/// The users `blocker` blocked, oldest block first.
pub fn blocks_of(conn: &Connection, blocker: &str) -> Result<Vec<Block>> {
    let sql = format!("{BLOCK_SELECT} WHERE b.blocker_id = ?1 ORDER BY b.created_at, b.blocked_id");
    let rows = conn
        .prepare_cached(&sql)?
        .query_map([blocker], block_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(into_block).collect()
}

/// Records that `blocker` blocks `blocked` ([`StoreError::NotFound`] for an unknown user); blocking
/// again keeps the first block (`changed == false`).
pub fn block_user(
    tx: &Writing<'_>,
    blocker: &str,
    blocked: &str,
    now: Millis,
) -> Result<Outcome<Block>> {
    let pair = [blocker.to_owned(), blocked.to_owned()];
    if let Some(missing) = missing_users(tx, &pair)?.first() {
        return Err(StoreError::not_found("user", missing.as_str()));
    }
    let inserted = tx
        .prepare_cached(
            "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![blocker, blocked, now])?;
    let value =
        block(tx, blocker, blocked)?.ok_or_else(|| StoreError::not_found("block", blocked))?;
    Ok(Outcome {
        value,
        changed: inserted > 0,
    })
}

/// Lifts `blocker`'s block of `blocked`; the block, if there was one.
pub fn unblock_user(tx: &Writing<'_>, blocker: &str, blocked: &str) -> Result<Option<Block>> {
    let Some(existing) = block(tx, blocker, blocked)? else {
        return Ok(None);
    };
    tx.prepare_cached("DELETE FROM blocks WHERE blocker_id = ?1 AND blocked_id = ?2")?
        .execute([blocker, blocked])?;
    Ok(Some(existing))
}
