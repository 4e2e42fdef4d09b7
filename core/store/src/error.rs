//! Store errors. Unique-constraint violations are named by the constraint (index) that
//! fired, so callers can turn them into meaningful answers ("already exists", "already
//! processed") instead of a 500.

use keel_domain::ledger::LedgerError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; `constraint` is the index name shared by
    /// both engines' migrations (for example `clients_owner_email_key`).
    #[error("conflicts with an existing record ({constraint})")]
    Conflict { constraint: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(ref db) if db.is_unique_violation() => StoreError::Conflict {
                constraint: db
                    .constraint()
                    .map(str::to_string)
                    .unwrap_or_else(|| sqlite_constraint(db.message())),
            },
            other => StoreError::Database(other),
        }
    }
}

/// SQLite names the columns, not the index: "UNIQUE constraint failed: clients.email".
/// Map the column lists of our unique indexes back to their names.
fn sqlite_constraint(message: &str) -> String {
    let columns = message.trim_start_matches("UNIQUE constraint failed: ");
    // Indexes on expressions are named: "UNIQUE constraint failed: index 'clients_owner_email_key'".
    if let Some(name) = columns
        .strip_prefix("index '")
        .and_then(|r| r.strip_suffix('\''))
    {
        return name.to_string();
    }
    let known = [
        ("clients.", "clients_owner_email_key"),
        ("contacts.", "contacts_client_email_key"),
        ("staff.", "staff_email_key"),
        ("api_keys.", "api_keys_secret_hash_key"),
        ("ledger_accounts.", "ledger_accounts_code_key"),
        (
            "ledger_entries.idempotency_key",
            "ledger_entries_idempotency_key",
        ),
        (
            "ledger_entries.reverses_entry_id",
            "ledger_entries_reverses_key",
        ),
        ("idempotency_keys.", "idempotency_keys_principal_key"),
        ("product_groups.slug", "product_groups_slug_key"),
        ("products.slug", "products_slug_key"),
        ("promotions.code", "promotions_code_key"),
        ("exchange_rates.", "exchange_rates_pair_key"),
        (
            "invoice_lines.service_id",
            "invoice_lines_service_period_key",
        ),
        ("invoice_lines.invoice_id", "invoice_lines_position_key"),
        ("invoices.number", "invoices_number_key"),
        ("payments.method", "payments_reference_key"),
        ("orders.client_id", "orders_idempotency_key"),
        ("credit_notes.number", "credit_notes_number_key"),
        ("number_sequences.", "number_sequences_pkey"),
    ];
    known
        .iter()
        .find(|(prefix, _)| columns.starts_with(prefix))
        .map(|(_, name)| name.to_string())
        .unwrap_or_else(|| columns.to_string())
}
