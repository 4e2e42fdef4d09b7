//! Gap-free number sequences for documents (invoices, credit notes, receipts).
//!
//! Numbers come from [`next_numbers`], one row per (sequence, scope) moved inside the
//! issuing transaction: a rollback gives the numbers back, concurrent issuers queue on the
//! row, so numbers are unique and gap-free.

use crate::db::Tx;
use crate::error::StoreError;
use crate::on_tx;

/// Reserves `count` consecutive numbers of sequence `name` in `scope` (for example
/// `("invoice", "2026")`) and returns the first. The counter row is created on first use
/// and moved in the caller's transaction: on PostgreSQL concurrent callers wait on the row
/// lock; on SQLite the single writer serializes them. A rollback returns the numbers.
pub async fn next_numbers(
    tx: &mut Tx,
    name: &str,
    scope: &str,
    count: i64,
) -> Result<i64, StoreError> {
    if count < 1 {
        return Err(StoreError::Corrupt(format!(
            "asked for {count} numbers of sequence {name}"
        )));
    }
    let first: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "INSERT INTO number_sequences (name, scope, next_value) VALUES ($1, $2, 1 + $3) \
         ON CONFLICT (name, scope) DO UPDATE SET next_value = number_sequences.next_value + $3 \
         RETURNING next_value - $3"
    )
    .bind(name)
    .bind(scope)
    .bind(count)
    .fetch_one(&mut *c)
    .await)?;
    Ok(first)
}
