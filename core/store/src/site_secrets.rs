//! Secrets this installation made itself (`site_secrets`), by name: written once,
//! insert-if-absent, so two processes that both find none agree on the one that landed;
//! never updated or deleted.

use chrono::{DateTime, Utc};

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::{on_db, on_tx};

const INSERT: &str = "INSERT INTO site_secrets (name, value, created_at) VALUES ($1, $2, $3) \
                      ON CONFLICT (name) DO NOTHING";
const SELECT: &str = "SELECT value FROM site_secrets WHERE name = $1";

/// The secret named `name`; `candidate` is stored first when there is none. Returns the
/// stored value, which is `candidate` only when this call wrote it.
pub async fn get_or_insert(
    db: &Db,
    name: &str,
    candidate: &str,
    at: DateTime<Utc>,
) -> Result<String, StoreError> {
    let mut tx = db.begin().await?;
    let value = get_or_insert_in(&mut tx, name, candidate, at).await?;
    tx.commit().await?;
    Ok(value)
}

/// [`get_or_insert`] inside the caller's transaction (a row it writes lands with the
/// caller's commit, or not at all).
pub async fn get_or_insert_in(
    tx: &mut Tx,
    name: &str,
    candidate: &str,
    at: DateTime<Utc>,
) -> Result<String, StoreError> {
    on_tx!(&mut *tx, |c| sqlx::query(INSERT)
        .bind(name)
        .bind(candidate)
        .bind(at)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(on_tx!(&mut *tx, |c| sqlx::query_scalar(SELECT)
        .bind(name)
        .fetch_one(&mut *c)
        .await)?)
}

/// The secret named `name`, if one was stored.
pub async fn get(db: &Db, name: &str) -> Result<Option<String>, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_scalar(SELECT)
        .bind(name)
        .fetch_optional(p)
        .await)?)
}
