//! Dead letters: deliveries that used up their attempts, kept for an admin to list and replay.
//!
//! Dead-lettering a delivery removes it from its (plugin, conversation) queue, so later events flow again.
//! Replaying puts it back as a pending delivery; it then goes first in its queue again (its event id is
//! the oldest), so a plugin sees it before newer events of that conversation that are still queued.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::events::RawEvent;
use crate::model::Millis;
use crate::store::error::{Result, StoreError};
use crate::store::records::DeadLetter;

/// Gives up on a delivery: moves it to `dead_letters` (releasing its queue) and returns the dead letter id.
pub fn dead_letter(
    tx: &Transaction<'_>,
    event_id: i64,
    plugin: &str,
    error: &str,
    now: Millis,
) -> Result<i64> {
    let id = tx
        .query_row(
            "INSERT INTO dead_letters (event_id, plugin, attempts, last_error, created_at)
             SELECT event_id, plugin, attempt, ?3, ?4 FROM deliveries WHERE event_id = ?1 AND plugin = ?2
             RETURNING id",
            params![event_id, plugin, error, now],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::not_found("delivery", format!("{event_id}/{plugin}")))?;
    tx.execute(
        "DELETE FROM deliveries WHERE event_id = ?1 AND plugin = ?2",
        params![event_id, plugin],
    )?;
    Ok(id)
}

/// Records that `event_id` was not queued for `plugin` at all (its backlog was full): a dead letter with no
/// attempt, replayable like any other. Returns its id.
pub fn dead_letter_unqueued(
    tx: &Transaction<'_>,
    event_id: i64,
    plugin: &str,
    reason: &str,
    now: Millis,
) -> Result<i64> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO dead_letters (event_id, plugin, attempts, last_error, created_at)
             VALUES (?1, ?2, 0, ?3, ?4) RETURNING id",
        )?
        .query_row(params![event_id, plugin, reason, now], |r| r.get(0))?)
}

/// Gives up on every pending (not in flight) delivery to `plugin`, oldest event first, with `reason`:
/// they become dead letters, keeping their attempt counts. Returns how many.
pub fn dead_letter_waiting(
    tx: &Transaction<'_>,
    plugin: &str,
    reason: &str,
    now: Millis,
) -> Result<usize> {
    let moved = tx.execute(
        "INSERT INTO dead_letters (event_id, plugin, attempts, last_error, created_at)
         SELECT event_id, plugin, attempt, ?2, ?3 FROM deliveries
         WHERE plugin = ?1 AND state = 'pending' ORDER BY event_id",
        params![plugin, reason, now],
    )?;
    tx.execute(
        "DELETE FROM deliveries WHERE plugin = ?1 AND state = 'pending'",
        [plugin],
    )?;
    Ok(moved)
}

/// How many dead letters there are, for metrics.
pub fn count(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row("SELECT count(*) FROM dead_letters", [], |r| r.get(0))?)
}

/// Dead letters with an id greater than `after_id`, oldest first, at most `limit`.
pub fn dead_letters(conn: &Connection, after_id: i64, limit: u32) -> Result<Vec<DeadLetter>> {
    dead_letters_where(
        conn,
        "d.id > ?1 ORDER BY d.id LIMIT ?2",
        params![after_id, limit],
    )
}

/// Takes dead letter `id` for replay: deletes it and queues a pending delivery of its event to its plugin,
/// due at `now`, continuing its attempt count. Returns the dead letter as it was.
pub fn replay_dead_letter(tx: &Transaction<'_>, id: i64, now: Millis) -> Result<DeadLetter> {
    let letter = dead_letters_where(tx, "d.id = ?1", params![id])?
        .pop()
        .ok_or_else(|| StoreError::not_found("dead letter", id.to_string()))?;
    tx.execute(
        "INSERT INTO deliveries (event_id, plugin, conversation_id, attempt, next_attempt_at, last_error, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')
         ON CONFLICT DO UPDATE SET state = 'pending', next_attempt_at = excluded.next_attempt_at",
        params![
            letter.event.id,
            letter.plugin,
            letter.event.conversation_id.as_deref().unwrap_or(""),
            letter.attempts,
            now,
            letter.last_error
        ],
    )?;
    tx.execute("DELETE FROM dead_letters WHERE id = ?1", [id])?;
    Ok(letter)
}

fn dead_letters_where(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<DeadLetter>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT d.id, d.plugin, d.attempts, d.last_error, d.created_at,
                e.id, e.kind, e.conversation_id, e.audience, e.payload, e.created_at
         FROM dead_letters d JOIN events e ON e.id = d.event_id WHERE {filter}"
    ))?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                RawEvent::from_row_at(r, 5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<(i64, String, u32, String, Millis, RawEvent)>>>()?;
    rows.into_iter()
        .map(|(id, plugin, attempts, last_error, created_at, event)| {
            Ok(DeadLetter {
                id,
                event: event.into_event()?,
                plugin,
                attempts,
                last_error,
                created_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::outbox::{
        backlog, delivery_failed, delivery_succeeded, start_delivery,
    };
    use crate::store::sqlite::testutil::{TestDb, ids};

    #[test]
    fn dead_letters_can_be_listed_and_replayed() -> Result<()> {
        let t = TestDb::with_users(&["a"])?;
        let e1 = t.event(Some("c1"))?;
        let e2 = t.event(Some("c1"))?;
        t.fan_out_all(&ids(&["p"]))?;
        for attempt in 1..=3 {
            assert_eq!(t.db.write(|tx| start_delivery(tx, e1, "p"))?, attempt);
            t.db.write(|tx| delivery_failed(tx, e1, "p", "boom", 0))?;
        }
        let dead = t.db.write(|tx| dead_letter(tx, e1, "p", "gave up", 9))?;
        // The queue moves on to e2 once e1 is dead.
        assert_eq!(t.due(0, &ids(&["p"]))?, vec![(e2, "p".to_owned())]);
        t.db.write(|tx| delivery_succeeded(tx, e2, "p"))?;

        let t = t.reopen()?;
        let letters = t.db.read(|c| dead_letters(c, 0, 10))?;
        assert_eq!(letters.len(), 1);
        assert_eq!(
            (letters[0].id, letters[0].event.id, letters[0].attempts),
            (dead, e1, 3)
        );
        assert_eq!(letters[0].last_error, "gave up");

        let replayed = t.db.write(|tx| replay_dead_letter(tx, dead, 20))?;
        assert_eq!(replayed.plugin, "p");
        assert!(t.db.read(|c| dead_letters(c, 0, 10))?.is_empty());
        assert!(t.due(19, &ids(&["p"]))?.is_empty());
        assert_eq!(t.due(20, &ids(&["p"]))?, vec![(e1, "p".to_owned())]);
        assert_eq!(t.db.write(|tx| start_delivery(tx, e1, "p"))?, 4);
        assert_eq!(t.db.read(backlog)?, vec![("p".to_owned(), 1)]);
        assert!(matches!(
            t.db.write(|tx| replay_dead_letter(tx, dead, 21)),
            Err(StoreError::NotFound { .. })
        ));
        Ok(())
    }

    #[test]
    fn unqueued_and_given_up_deliveries_become_replayable_dead_letters() -> Result<()> {
        let t = TestDb::with_users(&["a"])?;
        let (e1, e2, e3) = (
            t.event(Some("c1"))?,
            t.event(Some("c1"))?,
            t.event(Some("c2"))?,
        );
        t.fan_out_all(&ids(&["p", "q"]))?;
        assert_eq!(t.db.write(|tx| start_delivery(tx, e1, "p"))?, 1);
        let e4 = t.event(Some("c1"))?;
        t.db.write(|tx| dead_letter_unqueued(tx, e4, "p", "backlog full", 5))?;
        // e1 is in flight: it stays; e2 and e3 are given up; q keeps its own.
        assert_eq!(t.db.write(|tx| dead_letter_waiting(tx, "p", "gone", 6))?, 2);
        let letters = t.db.read(|c| dead_letters(c, 0, 10))?;
        let summary: Vec<(i64, &str, u32, &str)> = letters
            .iter()
            .map(|l| {
                (
                    l.event.id,
                    l.plugin.as_str(),
                    l.attempts,
                    l.last_error.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (e4, "p", 0, "backlog full"),
                (e2, "p", 0, "gone"),
                (e3, "p", 0, "gone")
            ]
        );
        assert_eq!(
            t.db.read(backlog)?,
            vec![("p".to_owned(), 1), ("q".to_owned(), 3)]
        );
        t.db.write(|tx| replay_dead_letter(tx, letters[0].id, 7))?;
        assert_eq!(
            t.db.read(backlog)?,
            vec![("p".to_owned(), 2), ("q".to_owned(), 3)]
        );
        Ok(())
    }
}
