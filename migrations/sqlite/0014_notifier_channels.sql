-- Notifier channels (WhatsApp first): messages the outbox sends through a notifier plugin.
-- keel_store::notifications, keel_app::notifications, docs/notifications.md.

-- A client's consent to be written to on a channel, at an address (E.164 for WhatsApp):
-- WhatsApp's policy asks for an explicit opt-in, so its time and source are kept. An
-- opt-out (the API, or a STOP reply) keeps the row with its own time and source; a new
-- opt-in clears it.
CREATE TABLE channel_consents (
    client_id       INTEGER NOT NULL REFERENCES clients (id),
    channel         TEXT NOT NULL,
    address         TEXT NOT NULL,
    opted_in_at     TEXT NOT NULL,
    opt_in_source   TEXT NOT NULL,
    opted_out_at    TEXT,
    opt_out_source  TEXT,
    PRIMARY KEY (client_id, channel)
);
CREATE INDEX channel_consents_address_idx ON channel_consents (channel, address);

-- What a plugin channel needs beside the outbox's own columns:
-- template: the approved template and its rendered parameters (JSON), sent outside the
--   customer-service window, or why there is none;
-- provider_id: the provider's id for the sent message (a wamid), which its delivery
--   receipts name; delivery: the latest receipt (accepted, sent, delivered, read, failed),
--   its detail (a failure's reason) and when Keel recorded it.
ALTER TABLE notifications ADD COLUMN template TEXT;
ALTER TABLE notifications ADD COLUMN provider_id TEXT;
ALTER TABLE notifications ADD COLUMN delivery TEXT
    CHECK (delivery IN ('accepted', 'sent', 'delivered', 'read', 'failed'));
ALTER TABLE notifications ADD COLUMN delivery_detail TEXT;
ALTER TABLE notifications ADD COLUMN delivery_at TEXT;
CREATE UNIQUE INDEX notifications_provider_key ON notifications (channel, provider_id);

-- Messages people sent in on a channel, each once (the provider's id), matched to a client
-- by the address it opted in with (or its phone); the latest one from an address opens the
-- channel's customer-service window. The conversation hub turns them into conversations.
CREATE TABLE inbound_messages (
    id           INTEGER PRIMARY KEY,
    channel      TEXT NOT NULL,
    provider_id  TEXT NOT NULL,
    sender       TEXT NOT NULL,
    client_id    INTEGER REFERENCES clients (id),
    body         TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX inbound_messages_provider_key ON inbound_messages (channel, provider_id);
CREATE INDEX inbound_messages_sender_idx ON inbound_messages (channel, sender, received_at);
CREATE INDEX inbound_messages_client_idx ON inbound_messages (client_id, id);
