//! Stored responses for the API's `Idempotency-Key` (Stripe's semantics): the first request
//! under a key runs and its response is kept; a repeat with the same request gets that
//! response again; a repeat with a different request is refused; a repeat while the first
//! is still running is told so. Keys are kept for the host's retention (`[server]
//! idempotency_keep_hours`, 24 by default), then the daily cleanup [`purge`]s them.
//!
//! A stored response is readable by anyone who reads the database or a backup, so the API
//! never hands a secret to [`complete`] or [`complete_in`]: an answer that shows a secret
//! once (a new API key, a webhook signing secret) is stored as the refusal its replay gets
//! instead.

use crate::db::Db;
use crate::error::StoreError;
use crate::{on_db, on_tx};
use chrono::{DateTime, Duration, Utc};

/// What [`begin`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// This request owns the key: run it, then [`complete`] with its response.
    Started(i64),
    /// The same request already ran: send this response again.
    Replay { status: u16, body: String },
    /// The key was used for a different request; names what differs (`method`, `path`, `body`).
    Mismatch { differs: Vec<&'static str> },
    /// The first request under this key has not finished yet.
    InProgress,
}

/// How long an unfinished request owns its key; after that (the process that ran it died),
/// a retry may run again.
pub const LOCK_TIMEOUT: Duration = Duration::seconds(60);

/// Claims `key` for `principal`, or reports what happened to it before ([`LOCK_TIMEOUT`]).
pub async fn begin(
    db: &Db,
    principal: &str,
    key: &str,
    method: &str,
    path: &str,
    request_hash: &str,
    at: DateTime<Utc>,
) -> Result<Begin, StoreError> {
    begin_with_timeout(
        db,
        principal,
        key,
        method,
        path,
        request_hash,
        at,
        LOCK_TIMEOUT,
    )
    .await
}

/// [`begin`] with the time an unfinished request owns its key.
#[allow(clippy::too_many_arguments)]
pub async fn begin_with_timeout(
    db: &Db,
    principal: &str,
    key: &str,
    method: &str,
    path: &str,
    request_hash: &str,
    at: DateTime<Utc>,
    lock_timeout: Duration,
) -> Result<Begin, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        method: String,
        path: String,
        request_hash: String,
        response_status: Option<i32>,
        response_body: Option<String>,
        created_at: DateTime<Utc>,
    }
    let mut tx = db.begin().await?;
    let inserted: Option<i64> = on_tx!(&mut tx, |c| sqlx::query_scalar(
        "INSERT INTO idempotency_keys (principal, key, method, path, request_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (principal, key) DO NOTHING RETURNING id"
    )
    .bind(principal)
    .bind(key)
    .bind(method)
    .bind(path)
    .bind(request_hash)
    .bind(at)
    .fetch_optional(&mut *c)
    .await)?;
    if let Some(id) = inserted {
        tx.commit().await?;
        return Ok(Begin::Started(id));
    }
    let row: Row = on_tx!(&mut tx, |c| sqlx::query_as(
        "SELECT id, method, path, request_hash, response_status, response_body, created_at \
         FROM idempotency_keys WHERE principal = $1 AND key = $2"
    )
    .bind(principal)
    .bind(key)
    .fetch_one(&mut *c)
    .await)?;
    let differs: Vec<&'static str> = [
        ("method", row.method != method),
        ("path", row.path != path),
        ("body", row.request_hash != request_hash),
    ]
    .into_iter()
    .filter_map(|(what, differs)| differs.then_some(what))
    .collect();
    if !differs.is_empty() {
        return Ok(Begin::Mismatch { differs });
    }
    if let (Some(status), Some(body)) = (row.response_status, row.response_body) {
        return Ok(Begin::Replay {
            status: status as u16,
            body,
        });
    }
    if at - row.created_at < lock_timeout {
        return Ok(Begin::InProgress);
    }
    // The first attempt died without an answer: take the key over, once.
    let taken = on_tx!(&mut tx, |c| {
        sqlx::query(
        "UPDATE idempotency_keys SET created_at = $1 WHERE id = $2 AND created_at = $3 AND response_status IS NULL"
    )
    .bind(at)
    .bind(row.id)
    .bind(row.created_at)
    .execute(&mut *c)
    .await.map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(if taken == 1 {
        Begin::Started(row.id)
    } else {
        Begin::InProgress
    })
}

/// Stores the response of the request that owns the key. The first answer stored is the
/// one kept: when the use case already stored it ([`complete_in`]), or an attempt that took
/// the key over answered first, this changes nothing.
pub async fn complete(
    db: &Db,
    id: i64,
    status: u16,
    body: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    // The same statement as a use case's own answer: only an unanswered key is answered.
    let mut tx = db.begin().await?;
    complete_in(&mut tx, id, status, body, at).await?;
    tx.commit().await
}

/// Stores the response inside the use case's own transaction, so the answer commits with
/// the change it reports: a crash after that commit leaves a key a retry replays, never one
/// it runs again (a second client, a refusal as a duplicate). Only an unanswered key is
/// answered; the API layer's own [`complete`] afterwards then changes nothing.
///
/// Returns false when the key was answered already: another attempt took the key over
/// after the lock timeout and committed first (on PostgreSQL this statement waits for that
/// attempt's transaction). The caller must then roll back, or the request would take effect
/// twice under one key.
pub async fn complete_in(
    tx: &mut crate::Tx,
    id: i64,
    status: u16,
    body: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let answered = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE idempotency_keys SET response_status = $1, response_body = $2, completed_at = $3 \
         WHERE id = $4 AND response_status IS NULL"
    )
    .bind(i32::from(status))
    .bind(body)
    .bind(at)
    .bind(id)
    .execute(&mut *c)
    .await.map(|r| r.rows_affected())
    })?;
    Ok(answered == 1)
}

/// Releases a key whose request ended without a response worth keeping (it was refused
/// before doing anything), so the client may retry it.
pub async fn release(db: &Db, id: i64) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, |c| sqlx::query(
        "DELETE FROM idempotency_keys WHERE id = $1 AND response_status IS NULL"
    )
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await
}

/// One key as stored (what a replay would send).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Stored {
    pub created_at: DateTime<Utc>,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
}

/// The stored row of `principal`'s `key`, if any (for tools and tests that check what is
/// kept).
pub async fn find(db: &Db, principal: &str, key: &str) -> Result<Option<Stored>, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_as(
        "SELECT created_at, response_status, response_body FROM idempotency_keys \
         WHERE principal = $1 AND key = $2"
    )
    .bind(principal)
    .bind(key)
    .fetch_optional(p)
    .await)?)
}

/// Forgets keys created before `before`: a retry after that runs as a new request. The
/// cleanup passes now minus the retention, which must outlast any client's retry window.
pub async fn purge(db: &Db, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut tx = db.begin().await?;
    let n = on_tx!(&mut tx, |c| sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < $1"
    )
    .bind(before)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(n)
}
