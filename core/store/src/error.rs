//! Store errors. Unique-constraint violations are named by the constraint (index) that
//! fired, so callers can turn them into meaningful answers ("already exists", "already
//! processed") instead of a 500.

use crate::constraints;
use keel_domain::ledger::LedgerError;

/// A stored value that does not parse: `what` names it, `value` is what was found.
pub(crate) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("invalid {what} {value:?} in the database"))
}

/// A decimal stored as text (rates, quantities), or [`corrupt`].
pub(crate) fn parse_decimal(what: &str, text: &str) -> Result<rust_decimal::Decimal, StoreError> {
    text.parse().map_err(|_| corrupt(what, text))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; `constraint` is the name PostgreSQL reports
    /// for it, on both engines (`clients_owner_email_key`, `plugin_kv_pkey`): the paired
    /// migrations name their unique indexes alike, and [`sqlite_constraint`] maps SQLite's
    /// column lists back to the names.
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

/// The constraint a SQLite unique violation broke, named as PostgreSQL names it.
///
/// SQLite names an index on expressions ("UNIQUE constraint failed: index
/// 'clients_owner_email_key'") and otherwise lists the key's columns ("UNIQUE constraint
/// failed: invoices.client_id, invoices.idempotency_key"), which [`constraints::by_columns`]
/// maps back to the name (derived from the migrations, see [`crate::constraints`]). A
/// message of another shape is returned as it is.
pub fn sqlite_constraint(message: &str) -> String {
    let Some(rest) = message.strip_prefix("UNIQUE constraint failed: ") else {
        return message.to_string();
    };
    if let Some(name) = rest
        .strip_prefix("index '")
        .and_then(|r| r.strip_suffix('\''))
    {
        return name.to_string();
    }
    let mut table = None;
    let mut columns = Vec::new();
    for qualified in rest.split(", ") {
        let Some((t, column)) = qualified.split_once('.') else {
            return rest.to_string();
        };
        if *table.get_or_insert(t) != t {
            return rest.to_string();
        }
        columns.push(column);
    }
    table
        .and_then(|t| constraints::by_columns(t, &columns))
        .map_or_else(|| rest.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::sqlite_constraint;

    #[test]
    fn sqlite_messages_name_the_constraint_postgresql_reports() {
        let table = [
            (
                "UNIQUE constraint failed: index 'staff_email_key'",
                "staff_email_key",
            ),
            (
                "UNIQUE constraint failed: invoices.client_id, invoices.idempotency_key",
                "invoices_idempotency_key",
            ),
            (
                "UNIQUE constraint failed: invoices.number",
                "invoices_number_key",
            ),
            (
                "UNIQUE constraint failed: number_sequences.name, number_sequences.scope",
                "number_sequences_pkey",
            ),
            ("UNIQUE constraint failed: resellers.id", "resellers_pkey"),
            // Not a key the migrations made: the columns, as SQLite gave them.
            (
                "UNIQUE constraint failed: invoices.currency",
                "invoices.currency",
            ),
            ("something else", "something else"),
        ];
        for (message, expected) in table {
            assert_eq!(sqlite_constraint(message), expected, "{message}");
        }
    }
}
