-- Notifications (keel_store::notifications, keel_app::notifications): an outbox of messages
-- to clients, rendered from templates in the transaction of the event that causes them
-- (a dunning step, a payment), each sent by a `notification.send` job through its channel.
-- state: pending -> sent | failed (after the job's last attempt, the error kept) ;
-- skipped (the client turned the channel off, or the channel is not configured).
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY,
    client_id    INTEGER NOT NULL REFERENCES clients (id),
    event        TEXT NOT NULL,
    channel      TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    language     TEXT NOT NULL,
    subject      TEXT NOT NULL,
    body_text    TEXT NOT NULL,
    body_html    TEXT NOT NULL,
    invoice_id   INTEGER REFERENCES invoices (id),     -- its PDF is attached
    state        TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'skipped')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    -- What caused it, once per channel: `dunning:{step}`, `paid:{invoice}`, …
    unique_key   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    sent_at      TEXT
);
CREATE UNIQUE INDEX notifications_key ON notifications (unique_key, channel);
CREATE INDEX notifications_client_idx ON notifications (client_id, id);

-- A client's choice per channel (no row: on).
CREATE TABLE notification_preferences (
    client_id   INTEGER NOT NULL REFERENCES clients (id),
    channel     TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (client_id, channel)
);
