-- Version 1 of the PostgreSQL schema: the SQLite schema at its version 4 (store/sqlite/migrations.rs) plus
-- the plugin KV tables (store/sqlite/kv.rs, kv_quota.rs), translated as SCALE-OUT.md 2.2 says, except
-- where a literal translation would answer differently from SQLite (the JSON columns, the collation, the
-- KV keys):
--   * every integer is BIGINT (timestamps stay integer milliseconds since the epoch; counters and seqs
--     read as i64 exactly as from SQLite, so the Rust side has one integer type);
--   * flags SQLite keeps as 0/1 INTEGER are BOOLEAN;
--   * ids stay TEXT, and every TEXT column is COLLATE "C": SQLite compares text byte by byte, and so must
--     `ORDER BY id` and the `id > $after` paging here, whatever collation the database was created with
--     (under en_US "Bob" sorts after "alice", under "C" before it, as in SQLite). Byte comparison is also
--     the cheapest;
--   * JSON columns (metadata, audience, payload) are TEXT holding the JSON as serde_json wrote it, not
--     JSONB as SCALE-OUT.md planned: JSONB refuses the escape \u0000, which SQLite stores without
--     complaint, so a metadata string holding a NUL would fail here and pass there. serde_json always
--     writes a NUL as that six-character escape, so the text itself never holds one. Nothing queries
--     inside these columns, so JSONB's operators and indexes are not missed, and its parse on every
--     insert is saved; a later migration converts them if SQL ever needs to look inside;
--   * plugin KV keys are BYTEA (the key's UTF-8): SQLite lets a key hold a NUL, which TEXT refuses, and
--     BYTEA compares and prefixes by bytes like SQLite's TEXT;
--   * BLOB is BYTEA; STRICT and WITHOUT ROWID have no equivalent and are not needed;
--   * AUTOINCREMENT is an identity column: its sequence never hands out an id twice either. SQLite's
--     implicit rowid, which orders tokens issued in the same millisecond, is an identity column too.
-- Indexes and constraints are those of SQLite, under the same names.

CREATE TABLE users (
    id              TEXT COLLATE "C" PRIMARY KEY,
    name            TEXT COLLATE "C" NOT NULL,
    metadata        TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    created_at      BIGINT NOT NULL,
    -- Only the server's own bot users, created for plugins, have it; the `bot.` id prefix is theirs.
    is_bot          BOOLEAN NOT NULL DEFAULT false,
    -- A deactivated user's tokens stop working; their messages and memberships stay.
    deactivated_at  BIGINT
);

-- Bearer tokens: `hash` is the hex SHA-256 of the token (a leaked database does not leak tokens), `id` what
-- admins see and revoke by.
CREATE TABLE tokens (
    id            TEXT COLLATE "C" PRIMARY KEY,
    hash          TEXT COLLATE "C" NOT NULL UNIQUE,
    user_id       TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    -- Issue order, for tokens issued in the same millisecond (SQLite orders them by rowid).
    issued        BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX tokens_user ON tokens(user_id, created_at);

-- last_seq is the seq of the newest message; bumping it in the message's transaction keeps seq gapless
-- (and, on PostgreSQL, its row lock is what serialises the writers of one conversation: SCALE-OUT.md 2.3).
CREATE TABLE conversations (
    id                        TEXT COLLATE "C" PRIMARY KEY,
    title                     TEXT COLLATE "C",
    metadata                  TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    distinct_by_participants  BOOLEAN NOT NULL DEFAULT false,
    last_seq                  BIGINT NOT NULL DEFAULT 0,
    last_message_id           TEXT COLLATE "C",
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);

-- last_read_seq is the read high-water mark; joined_seq the conversation's last_seq when the user joined
-- (earlier messages are history to them); unread_count the unread messages, kept up to date by the store.
CREATE TABLE participants (
    conversation_id  TEXT COLLATE "C" NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id          TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    is_admin         BOOLEAN NOT NULL DEFAULT false,
    joined_at        BIGINT NOT NULL,
    joined_seq       BIGINT NOT NULL DEFAULT 0,
    last_read_seq    BIGINT NOT NULL DEFAULT 0,
    unread_count     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX participants_user ON participants(user_id, conversation_id);

-- (sender_id, client_id) makes sends idempotent; PostgreSQL, like SQLite, treats NULLs as distinct in a
-- UNIQUE constraint, so sends without a client_id never collide.
CREATE TABLE messages (
    id               TEXT COLLATE "C" PRIMARY KEY,
    conversation_id  TEXT COLLATE "C" NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq              BIGINT NOT NULL,
    sender_id        TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    client_id        TEXT COLLATE "C",
    body             TEXT COLLATE "C" NOT NULL,
    metadata         TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    origin_plugin    TEXT COLLATE "C",
    origin_depth     BIGINT,
    created_at       BIGINT NOT NULL,
    edited_at        BIGINT,
    deleted          BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (conversation_id, seq),
    UNIQUE (sender_id, client_id)
);

CREATE TABLE mentions (
    message_id  TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX mentions_user ON mentions(user_id);

CREATE TABLE receipts (
    message_id    TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id       TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    delivered_at  BIGINT,
    read_at       BIGINT,
    PRIMARY KEY (message_id, user_id)
);

CREATE TABLE reactions (
    message_id  TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    emoji       TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);

-- The event log that clients resume from. An identity never reuses an id, but unlike SQLite's single
-- writer it does not give commit order (ids are taken at insert, not at commit): readers that resume "after
-- id N" need the sequencer's positions of SCALE-OUT.md 2.4, which a later version adds. conversation_id
-- has no foreign key: events outlive a deleted conversation. audience is the JSON array of user ids.
CREATE TABLE events (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             TEXT COLLATE "C" NOT NULL,
    conversation_id  TEXT COLLATE "C",
    audience         TEXT COLLATE "C" NOT NULL,
    payload          TEXT COLLATE "C" NOT NULL,
    created_at       BIGINT NOT NULL
);

-- One row per (audience member, event), so "events for user U after id N" is one index range scan.
CREATE TABLE event_audience (
    user_id   TEXT COLLATE "C" NOT NULL,
    event_id  BIGINT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, event_id)
);

-- Events not yet handed to the dispatcher's per-plugin queue (see deliveries).
CREATE TABLE outbox (
    event_id  BIGINT PRIMARY KEY REFERENCES events(id)
);

-- Live per-plugin work: one row per (event, plugin) until delivered (row deleted) or dead-lettered (row
-- moved). conversation_id is '' for events outside any conversation; it is the ordering group.
CREATE TABLE deliveries (
    event_id         BIGINT NOT NULL REFERENCES events(id),
    plugin           TEXT COLLATE "C" NOT NULL,
    conversation_id  TEXT COLLATE "C" NOT NULL,
    attempt          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT COLLATE "C",
    state            TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'in_flight')),
    PRIMARY KEY (event_id, plugin)
);
CREATE INDEX deliveries_order ON deliveries(plugin, conversation_id, event_id);
CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at);

CREATE TABLE dead_letters (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    BIGINT NOT NULL REFERENCES events(id),
    plugin      TEXT COLLATE "C" NOT NULL,
    attempts    BIGINT NOT NULL,
    last_error  TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Plugin timers (the `scheduler` power). rev grows on every set, so finishing a firing never undoes a
-- timer set again meanwhile. payload is the plugin's own string, not necessarily JSON.
CREATE TABLE plugin_timers (
    plugin       TEXT COLLATE "C" NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    due_at       BIGINT NOT NULL,
    interval_ms  BIGINT,
    payload      TEXT COLLATE "C" NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    rev          BIGINT NOT NULL DEFAULT 1,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (plugin, name)
);
CREATE INDEX plugin_timers_due ON plugin_timers(due_at);

-- Users' push device tokens.
CREATE TABLE devices (
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token       TEXT COLLATE "C" NOT NULL,
    platform    TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, token)
);

-- Plugin key-value storage, every row namespaced by the plugin's name (filled in by the host, never by the
-- plugin). In SQLite these live in a file of their own (kv.db); here, in the same database.
CREATE TABLE plugin_kv (
    plugin      TEXT COLLATE "C" NOT NULL,
    key         BYTEA NOT NULL,
    value       BYTEA NOT NULL,
    expires_at  BIGINT,
    PRIMARY KEY (plugin, key)
);

-- Each plugin's key count and bytes (keys plus values), updated in the transaction of every KV write so a
-- quota check is one row read.
CREATE TABLE plugin_kv_usage (
    plugin  TEXT COLLATE "C" PRIMARY KEY,
    keys    BIGINT NOT NULL,
    bytes   BIGINT NOT NULL
);
