-- Dunning as data (keel_store::dunning, run by keel_app::dunning).
--
-- A policy is a JSON document (keel_domain::dunning::Policy) with a name. Products, clients
-- and services may each name one; the service's wins, then the client's, then the product's,
-- then the host's default from keel.toml ([dunning]).
CREATE TABLE dunning_policies (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    policy      TEXT NOT NULL,                 -- JSON, validated by the application
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX dunning_policies_name_key ON dunning_policies (lower(name));

ALTER TABLE products ADD COLUMN dunning_policy_id INTEGER REFERENCES dunning_policies (id);
ALTER TABLE clients ADD COLUMN dunning_policy_id INTEGER REFERENCES dunning_policies (id);
ALTER TABLE services ADD COLUMN dunning_policy_id INTEGER REFERENCES dunning_policies (id);

-- Every dunning step taken or due, once per (invoice, step) for invoice steps and per
-- (invoice, service, step) for suspension and termination: the unique index is the promise
-- that a reminder is never sent twice and a service never suspended twice for one invoice.
-- A row is written with the job that performs it (unique key dunning:{id}:{round}).
-- state: queued -> done | skipped (the invoice was paid, the service was no longer active,
-- a later reminder superseded it) ; queued -> held (a payment is in flight until held_until)
-- -> queued again by the next dunning run once nothing is pending.
CREATE TABLE dunning_steps (
    id           INTEGER PRIMARY KEY,
    invoice_id   INTEGER NOT NULL REFERENCES invoices (id),
    service_id   INTEGER REFERENCES services (id),
    step         TEXT NOT NULL,
    due_on       TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'held', 'done', 'skipped')),
    outcome      TEXT,
    held_until   TEXT,
    round        INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    CHECK ((state = 'held') = (held_until IS NOT NULL))
);
CREATE UNIQUE INDEX dunning_steps_key ON dunning_steps (invoice_id, step, COALESCE(service_id, 0));
CREATE INDEX dunning_steps_service_idx ON dunning_steps (service_id, id) WHERE service_id IS NOT NULL;
CREATE INDEX dunning_steps_held_idx ON dunning_steps (held_until) WHERE state = 'held';

-- A payment started at a gateway and not yet confirmed: it holds suspension and termination
-- for the invoice until it resolves or hold_until passes.
CREATE TABLE payment_attempts (
    id           INTEGER PRIMARY KEY,
    invoice_id   INTEGER NOT NULL REFERENCES invoices (id),
    gateway      TEXT NOT NULL,
    reference    TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    hold_until   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    resolved_at  TEXT
);
CREATE UNIQUE INDEX payment_attempts_reference_key ON payment_attempts (gateway, reference);
CREATE INDEX payment_attempts_pending_idx ON payment_attempts (invoice_id) WHERE state = 'pending';
