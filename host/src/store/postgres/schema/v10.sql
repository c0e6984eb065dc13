-- Version 10: an audience of more than 100 users is stored once (see store/sqlite/migrations.rs, version
-- 10, and store/sqlite/events.rs).
--
-- `audiences` holds each large audience's sorted member list (JSON text, as `events.audience` holds a
-- small one), found again by the SHA-256 of that text; `audience_members` has a row per member. An event
-- with a large audience names it by `audience_id` and its own `audience` is empty, instead of one
-- `event_audience` row per member. Events written before keep their rows.
CREATE TABLE audiences (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest   BYTEA NOT NULL UNIQUE,
    members  TEXT COLLATE "C" NOT NULL
);

CREATE TABLE audience_members (
    user_id      TEXT COLLATE "C" NOT NULL,
    audience_id  BIGINT NOT NULL REFERENCES audiences(id),
    PRIMARY KEY (user_id, audience_id)
);

ALTER TABLE events ADD COLUMN audience_id BIGINT REFERENCES audiences(id);
CREATE INDEX events_audience ON events (audience_id, id) WHERE audience_id IS NOT NULL;
