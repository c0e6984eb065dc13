-- Version 4: cluster mode's plugin catalog and node heartbeats (SCALE-OUT.md 2.8, 2.9).
--
-- Both tables are per cluster (`--cluster-name`), so two clusters sharing a database keep their own
-- plugins and nodes.

-- The plugins every node of a cluster runs: `chathooks plugins push` and publisher nodes write it, every
-- node mirrors it into its own folder and loads from there. `sha256` is the component's content hash (as
-- the registry computes it); `manifest` is the `<name>.toml` text, NULL when there is none. `generation`
-- comes from one sequence and grows with every change of any row, so a changed row always has a larger
-- one than before, a removed and re-added plugin included.
CREATE SEQUENCE plugin_catalog_generation;

CREATE TABLE plugin_catalog (
    cluster     TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    sha256      TEXT COLLATE "C" NOT NULL,
    wasm        BYTEA NOT NULL,
    manifest    TEXT COLLATE "C",
    generation  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (cluster, name)
);

-- One row per node that ever ran in a cluster, upserted by the node every second. Times are the database
-- clock's milliseconds, so the age of a heartbeat does not depend on the clocks of the nodes. `plugins`
-- is the JSON array `[{"name", "sha256"}]` of the plugins the node runs; `backend_pid` the PostgreSQL
-- session that wrote the last heartbeat.
CREATE TABLE nodes (
    cluster       TEXT COLLATE "C" NOT NULL,
    node_id       TEXT COLLATE "C" NOT NULL,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL,
    http_addr     TEXT COLLATE "C" NOT NULL,
    version       TEXT COLLATE "C" NOT NULL,
    plugins       TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    is_sequencer  BOOLEAN NOT NULL DEFAULT FALSE,
    backend_pid   INTEGER NOT NULL,
    PRIMARY KEY (cluster, node_id)
);
