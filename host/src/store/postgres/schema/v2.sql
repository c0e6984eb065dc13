-- Version 2: cluster mode's event positions (SCALE-OUT.md 2.4).
--
-- On a node of a cluster there is no writer mutex: writers of different conversations commit in any
-- order, and an identity hands out values at insert, not at commit. So a cluster writer does not write
-- `events` at all: it appends an event draft (after locking the conversation's row, which orders the
-- drafts of one conversation by commit), and the one elected sequencer moves drafts into `events` in
-- batches, giving each the next id. Ids are then gapless and in commit order, which `?since=` resume and
-- the live feed rely on. A server on its own writes `events` directly, as before, and never uses drafts.
CREATE TABLE event_drafts (
    draft            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             TEXT COLLATE "C" NOT NULL,
    conversation_id  TEXT COLLATE "C",
    audience         TEXT COLLATE "C" NOT NULL,
    payload          TEXT COLLATE "C" NOT NULL,
    created_at       BIGINT NOT NULL
);

-- The sequencer of each cluster sharing this database: which node holds the role, the PostgreSQL backend
-- of its lock session (so a challenger can end a hung holder's session) and when it last proved alive.
CREATE TABLE sequencers (
    cluster       TEXT COLLATE "C" PRIMARY KEY,
    node_id       TEXT COLLATE "C" NOT NULL,
    backend_pid   INTEGER NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);
