-- Outgoing webhooks (keel_store::webhooks, keel_app::webhooks). An event is written with
-- the change that caused it, and only when an enabled endpoint subscribes to its type; it
-- gets one delivery per such endpoint, delivered by `webhook.deliver` jobs as a signed POST.
--
-- An endpoint: where to POST, which event types (a JSON list; ["*"] = all), and the secret
-- that signs each request (kept in clear because it must sign; shown once, at creation).
CREATE TABLE webhook_endpoints (
    id               BIGSERIAL PRIMARY KEY,
    url              TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    events           TEXT NOT NULL,                  -- JSON list of event types, or ["*"]
    secret           TEXT NOT NULL,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason  TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

-- An event as it happened: its type, what it is about (`invoice:12`), its data (JSON).
-- The body sent is built from this row, so every attempt and every endpoint gets the same
-- bytes.
CREATE TABLE webhook_events (
    id           BIGSERIAL PRIMARY KEY,
    type         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    data         TEXT NOT NULL,                      -- JSON object
    occurred_at  TIMESTAMPTZ NOT NULL
);

-- One event to one endpoint. pending -> delivered (a 2xx) | failed (gave up after the last
-- attempt, kept with its error); staff replay makes a finished delivery pending again.
-- Per (endpoint, subject) deliveries go out in id order: one is attempted only when no
-- earlier one of its chain is pending. `locked_until` keeps two wake-ups of one delivery
-- from posting at once; `wakeups` numbers its jobs (`webhook:delivery:{id}:{n}`).
CREATE TABLE webhook_deliveries (
    id                BIGSERIAL PRIMARY KEY,
    endpoint_id       BIGINT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id          BIGINT NOT NULL REFERENCES webhook_events (id),
    subject           TEXT NOT NULL,                 -- the event's, for the ordering index
    state             TEXT NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts          INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at   TIMESTAMPTZ NOT NULL,
    locked_until      TIMESTAMPTZ,
    wakeups           INTEGER NOT NULL DEFAULT 1,
    last_status_code  INTEGER,
    last_error        TEXT,
    last_response     TEXT,                          -- at most 1,000 characters
    delivered_at      TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (endpoint_id, event_id)
);
-- The chain check: earlier pending deliveries of one (endpoint, subject).
CREATE INDEX webhook_deliveries_chain_idx ON webhook_deliveries (endpoint_id, subject, id)
    WHERE state = 'pending';
-- The delivery log of an endpoint, newest first.
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id);

-- Every attempt: when, what came back (status, a bounded snippet) or what went wrong.
CREATE TABLE webhook_attempts (
    id           BIGSERIAL PRIMARY KEY,
    delivery_id  BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    response     TEXT,
    duration_ms  BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);
