//! Blocks on PostgreSQL; the model is that of [`store::sqlite::blocks`](crate::store::sqlite::blocks).

use super::transaction::Transaction;
use tokio_postgres::Row;

use super::users::missing_users;
use super::values::user_at;
use crate::model::{Block, Millis};
use crate::store::error::{Result, StoreError};
use crate::store::records::Outcome;

/// Block columns with the blocked user; each query appends its filter.
macro_rules! block_select {
    ($rest:literal) => {
        concat!(
            "SELECT b.blocker_id, b.created_at, u.id, u.name, u.metadata
             FROM blocks b JOIN users u ON u.id = b.blocked_id ",
            $rest
        )
    };
}

fn block_row(r: &Row) -> Result<Block> {
    Ok(Block {
        blocker_id: r.try_get(0)?,
        created_at: r.try_get(1)?,
        blocked: user_at(r, 2)?,
    })
}

/// `blocker`'s block of `blocked`, if any.
pub async fn block(tx: &Transaction<'_>, blocker: &str, blocked: &str) -> Result<Option<Block>> {
    let stmt = tx
        .prepare_cached(block_select!(
            "WHERE b.blocker_id = $1 AND b.blocked_id = $2"
        ))
        .await?;
    tx.query_opt(&stmt, &[&blocker, &blocked])
        .await?
        .map(|r| block_row(&r))
        .transpose()
}

/// The users `blocker` blocked, oldest block first.
pub async fn blocks_of(tx: &Transaction<'_>, blocker: &str) -> Result<Vec<Block>> {
    let stmt = tx
        .prepare_cached(block_select!(
            "WHERE b.blocker_id = $1 ORDER BY b.created_at, b.blocked_id"
        ))
        .await?;
    let rows = tx.query(&stmt, &[&blocker]).await?;
    rows.iter().map(block_row).collect()
}

/// Records that `blocker` blocks `blocked`; blocking again keeps the first block.
pub async fn block_user(
    tx: &Transaction<'_>,
    blocker: &str,
    blocked: &str,
    now: Millis,
) -> Result<Outcome<Block>> {
    let pair = [blocker.to_owned(), blocked.to_owned()];
    if let Some(missing) = missing_users(tx, &pair).await?.first() {
        return Err(StoreError::not_found("user", missing.as_str()));
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .await?;
    let inserted = tx.execute(&stmt, &[&blocker, &blocked, &now]).await?;
    let value = block(tx, blocker, blocked)
        .await?
        .ok_or_else(|| StoreError::not_found("block", blocked))?;
    Ok(Outcome {
        value,
        changed: inserted > 0,
    })
}

/// Lifts `blocker`'s block of `blocked`; the block, if there was one.
pub async fn unblock_user(
    tx: &Transaction<'_>,
    blocker: &str,
    blocked: &str,
) -> Result<Option<Block>> {
    let Some(existing) = block(tx, blocker, blocked).await? else {
        return Ok(None);
    };
    let stmt = tx
        .prepare_cached("DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2")
        .await?;
    tx.execute(&stmt, &[&blocker, &blocked]).await?;
    Ok(Some(existing))
}
