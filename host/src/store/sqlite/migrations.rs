//! The schema, as an append-only list of migrations numbered by `PRAGMA user_version`.
//!
//! Migration `n` (1-based) moves a database from version `n - 1` to `n`. Each runs in its own IMMEDIATE
//! transaction together with the `user_version` bump, so a crash mid-migration leaves the old version
//! intact. Never edit a migration that has shipped; append a new one.
//!
//! Tables are `STRICT` so a wrong type is an error instead of silently stored, and timestamps are integer
//! milliseconds since the epoch.

use rusqlite::{Connection, TransactionBehavior};

use crate::store::error::{Result, StoreError};

/// Every migration, oldest first. Index `i` holds the step to version `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    V1_CHAT,
    V2_POWERS,
    V3_UNREAD_COUNTS,
    V4_USER_ADMIN,
    V5_PRESENCE,
    V6_THREADS_AND_HELD,
    V7_ROLES_BANS_BLOCKS,
    V8_PLUGIN_OVERRIDES,
    V9_NO_DUE_INDEX,
    V10_LARGE_AUDIENCES,
    V11_UNREAD_PER_READER,
];

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

/// Version 3: each participant's unread count as a column the store keeps up to date (see
/// [`unread`](super::unread)), instead of counting the unread messages whenever a participant is read:
/// that count grew with the conversation's unread messages and ran on every send. The backfill is the
/// formula the column replaces.
const V3_UNREAD_COUNTS: &str = r#"
ALTER TABLE participants ADD COLUMN unread_count INTEGER NOT NULL DEFAULT 0;
UPDATE participants SET unread_count = (
    SELECT count(*) FROM messages m
    WHERE m.conversation_id = participants.conversation_id AND m.seq > participants.last_read_seq
      AND m.sender_id != participants.user_id AND m.deleted = 0
);
"#;

/// Version 4: user administration. Users get `is_bot` (only the server's own bot users, created for plugins,
/// have it; the `bot.` id prefix is reserved for them) and `deactivated_at` (a deactivated user's tokens
/// stop working; their messages and memberships stay). Tokens get an id that admins see and revoke by
/// (the hash stays the secret's only trace), an optional expiry and when they were last used.
///
/// The backfill marks as bots the `bot.` users the server itself created: before this version those had
/// the metadata the server gives a bot and never had a token, while a user created through the admin API
/// always got one. A `bot.` user that is not such a bot squatted a plugin's identity (see
/// [`users::squatted_bot_ids`](super::users::squatted_bot_ids)): it is deactivated here, so its tokens stop
/// working, and the plugin is refused to post as it; its messages stay.
const V4_USER_ADMIN: &str = r#"
ALTER TABLE users ADD COLUMN is_bot INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN deactivated_at INTEGER;
UPDATE users SET is_bot = 1
WHERE substr(id, 1, 4) = 'bot.'
  AND json_extract(metadata, '$.bot') = 1
  AND json_extract(metadata, '$.plugin') = substr(id, 5)
  AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.user_id = users.id);
UPDATE users SET deactivated_at = unixepoch() * 1000
WHERE lower(substr(id, 1, 4)) = 'bot.' AND is_bot = 0;

CREATE TABLE tokens_v4 (
    id            TEXT PRIMARY KEY,
    hash          TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    last_used_at  INTEGER
) STRICT;
INSERT INTO tokens_v4 (id, hash, user_id, created_at)
SELECT printf('t_%011x%s', max(created_at, 0), lower(hex(randomblob(4)))), hash, user_id, created_at FROM tokens;
DROP TABLE tokens;
ALTER TABLE tokens_v4 RENAME TO tokens;
CREATE INDEX tokens_user ON tokens(user_id, created_at);
"#;

/// Version 5: presence (see [`presence`](super::presence)). One row per user and node holding at least
/// one of the user's WebSocket connections; `last_seen_at` on users.
const V5_PRESENCE: &str = r#"
CREATE TABLE presence (
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    node     TEXT NOT NULL,
    since    INTEGER NOT NULL,
    PRIMARY KEY (user_id, node)
) STRICT;
CREATE INDEX presence_node ON presence(node);
ALTER TABLE users ADD COLUMN last_seen_at INTEGER;
"#;

/// Version 6: threads (a message's `parent_id`, and on the parent its reply count and newest reply) and
/// the moderation queue ([`held`](super::held)).
const V6_THREADS_AND_HELD: &str = r#"
ALTER TABLE messages ADD COLUMN parent_id TEXT REFERENCES messages(id) ON DELETE CASCADE;
ALTER TABLE messages ADD COLUMN reply_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN last_reply_at INTEGER;
CREATE INDEX messages_thread ON messages(parent_id, seq) WHERE parent_id IS NOT NULL;
CREATE INDEX messages_threads ON messages(conversation_id, last_reply_at) WHERE reply_count > 0;

CREATE TABLE held_messages (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    sender_id        TEXT NOT NULL REFERENCES users(id),
    client_id        TEXT,
    body             TEXT NOT NULL,
    metadata         TEXT NOT NULL DEFAULT '{}',
    mentions         TEXT NOT NULL DEFAULT '[]',
    origin_plugin    TEXT,
    origin_depth     INTEGER,
    parent_id        TEXT,
    reason           TEXT NOT NULL,
    held_by          TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected')),
    decided_by       TEXT,
    decided_at       INTEGER,
    decision_reason  TEXT,
    created_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX held_messages_queue ON held_messages(conversation_id, state, created_at);
CREATE UNIQUE INDEX held_messages_client_id ON held_messages(sender_id, client_id)
    WHERE client_id IS NOT NULL;
"#;

/// Version 7: roles, owners, bans and blocks (see [`roles`](super::roles), [`bans`](super::bans) and
/// [`blocks`](super::blocks)).
///
/// Each participant gets a `role` (`admin`, `moderator`, `member`); `role` is the truth and `is_admin`
/// stays, written with it (`role = 'admin'`), for queries that predate roles. Existing admins become
/// `admin`. Each conversation gets an `owner_id` (its creator from now on); an existing conversation's
/// owner is its oldest admin (the creator, unless admins were named at creation). A ban keeps a user out of
/// one conversation; a block is between two users, whatever the conversation.
const V7_ROLES_BANS_BLOCKS: &str = r#"
ALTER TABLE participants ADD COLUMN role TEXT NOT NULL DEFAULT 'member'
    CHECK (role IN ('admin', 'moderator', 'member'));
UPDATE participants SET role = 'admin' WHERE is_admin = 1;
ALTER TABLE conversations ADD COLUMN owner_id TEXT REFERENCES users(id);
UPDATE conversations SET owner_id = (
    SELECT p.user_id FROM participants p
    WHERE p.conversation_id = conversations.id AND p.is_admin = 1
    ORDER BY p.joined_at, p.user_id LIMIT 1
);

CREATE TABLE bans (
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users(id),
    banned_by        TEXT NOT NULL,
    reason           TEXT,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE blocks (
    blocker_id  TEXT NOT NULL REFERENCES users(id),
    blocked_id  TEXT NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
) STRICT, WITHOUT ROWID;
"#;

/// Version 8: admins' overrides of plugins, set through the admin API and read at every load of the
/// plugin: `disabled` (1: not loaded, its file stays) and `settings`, a JSON object of values of the
/// manifest's typed settings. `revision` grows by one with each change of a row. Rows outlive the plugin's
/// file, so a plugin removed and deployed again keeps its settings.
const V8_PLUGIN_OVERRIDES: &str = r#"
CREATE TABLE plugin_overrides (
    name        TEXT PRIMARY KEY,
    disabled    INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    settings    TEXT NOT NULL DEFAULT '{}',
    revision    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"#;

/// Version 9: `deliveries` loses its index on `(state, next_attempt_at)`. The dispatcher finds due
/// deliveries in its own memory since long, so the index only served start-up and tools (which scan the
/// table, a few thousand rows at most), while every delivery's insert, start and delete paid for it: one
/// B-tree of three on each, and two entries moved on each start (BENCHMARKS.md, problem 12).
const V9_NO_DUE_INDEX: &str = r#"
DROP INDEX deliveries_due;
"#;

/// Version 10: an audience of more than [`LARGE_AUDIENCE`](crate::store::limits::LARGE_AUDIENCE) users is
/// stored once, in `audiences`, and its events name it by `audience_id` (their `audience` column is
/// empty) instead of writing one `event_audience` row per member. A message to a conversation of 1,000
/// members wrote 1,000 rows at as many places of the `(user_id, event_id)` key: some 300 WAL pages per
/// message (BENCHMARKS.md, problem 15). Events written before keep their rows.
const V10_LARGE_AUDIENCES: &str = r#"
CREATE TABLE audiences (
    id       INTEGER PRIMARY KEY,
    digest   BLOB NOT NULL UNIQUE,
    members  TEXT NOT NULL
) STRICT;

CREATE TABLE audience_members (
    user_id      TEXT NOT NULL,
    audience_id  INTEGER NOT NULL REFERENCES audiences(id),
    PRIMARY KEY (user_id, audience_id)
) STRICT, WITHOUT ROWID;

ALTER TABLE events ADD COLUMN audience_id INTEGER REFERENCES audiences(id);
CREATE INDEX events_audience ON events(audience_id, id) WHERE audience_id IS NOT NULL;
"#;

/// Version 11: unread counts kept per conversation and per reader instead of per participant and
/// message (see [`unread`](super::unread)): a message was an `UPDATE` of every other participant's row,
/// 999 rows for a message to 1,000 members. `unread_count` is now derived:
/// `conversations.live_messages - participants.read_live - participants.own_unread`. The backfill counts
/// each from the messages, so the derived count is the formula of version 3.
const V11_UNREAD_PER_READER: &str = r#"
ALTER TABLE conversations ADD COLUMN live_messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE participants ADD COLUMN read_live INTEGER NOT NULL DEFAULT 0;
ALTER TABLE participants ADD COLUMN own_unread INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET live_messages = (
    SELECT count(*) FROM messages m WHERE m.conversation_id = conversations.id AND m.deleted = 0
);
UPDATE participants SET
    read_live = (
        SELECT count(*) FROM messages m
        WHERE m.conversation_id = participants.conversation_id AND m.seq <= participants.last_read_seq
          AND m.deleted = 0),
    own_unread = (
        SELECT count(*) FROM messages m
        WHERE m.conversation_id = participants.conversation_id AND m.seq > participants.last_read_seq
          AND m.sender_id = participants.user_id AND m.deleted = 0);
ALTER TABLE participants DROP COLUMN unread_count;
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
    report_squatted_bot_ids(conn)?;
    Ok(start)
}

/// Warns, on every open, about each user that holds a plugin bot's id without being that bot (created
/// through the admin API before `bot.` ids were reserved; version 4 deactivated them). Every start rather
/// than once, so an operator who missed the first warning still sees why a plugin cannot post.
fn report_squatted_bot_ids(conn: &Connection) -> Result<()> {
    for id in super::users::squatted_bot_ids(conn)? {
        tracing::warn!(
            user = %id,
            "user {id:?} holds a plugin bot's id but is an ordinary user (created through the admin API \
             before `bot.` ids were reserved): it is deactivated, its messages stay, and the plugin whose \
             bot this id names may not post or join as it; give that plugin another name to give it a \
             bot user of its own"
        );
    }
    Ok(())
}
