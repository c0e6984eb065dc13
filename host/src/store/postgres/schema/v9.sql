-- Version 9: admins' overrides of plugins (see store/sqlite/migrations.rs, version 8).
--
-- Set through the admin API and read at every load of the plugin: `disabled` (not loaded, its file
-- stays) and `settings`, a JSON object (as text, as SQLite keeps it) of values of the manifest's typed
-- settings. `revision` grows by one with each change of a row, so a cluster node that remembers the
-- revisions it loaded sees which plugins to load again. Rows are per cluster (`--cluster-name`; '' for
-- a server on its own), as the plugin catalog is, and outlive the plugin's file.
CREATE TABLE plugin_overrides (
    cluster     TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    settings    TEXT NOT NULL DEFAULT '{}',
    revision    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (cluster, name)
);
