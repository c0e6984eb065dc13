//! The schema, as an append-only list of migrations numbered by `PRAGMA user_version`.
//!
//! Migration `n` (1-based) moves a database from version `n - 1` to `n`. Each runs in its own IMMEDIATE
//! transaction together with the `user_version` bump, so a crash mid-migration leaves the old version
//! intact. Never edit a migration that has shipped; append a new one.
//!
//! Tables are `STRICT` so a wrong type is an error instead of silently stored, and timestamps are integer
//! milliseconds since the epoch.

use rusqlite::{Connection, TransactionBehavior};

use super::error::{Result, StoreError};

/// Every migration, oldest first. Index `i` holds the step to version `i + 1`.
const MIGRATIONS: &[&str] = &[V1_CHAT, V2_POWERS];

/// Version 1: users and tokens, conversations, messages, receipts, reactions, the event log and the outbox.
const V1_CHAT: &str = r#"
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    metadata    TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL
) STRICT;

-- Bearer tokens, stored as the hex SHA-256 of the token: a leaked database does not leak tokens.
CREATE TABLE tokens (
    hash        TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX tokens_user ON tokens(user_id);

-- last_seq is the seq of the newest message; bumping it in the message's transaction keeps seq gapless.
CREATE TABLE conversations (
    id                        TEXT PRIMARY KEY,
    title                     TEXT,
    metadata                  TEXT NOT NULL DEFAULT '{}',
    distinct_by_participants  INTEGER NOT NULL DEFAULT 0,
    last_seq                  INTEGER NOT NULL DEFAULT 0,
    last_message_id           TEXT,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
) STRICT;

-- last_read_seq is the read high-water mark: unread = messages from others with a larger seq.
-- joined_seq is the conversation's last_seq when the user joined: earlier messages are history to them,
-- neither unread nor waiting for their receipt.
CREATE TABLE participants (
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users(id),
    is_admin         INTEGER NOT NULL DEFAULT 0,
    joined_at        INTEGER NOT NULL,
    joined_seq       INTEGER NOT NULL DEFAULT 0,
    last_read_seq    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX participants_user ON participants(user_id, conversation_id);

-- (sender_id, client_id) makes sends idempotent; SQLite treats NULLs as distinct, so sends without a
-- client_id never collide.
CREATE TABLE messages (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,
    sender_id        TEXT NOT NULL REFERENCES users(id),
    client_id        TEXT,
    body             TEXT NOT NULL,
    metadata         TEXT NOT NULL DEFAULT '{}',
    origin_plugin    TEXT,
    origin_depth     INTEGER,
    created_at       INTEGER NOT NULL,
    edited_at        INTEGER,
    deleted          INTEGER NOT NULL DEFAULT 0,
    UNIQUE (conversation_id, seq),
    UNIQUE (sender_id, client_id)
) STRICT;

CREATE TABLE mentions (
    message_id  TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (message_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX mentions_user ON mentions(user_id);

CREATE TABLE receipts (
    message_id    TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users(id),
    delivered_at  INTEGER,
    read_at       INTEGER,
    PRIMARY KEY (message_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE reactions (
    message_id  TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id),
    emoji       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
) STRICT, WITHOUT ROWID;

-- The event log. AUTOINCREMENT so an id is never reused, even after the newest rows are deleted: clients
-- resume from it. conversation_id has no foreign key: events outlive a deleted conversation.
CREATE TABLE events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    conversation_id  TEXT,
    audience         TEXT NOT NULL,
    payload          TEXT NOT NULL,
    created_at       INTEGER NOT NULL
) STRICT;

-- One row per (audience member, event), so "events for user U after id N" is one index range scan.
CREATE TABLE event_audience (
    user_id   TEXT NOT NULL,
    event_id  INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, event_id)
) STRICT, WITHOUT ROWID;

-- Events not yet handed to the dispatcher's per-plugin queue (see deliveries).
CREATE TABLE outbox (
    event_id  INTEGER PRIMARY KEY REFERENCES events(id)
) STRICT;

-- Live per-plugin work: one row per (event, plugin) until delivered (row deleted) or dead-lettered (row
-- moved). conversation_id is '' for events outside any conversation; it is the ordering group.
CREATE TABLE deliveries (
    event_id         INTEGER NOT NULL REFERENCES events(id),
    plugin           TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'in_flight')),
    PRIMARY KEY (event_id, plugin)
) STRICT, WITHOUT ROWID;
CREATE INDEX deliveries_order ON deliveries(plugin, conversation_id, event_id);
CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    INTEGER NOT NULL REFERENCES events(id),
    plugin      TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    last_error  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
"#;

/// Version 2: plugin powers: plugin timers (the `scheduler` interface) and users' push device tokens.
const V2_POWERS: &str = r#"
-- rev grows on every set, so finishing a firing never undoes a timer set again meanwhile.
CREATE TABLE plugin_timers (
    plugin       TEXT NOT NULL,
    name         TEXT NOT NULL,
    due_at       INTEGER NOT NULL,
    interval_ms  INTEGER,
    payload      TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    rev          INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (plugin, name)
) STRICT, WITHOUT ROWID;
CREATE INDEX plugin_timers_due ON plugin_timers(due_at);

CREATE TABLE devices (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token       TEXT NOT NULL,
    platform    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, token)
) STRICT, WITHOUT ROWID;
"#;

/// The schema version this build migrates to.
pub fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// The file's current schema version (`PRAGMA user_version`; 0 for a new file).
pub fn current_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Brings the database up to [`latest_version`]. Returns the version it started from.
///
/// Refuses ([`StoreError::SchemaTooNew`]) a file from a newer build rather than running against tables it
/// does not understand.
pub fn migrate(conn: &mut Connection) -> Result<i64> {
    let start = current_version(conn)?;
    let supported = latest_version();
    if start > supported {
        return Err(StoreError::SchemaTooNew {
            found: start,
            supported,
        });
    }
    for (step, sql) in (1..).zip(MIGRATIONS.iter()) {
        if step <= start {
            continue;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated between our read and our lock.
        if current_version(&tx)? >= step {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", step)?;
        tx.commit()?;
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_files() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut conn = Connection::open(dir.path().join("m.db"))?;
        assert_eq!(migrate(&mut conn)?, 0);
        assert_eq!(current_version(&conn)?, latest_version());
        assert_eq!(migrate(&mut conn)?, latest_version());
        conn.pragma_update(None, "user_version", latest_version() + 1)?;
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::SchemaTooNew { .. })
        ));
        Ok(())
    }
}
