-- Payments through gateway plugins (the payment spine): a payment attempt records what Keel
-- asked the gateway for (amount, currency, method), what the gateway answered (its
-- reference, the payer's next action, its opaque state such as a poll URL) and where the
-- payment stands. One attempt per (gateway, reference); one per (invoice, request_key), so
-- a double-clicked pay button or a retried API call starts one payment.
ALTER TABLE payment_attempts DROP CONSTRAINT payment_attempts_state_check;
ALTER TABLE payment_attempts ADD CONSTRAINT payment_attempts_state_check CHECK (state IN
    ('pending', 'succeeded', 'failed', 'cancelled', 'expired', 'refunded', 'disputed'));
ALTER TABLE payment_attempts
    ADD COLUMN amount_minor       BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN currency           TEXT NOT NULL DEFAULT '',
    ADD COLUMN method             TEXT,
    ADD COLUMN request_key        TEXT,
    ADD COLUMN provider_reference TEXT,
    ADD COLUMN provider_status    TEXT,
    ADD COLUMN plugin_state       TEXT,
    ADD COLUMN action_kind        TEXT CHECK (action_kind IN ('redirect', 'instructions', 'none')),
    ADD COLUMN action_text        TEXT,
    ADD COLUMN failure            TEXT,
    ADD COLUMN attention          TEXT,
    ADD COLUMN payment_id         BIGINT REFERENCES payments (id),
    ADD COLUMN polled_at          TIMESTAMPTZ,
    ADD COLUMN updated_at         TIMESTAMPTZ;
CREATE UNIQUE INDEX payment_attempts_request_key ON payment_attempts (invoice_id, request_key);
CREATE INDEX payment_attempts_open_idx ON payment_attempts (created_at) WHERE state = 'pending';
