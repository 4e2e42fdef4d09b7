-- Payments through gateway plugins (the payment spine): a payment attempt records what Keel
-- asked the gateway for (amount, currency, method), what the gateway answered (its
-- reference, the payer's next action, its opaque state such as a poll URL) and where the
-- payment stands. One attempt per (gateway, reference); one per (invoice, request_key), so
-- a double-clicked pay button or a retried API call starts one payment.
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt, rows kept.
CREATE TABLE payment_attempts_new (
    id                 INTEGER PRIMARY KEY,
    invoice_id         INTEGER NOT NULL REFERENCES invoices (id),
    gateway            TEXT NOT NULL,
    reference          TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN
                           ('pending', 'succeeded', 'failed', 'cancelled', 'expired', 'refunded', 'disputed')),
    hold_until         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    resolved_at        TEXT,
    amount_minor       INTEGER NOT NULL DEFAULT 0,
    currency           TEXT NOT NULL DEFAULT '',
    method             TEXT,
    request_key        TEXT,
    provider_reference TEXT,
    provider_status    TEXT,
    plugin_state       TEXT,
    action_kind        TEXT CHECK (action_kind IN ('redirect', 'instructions', 'none')),
    action_text        TEXT,
    failure            TEXT,
    attention          TEXT,
    payment_id         INTEGER REFERENCES payments (id),
    polled_at          TEXT,
    updated_at         TEXT
);
INSERT INTO payment_attempts_new (id, invoice_id, gateway, reference, state, hold_until, created_at, resolved_at)
    SELECT id, invoice_id, gateway, reference, state, hold_until, created_at, resolved_at FROM payment_attempts;
DROP TABLE payment_attempts;
ALTER TABLE payment_attempts_new RENAME TO payment_attempts;
CREATE UNIQUE INDEX payment_attempts_reference_key ON payment_attempts (gateway, reference);
CREATE UNIQUE INDEX payment_attempts_request_key ON payment_attempts (invoice_id, request_key);
CREATE INDEX payment_attempts_pending_idx ON payment_attempts (invoice_id) WHERE state = 'pending';
CREATE INDEX payment_attempts_open_idx ON payment_attempts (created_at) WHERE state = 'pending';
