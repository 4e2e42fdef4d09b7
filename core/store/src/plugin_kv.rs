//! Plugin-private key-value rows (`plugin_kv`), behind the plugin host's `kv` import.
//! Every function takes the plugin's id: a plugin never names another's rows.

use chrono::{DateTime, Utc};

use crate::db::Db;
use crate::error::StoreError;
use crate::on_tx;

/// The value stored under `(plugin, key)`.
pub async fn get(db: &Db, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(crate::on_db!(db, |p| sqlx::query_scalar(
        "SELECT value FROM plugin_kv WHERE plugin_id = $1 AND key = $2"
    )
    .bind(plugin)
    .bind(key)
    .fetch_optional(p)
    .await)?)
}

/// What [`set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    Stored,
    /// The key is new and the plugin already holds `max_keys` keys.
    QuotaReached,
}

/// Stores `value` under `(plugin, key)`; a new key is refused once the plugin holds
/// `max_keys`. One transaction, so concurrent calls cannot both take the last slot on
/// SQLite (one writer); on PostgreSQL the count may overshoot by the number of
/// concurrent first writes, which the quota tolerates.
pub async fn set(
    db: &Db,
    plugin: &str,
    key: &str,
    value: &[u8],
    max_keys: u64,
    at: DateTime<Utc>,
) -> Result<SetOutcome, StoreError> {
    let mut tx = db.begin().await?;
    let updated = on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE plugin_kv SET value = $3, updated_at = $4 WHERE plugin_id = $1 AND key = $2"
    )
    .bind(plugin)
    .bind(key)
    .bind(value)
    .bind(at)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    if updated == 0 {
        let held: i64 = on_tx!(&mut tx, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM plugin_kv WHERE plugin_id = $1"
        )
        .bind(plugin)
        .fetch_one(&mut *c)
        .await)?;
        if held as u64 >= max_keys {
            return Ok(SetOutcome::QuotaReached);
        }
        on_tx!(&mut tx, |c| {
            sqlx::query(
            "INSERT INTO plugin_kv (plugin_id, key, value, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
        )
        .bind(plugin)
        .bind(key)
        .bind(value)
        .bind(at)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected())
        })?;
    }
    tx.commit().await?;
    Ok(SetOutcome::Stored)
}

/// Removes `(plugin, key)`; true when it was there.
pub async fn delete(db: &Db, plugin: &str, key: &str) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    let removed = on_tx!(&mut tx, |c| sqlx::query(
        "DELETE FROM plugin_kv WHERE plugin_id = $1 AND key = $2"
    )
    .bind(plugin)
    .bind(key)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(removed > 0)
}
