-- Plugin-private key-value storage (the keel:plugin `kv` import). Every row belongs to
-- one plugin; the host passes the calling plugin's id, never one the plugin chose.
CREATE TABLE plugin_kv (
    plugin_id   TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       BLOB NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (plugin_id, key)
);
