-- Keel foundation schema (SQLite). Paired with migrations/postgres/0001_foundation.sql:
-- same tables, same columns, same constraint names; only types differ.
-- Money: *_minor INTEGER (i64 minor units) beside a currency TEXT (ISO 4217).

CREATE TABLE resellers (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'closed')),
    created_at  TEXT NOT NULL
);

CREATE TABLE clients (
    id             INTEGER PRIMARY KEY,
    reseller_id    INTEGER REFERENCES resellers (id),  -- tenancy: NULL = owned by the host
    kind           TEXT NOT NULL CHECK (kind IN ('person', 'company')),
    company_name   TEXT,
    first_name     TEXT NOT NULL,
    last_name      TEXT NOT NULL,
    email          TEXT NOT NULL,
    phone          TEXT,
    address_line1  TEXT,
    address_line2  TEXT,
    city           TEXT,
    region         TEXT,
    postal_code    TEXT,
    country        TEXT NOT NULL,
    currency       TEXT NOT NULL,
    language       TEXT NOT NULL,
    tax_exempt     BOOLEAN NOT NULL DEFAULT FALSE,
    tax_id         TEXT,
    status         TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'closed')),
    -- Names, company and email lowercased by Keel (Unicode-aware, unlike SQLite's lower()).
    search_text    TEXT NOT NULL DEFAULT '',
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE UNIQUE INDEX clients_owner_email_key ON clients (COALESCE(reseller_id, 0), lower(email));
CREATE INDEX clients_reseller_idx ON clients (reseller_id, id);

CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    client_id   INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    email       TEXT NOT NULL,
    phone       TEXT,
    role        TEXT NOT NULL DEFAULT 'general' CHECK (role IN ('general', 'billing', 'technical')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX contacts_client_email_key ON contacts (client_id, lower(email));

CREATE TABLE staff (
    id             INTEGER PRIMARY KEY,
    email          TEXT NOT NULL,
    name           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'billing', 'support')),
    active         BOOLEAN NOT NULL DEFAULT TRUE,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE UNIQUE INDEX staff_email_key ON staff (lower(email));

CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,  -- hex SHA-256 of the whole key; the key itself is never stored
    scope         TEXT NOT NULL CHECK (scope IN ('admin', 'reseller', 'client')),
    staff_id      INTEGER REFERENCES staff (id),
    reseller_id   INTEGER REFERENCES resellers (id),
    client_id     INTEGER REFERENCES clients (id),
    created_at    TEXT NOT NULL,
    revoked_at    TEXT,
    last_used_at  TEXT,
    CHECK ((scope = 'admin') OR (scope = 'reseller' AND reseller_id IS NOT NULL) OR (scope = 'client' AND client_id IS NOT NULL))
);
CREATE UNIQUE INDEX api_keys_secret_hash_key ON api_keys (secret_hash);

CREATE TABLE ledger_accounts (
    id                  INTEGER PRIMARY KEY,
    code                TEXT NOT NULL,
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
    currency            TEXT NOT NULL,
    client_id           INTEGER REFERENCES clients (id),
    reseller_id         INTEGER REFERENCES resellers (id),
    credit_limit_minor  INTEGER CHECK (credit_limit_minor IS NULL OR credit_limit_minor >= 0),
    balance_minor       INTEGER NOT NULL DEFAULT 0,  -- cached debits - credits, = SUM(postings)
    created_at          TEXT NOT NULL
);
CREATE UNIQUE INDEX ledger_accounts_code_key ON ledger_accounts (code);
CREATE INDEX ledger_accounts_client_idx ON ledger_accounts (client_id);

CREATE TABLE ledger_entries (
    id                 INTEGER PRIMARY KEY,
    idempotency_key    TEXT NOT NULL,
    memo               TEXT NOT NULL,
    reverses_entry_id  INTEGER REFERENCES ledger_entries (id),
    reason             TEXT,
    created_at         TEXT NOT NULL
);
CREATE UNIQUE INDEX ledger_entries_idempotency_key ON ledger_entries (idempotency_key);
CREATE UNIQUE INDEX ledger_entries_reverses_key ON ledger_entries (reverses_entry_id);

CREATE TABLE ledger_postings (
    id            INTEGER PRIMARY KEY,
    entry_id      INTEGER NOT NULL REFERENCES ledger_entries (id),
    account_id    INTEGER NOT NULL REFERENCES ledger_accounts (id),
    side          TEXT NOT NULL CHECK (side IN ('debit', 'credit')),
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    currency      TEXT NOT NULL
);
CREATE INDEX ledger_postings_entry_idx ON ledger_postings (entry_id);
CREATE INDEX ledger_postings_account_idx ON ledger_postings (account_id, id);

-- Entries and postings are append-only.
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER ledger_postings_no_update BEFORE UPDATE ON ledger_postings
BEGIN SELECT RAISE(ABORT, 'ledger postings are immutable'); END;
CREATE TRIGGER ledger_postings_no_delete BEFORE DELETE ON ledger_postings
BEGIN SELECT RAISE(ABORT, 'ledger postings are immutable'); END;

CREATE TABLE idempotency_keys (
    id               INTEGER PRIMARY KEY,
    principal        TEXT NOT NULL,
    key              TEXT NOT NULL,
    method           TEXT NOT NULL,
    path             TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    response_status  INTEGER,          -- NULL while the first request is still running
    response_body    TEXT,
    created_at       TEXT NOT NULL,
    completed_at     TEXT
);
CREATE UNIQUE INDEX idempotency_keys_principal_key ON idempotency_keys (principal, key);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    actor_kind    TEXT NOT NULL CHECK (actor_kind IN ('staff', 'api_key', 'system')),
    actor_id      INTEGER,
    actor_label   TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject_kind  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    summary       TEXT NOT NULL,
    request_id    TEXT,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
