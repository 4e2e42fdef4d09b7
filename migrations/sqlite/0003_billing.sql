-- Keel billing schema (SQLite). Paired with migrations/postgres/0003_billing.sql:
-- same tables, same columns, same constraint names; only types differ.
-- Money: *_minor INTEGER (i64 minor units) beside a currency TEXT (ISO 4217).
-- Rates and quantities that are not whole numbers: TEXT holding a rust_decimal.
-- Tenancy: rows owned by a client copy the client's reseller_id (the owner never changes),
-- so scoped reads filter on an indexed column without a join.

-- Exchange rates: 1 unit of `base` = `rate` units of `quote`, from `valid_from` on.
-- An issued invoice copies the rate it used; later rates never change it.
CREATE TABLE exchange_rates (
    id          INTEGER PRIMARY KEY,
    base        TEXT NOT NULL,
    quote       TEXT NOT NULL,
    rate        TEXT NOT NULL,
    valid_from  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX exchange_rates_pair_key ON exchange_rates (base, quote, valid_from);

-- Tax rules by country and region, two levels; the second may be compound.
CREATE TABLE tax_rules (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    country     TEXT NOT NULL,            -- ISO 3166 alpha-2, or '*' for any
    region      TEXT,                     -- NULL: the whole country
    level       INTEGER NOT NULL CHECK (level IN (1, 2)),
    rate        TEXT NOT NULL,            -- percent, a decimal
    compound    BOOLEAN NOT NULL DEFAULT FALSE,
    tax_class   TEXT NOT NULL DEFAULT 'standard',
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX tax_rules_place_key ON tax_rules (tax_class, country, COALESCE(region, ''), level);

CREATE TABLE client_groups (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL,
    currency            TEXT,
    tax_exempt          BOOLEAN,
    wallet_auto_apply   BOOLEAN,
    invoice_lead_days   INTEGER CHECK (invoice_lead_days IS NULL OR invoice_lead_days BETWEEN 0 AND 90),
    billing_day         INTEGER CHECK (billing_day IS NULL OR billing_day BETWEEN 1 AND 31),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE UNIQUE INDEX client_groups_name_key ON client_groups (lower(name));

-- A client's own billing settings; NULL inherits from the group, then the host default.
ALTER TABLE clients ADD COLUMN group_id INTEGER REFERENCES client_groups (id);
ALTER TABLE clients ADD COLUMN wallet_auto_apply BOOLEAN;
ALTER TABLE clients ADD COLUMN invoice_lead_days INTEGER CHECK (invoice_lead_days IS NULL OR invoice_lead_days BETWEEN 0 AND 90);
ALTER TABLE clients ADD COLUMN billing_day INTEGER CHECK (billing_day IS NULL OR billing_day BETWEEN 1 AND 31);

CREATE TABLE product_groups (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL,
    hidden      BOOLEAN NOT NULL DEFAULT FALSE,
    sort_order  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX product_groups_slug_key ON product_groups (slug);

CREATE TABLE products (
    id           INTEGER PRIMARY KEY,
    group_id     INTEGER NOT NULL REFERENCES product_groups (id),
    kind         TEXT NOT NULL CHECK (kind IN ('hosting', 'domain', 'other', 'addon')),
    name         TEXT NOT NULL,
    slug         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    pay_type     TEXT NOT NULL CHECK (pay_type IN ('free', 'one_time', 'recurring')),
    tax_class    TEXT,                    -- NULL: not taxed
    provisioner  TEXT,                    -- plugin id, used by the provisioning issue
    registrar    TEXT,                    -- plugin id, used by the domains issue
    stock        INTEGER CHECK (stock IS NULL OR stock >= 0),  -- NULL: unlimited
    sold         INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0),
    retired_at   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    CHECK (stock IS NULL OR sold <= stock)
);
CREATE UNIQUE INDEX products_slug_key ON products (slug);

-- Add-ons a product offers (an add-on is a product of kind 'addon').
CREATE TABLE product_addons (
    product_id  INTEGER NOT NULL REFERENCES products (id),
    addon_id    INTEGER NOT NULL REFERENCES products (id),
    PRIMARY KEY (product_id, addon_id)
);

-- cycle: monthly … triennially, one_time, free.
CREATE TABLE product_prices (
    product_id       INTEGER NOT NULL REFERENCES products (id),
    currency         TEXT NOT NULL,
    cycle            TEXT NOT NULL,
    price_minor      INTEGER NOT NULL CHECK (price_minor >= 0),
    setup_fee_minor  INTEGER NOT NULL DEFAULT 0 CHECK (setup_fee_minor >= 0),
    PRIMARY KEY (product_id, currency, cycle)
);

CREATE TABLE product_options (
    id          INTEGER PRIMARY KEY,
    product_id  INTEGER NOT NULL REFERENCES products (id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('dropdown', 'radio', 'yes_no', 'quantity')),
    min_qty     INTEGER NOT NULL DEFAULT 0 CHECK (min_qty >= 0),
    max_qty     INTEGER CHECK (max_qty IS NULL OR max_qty >= min_qty),
    sort_order  INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX product_options_name_key ON product_options (product_id, name);

-- The choices of an option. yes_no has one value (the "yes"); quantity has one (the unit).
CREATE TABLE option_values (
    id          INTEGER PRIMARY KEY,
    option_id   INTEGER NOT NULL REFERENCES product_options (id),
    name        TEXT NOT NULL,
    sort_order  INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX option_values_name_key ON option_values (option_id, name);

CREATE TABLE option_prices (
    value_id         INTEGER NOT NULL REFERENCES option_values (id),
    currency         TEXT NOT NULL,
    cycle            TEXT NOT NULL,
    price_minor      INTEGER NOT NULL CHECK (price_minor >= 0),
    setup_fee_minor  INTEGER NOT NULL DEFAULT 0 CHECK (setup_fee_minor >= 0),
    PRIMARY KEY (value_id, currency, cycle)
);

CREATE TABLE promotions (
    id                   INTEGER PRIMARY KEY,
    code                 TEXT NOT NULL,
    kind                 TEXT NOT NULL CHECK (kind IN ('percent', 'fixed')),
    percent              TEXT,            -- kind = percent: a decimal in (0, 100]
    recurring            BOOLEAN NOT NULL DEFAULT FALSE,
    starts_on            TEXT,
    ends_on              TEXT,
    max_uses             INTEGER CHECK (max_uses IS NULL OR max_uses > 0),
    max_uses_per_client  INTEGER CHECK (max_uses_per_client IS NULL OR max_uses_per_client > 0),
    uses                 INTEGER NOT NULL DEFAULT 0,
    cycles               TEXT NOT NULL DEFAULT '',  -- comma separated; empty: all
    created_at           TEXT NOT NULL,
    CHECK (max_uses IS NULL OR uses <= max_uses)
);
CREATE UNIQUE INDEX promotions_code_key ON promotions (code);

CREATE TABLE promotion_amounts (           -- kind = fixed: an amount per currency
    promotion_id  INTEGER NOT NULL REFERENCES promotions (id),
    currency      TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    PRIMARY KEY (promotion_id, currency)
);

CREATE TABLE promotion_products (           -- none: all products
    promotion_id  INTEGER NOT NULL REFERENCES promotions (id),
    product_id    INTEGER NOT NULL REFERENCES products (id),
    PRIMARY KEY (promotion_id, product_id)
);

CREATE TABLE orders (
    id               INTEGER PRIMARY KEY,
    client_id        INTEGER NOT NULL REFERENCES clients (id),
    reseller_id      INTEGER REFERENCES resellers (id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'active', 'cancelled', 'fraud')),
    currency         TEXT NOT NULL,
    promotion_id     INTEGER REFERENCES promotions (id),
    idempotency_key  TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE UNIQUE INDEX orders_idempotency_key ON orders (client_id, idempotency_key);
CREATE INDEX orders_client_idx ON orders (client_id, id);

CREATE TABLE promotion_uses (
    promotion_id  INTEGER NOT NULL REFERENCES promotions (id),
    client_id     INTEGER NOT NULL REFERENCES clients (id),
    order_id      INTEGER NOT NULL REFERENCES orders (id),
    PRIMARY KEY (promotion_id, order_id)
);
CREATE INDEX promotion_uses_client_idx ON promotion_uses (promotion_id, client_id);

CREATE TABLE services (
    id                  INTEGER PRIMARY KEY,
    client_id           INTEGER NOT NULL REFERENCES clients (id),
    reseller_id         INTEGER REFERENCES resellers (id),
    order_id            INTEGER REFERENCES orders (id),
    product_id          INTEGER NOT NULL REFERENCES products (id),
    parent_id           INTEGER REFERENCES services (id),   -- an add-on's service
    label               TEXT NOT NULL,                    -- product name, or the domain
    cycle               TEXT NOT NULL,
    currency            TEXT NOT NULL,
    recurring_minor     INTEGER NOT NULL CHECK (recurring_minor >= 0),  -- after a recurring promotion
    promotion_id        INTEGER REFERENCES promotions (id),
    status              TEXT NOT NULL CHECK (status IN ('pending', 'active', 'suspended', 'terminated', 'cancelled')),
    registration_date   TEXT NOT NULL,
    anniversary         TEXT NOT NULL,   -- period 0 starts here; due dates keep its day
    next_period         INTEGER NOT NULL DEFAULT 0,  -- the first period not yet invoiced
    next_due_date       TEXT,            -- start of next_period; NULL when nothing recurs
    cancel_kind         TEXT CHECK (cancel_kind IS NULL OR cancel_kind IN ('immediate', 'end_of_period')),
    cancel_reason       TEXT,
    cancel_on           TEXT,
    provision_intent    TEXT,              -- 'create', 'suspend', … recorded for the provisioner issue
    pending_credit_minor INTEGER NOT NULL DEFAULT 0 CHECK (pending_credit_minor >= 0),  -- a downgrade's credit, taken off the next renewal
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX services_client_idx ON services (client_id, id);
CREATE INDEX services_order_idx ON services (order_id);
CREATE INDEX services_reseller_idx ON services (reseller_id, id);
-- The billing run walks renewable services client by client.
CREATE INDEX services_billing_idx ON services (client_id, id) WHERE status IN ('active', 'suspended');

CREATE TABLE service_options (
    service_id  INTEGER NOT NULL REFERENCES services (id),
    option_id   INTEGER NOT NULL REFERENCES product_options (id),
    value_id    INTEGER NOT NULL REFERENCES option_values (id),
    quantity    INTEGER NOT NULL DEFAULT 1 CHECK (quantity >= 0),
    PRIMARY KEY (service_id, option_id)
);

-- Every status change of a service, with its reason: the history a support agent reads.
CREATE TABLE service_events (
    id           INTEGER PRIMARY KEY,
    service_id   INTEGER NOT NULL REFERENCES services (id),
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    actor_label  TEXT NOT NULL,
    at           TEXT NOT NULL
);
CREATE INDEX service_events_service_idx ON service_events (service_id, id);

-- Gap-free counters: one row per (name, scope), moved inside the issuing transaction, so a
-- rolled-back issue gives its number back and concurrent issuers queue on the row.
CREATE TABLE number_sequences (
    name        TEXT NOT NULL,
    scope       TEXT NOT NULL,
    next_value  INTEGER NOT NULL CHECK (next_value >= 1),
    PRIMARY KEY (name, scope)
);

CREATE TABLE invoices (
    id               INTEGER PRIMARY KEY,
    client_id        INTEGER NOT NULL REFERENCES clients (id),
    reseller_id      INTEGER REFERENCES resellers (id),
    number           TEXT,                 -- assigned when issued, never before
    kind             TEXT NOT NULL DEFAULT 'standard' CHECK (kind IN ('standard', 'top_up')),
    status           TEXT NOT NULL CHECK (status IN ('draft', 'unpaid', 'paid', 'cancelled', 'refunded', 'collections')),
    currency         TEXT NOT NULL,
    tax_mode         TEXT NOT NULL CHECK (tax_mode IN ('exclusive', 'inclusive')),
    issue_date       TEXT,
    due_date         TEXT,
    subtotal_minor   INTEGER NOT NULL DEFAULT 0,   -- lines net of discount and tax
    tax_minor        INTEGER NOT NULL DEFAULT 0,
    total_minor      INTEGER NOT NULL DEFAULT 0,
    paid_minor       INTEGER NOT NULL DEFAULT 0,   -- payments and wallet applied
    credited_minor   INTEGER NOT NULL DEFAULT 0,   -- credit notes against what is owed
    refunded_minor   INTEGER NOT NULL DEFAULT 0,   -- credit notes of money already paid (to the wallet)
    exchange_rate    TEXT,                 -- 1 invoice currency = rate base currency, frozen at issue
    base_currency    TEXT,
    buyer            TEXT,                 -- JSON, frozen at issue
    seller           TEXT,                 -- JSON, frozen at issue
    late_fee_at      TEXT,               -- set once, when the late fee was added
    issue_entry_id   INTEGER REFERENCES ledger_entries (id),
    idempotency_key  TEXT,                 -- the request that created it (top-ups), when given
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    paid_at          TEXT,
    CHECK (total_minor >= 0 AND paid_minor >= 0 AND credited_minor >= 0 AND refunded_minor >= 0),
    CHECK (paid_minor + credited_minor <= total_minor AND refunded_minor <= paid_minor),
    CHECK ((status = 'draft') = (number IS NULL))
);
CREATE UNIQUE INDEX invoices_number_key ON invoices (number);
CREATE INDEX invoices_client_idx ON invoices (client_id, id);
CREATE UNIQUE INDEX invoices_idempotency_key ON invoices (client_id, idempotency_key);
CREATE INDEX invoices_reseller_idx ON invoices (reseller_id, id);
CREATE INDEX invoices_open_idx ON invoices (due_date, id) WHERE status = 'unpaid';

-- kind: service (a period of a service), setup, option, addon, discount, proration, late_fee,
-- top_up, manual.
CREATE TABLE invoice_lines (
    id              INTEGER PRIMARY KEY,
    invoice_id      INTEGER NOT NULL REFERENCES invoices (id),
    position        INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    service_id      INTEGER REFERENCES services (id),
    period_index    INTEGER,                 -- kind = service: which period of the service
    period_start    TEXT,
    period_end      TEXT,
    description     TEXT NOT NULL,
    quantity        INTEGER NOT NULL DEFAULT 1,
    unit_minor      INTEGER NOT NULL,
    discount_minor  INTEGER NOT NULL DEFAULT 0,
    net_minor       INTEGER NOT NULL,
    tax1_name       TEXT,
    tax1_rate       TEXT,
    tax1_minor      INTEGER NOT NULL DEFAULT 0,
    tax2_name       TEXT,
    tax2_rate       TEXT,
    tax2_minor      INTEGER NOT NULL DEFAULT 0,
    total_minor     INTEGER NOT NULL,
    credited_minor  INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX invoice_lines_position_key ON invoice_lines (invoice_id, position);
-- One invoice per (service, period), whoever bills it: the renewal key.
CREATE UNIQUE INDEX invoice_lines_service_period_key ON invoice_lines (service_id, period_index) WHERE kind = 'service';

-- Money received against an invoice: staff-recorded (bank transfer, cash), wallet, gateways.
CREATE TABLE payments (
    id           INTEGER PRIMARY KEY,
    invoice_id   INTEGER NOT NULL REFERENCES invoices (id),
    client_id    INTEGER NOT NULL REFERENCES clients (id),
    reseller_id  INTEGER REFERENCES resellers (id),
    method       TEXT NOT NULL,
    reference    TEXT NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency     TEXT NOT NULL,
    entry_id     INTEGER NOT NULL REFERENCES ledger_entries (id),
    note         TEXT,
    actor_label  TEXT NOT NULL,
    received_on  TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
-- A bank reference or receipt number can be recorded once per method.
CREATE UNIQUE INDEX payments_reference_key ON payments (method, reference);
CREATE INDEX payments_invoice_idx ON payments (invoice_id, id);

CREATE TABLE credit_notes (
    id           INTEGER PRIMARY KEY,
    number       TEXT NOT NULL,
    invoice_id   INTEGER NOT NULL REFERENCES invoices (id),
    client_id    INTEGER NOT NULL REFERENCES clients (id),
    reseller_id  INTEGER REFERENCES resellers (id),
    currency     TEXT NOT NULL,
    net_minor    INTEGER NOT NULL,
    tax_minor    INTEGER NOT NULL,
    total_minor  INTEGER NOT NULL CHECK (total_minor > 0),
    disposition  TEXT NOT NULL CHECK (disposition IN ('receivable', 'wallet', 'refund')),
    reason       TEXT NOT NULL,
    entry_id     INTEGER NOT NULL REFERENCES ledger_entries (id),
    issue_date   TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX credit_notes_number_key ON credit_notes (number);
CREATE INDEX credit_notes_invoice_idx ON credit_notes (invoice_id);

CREATE TABLE credit_note_lines (
    credit_note_id   INTEGER NOT NULL REFERENCES credit_notes (id),
    invoice_line_id  INTEGER NOT NULL REFERENCES invoice_lines (id),
    net_minor        INTEGER NOT NULL,
    tax_minor        INTEGER NOT NULL,
    total_minor      INTEGER NOT NULL,
    PRIMARY KEY (credit_note_id, invoice_line_id)
);

-- One row per `keel billing run`, for the operator; correctness does not depend on it.
CREATE TABLE billing_runs (
    id               INTEGER PRIMARY KEY,
    as_of            TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    services         INTEGER NOT NULL DEFAULT 0,
    invoices         INTEGER NOT NULL DEFAULT 0
);
