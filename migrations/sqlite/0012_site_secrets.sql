-- Secrets of this installation that Keel makes itself, by name: `pay_links`, the key pay
-- links and the pay page's forms are signed with when `[server] link_secret` is not set.
-- Written once, insert-if-absent, so every process sharing the database signs with the
-- same key; never updated (a new key would void every link sent).
CREATE TABLE site_secrets (
    name        TEXT NOT NULL PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- The pay page's return address names a payment attempt by Keel's reference alone.
CREATE INDEX payment_attempts_by_reference_idx ON payment_attempts (reference);
