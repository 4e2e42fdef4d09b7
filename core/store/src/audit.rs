//! The audit log: append-only (triggers refuse updates and deletes) and hash-chained. Each
//! row's hash covers the previous row's hash and every field of the row, so editing or
//! removing any row breaks the chain from there on, which [`verify`] reports.
//!
//! Rows are written in the same transaction as the change they describe. The chain head
//! lives in `audit_head` (one row); taking it with `UPDATE … RETURNING` locks it until
//! commit, so on PostgreSQL concurrent audited transactions append one after another and
//! the chain never forks (SQLite has a single writer anyway).

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::page::{Cursor, Page};
use crate::{on_db, on_tx};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::TryStreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What to record.
#[derive(Debug, Clone)]
pub struct AuditRecord<'a> {
    /// `staff`, `api_key` or `system`.
    pub actor_kind: &'a str,
    pub actor_id: Option<i64>,
    pub actor_label: &'a str,
    /// Dotted verb: `client.create`, `ledger.adjust`, `api_key.revoke`.
    pub action: &'a str,
    pub subject_kind: &'a str,
    pub subject_id: String,
    /// A summary of the change (kept as the exact JSON text that was hashed).
    pub summary: serde_json::Value,
    pub request_id: Option<&'a str>,
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_label: String,
    pub action: String,
    pub subject_kind: String,
    pub subject_id: String,
    pub summary: String,
    pub request_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The row hash: SHA-256 over the previous hash and every field, each written as
/// `length:value;` so no two different rows can produce the same input.
pub fn row_hash(prev_hash: &str, e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    let seq = e.seq.to_string();
    let at = e.at.to_rfc3339_opts(SecondsFormat::Micros, true);
    let actor_id = e.actor_id.map(|v| v.to_string()).unwrap_or_default();
    let request_id = e.request_id.clone().unwrap_or_default();
    for field in [
        prev_hash,
        &seq,
        &at,
        &e.actor_kind,
        &actor_id,
        &e.actor_label,
        &e.action,
        &e.subject_kind,
        &e.subject_id,
        &e.summary,
        &request_id,
    ] {
        h.update(field.len().to_string().as_bytes());
        h.update(b":");
        h.update(field.as_bytes());
        h.update(b";");
    }
    hex::encode(h.finalize())
}

/// Appends a row to the chain inside the caller's transaction; returns its sequence number.
pub async fn record(
    tx: &mut Tx,
    rec: &AuditRecord<'_>,
    at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let at = crate::db::truncate(at);
    let (seq, prev_hash): (i64, String) = on_tx!(tx, |c| sqlx::query_as(
        "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash"
    )
    .fetch_one(&mut *c)
    .await)?;
    let mut entry = AuditEntry {
        seq,
        at,
        actor_kind: rec.actor_kind.to_string(),
        actor_id: rec.actor_id,
        actor_label: rec.actor_label.to_string(),
        action: rec.action.to_string(),
        subject_kind: rec.subject_kind.to_string(),
        subject_id: rec.subject_id.clone(),
        summary: rec.summary.to_string(),
        request_id: rec.request_id.map(str::to_string),
        prev_hash: prev_hash.clone(),
        hash: String::new(),
    };
    entry.hash = row_hash(&prev_hash, &entry);
    on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO audit_log (seq, at, actor_kind, actor_id, actor_label, action, subject_kind, subject_id, summary, \
         request_id, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    )
    .bind(entry.seq)
    .bind(entry.at)
    .bind(&entry.actor_kind)
    .bind(entry.actor_id)
    .bind(&entry.actor_label)
    .bind(&entry.action)
    .bind(&entry.subject_kind)
    .bind(&entry.subject_id)
    .bind(&entry.summary)
    .bind(&entry.request_id)
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .execute(&mut *c)
    .await.map(|r| r.rows_affected())
    })?;
    on_tx!(tx, |c| sqlx::query(
        "UPDATE audit_head SET hash = $1 WHERE id = 1"
    )
    .bind(&entry.hash)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(seq)
}

const COLUMNS: &str = "seq, at, actor_kind, actor_id, actor_label, action, subject_kind, subject_id, summary, request_id, prev_hash, hash";

/// A page of the log, oldest first.
pub async fn list(
    db: &Db,
    cursor: Option<Cursor>,
    limit: u32,
) -> Result<Page<AuditEntry>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
    let rows: Vec<AuditEntry> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(cursor.map_or(0, |c| c.after_id))
        .bind(i64::from(limit) + 1)
        .fetch_all(p)
        .await)?;
    Ok(Page::from_rows(rows, limit, |e| e.seq))
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub rows: u64,
    /// The first row whose hash, link or sequence is wrong, with what is wrong.
    pub first_break: Option<(i64, String)>,
    pub head_hash: String,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Walks the whole chain (streaming: memory does not grow with the log).
pub async fn verify(db: &Db) -> Result<ChainReport, StoreError> {
    // Read the head first and walk only the rows it covers: a row committed meanwhile is not
    // mistaken for tampering.
    let (head_seq, head_hash): (i64, String) = on_db!(db, |p| sqlx::query_as(
        "SELECT seq, hash FROM audit_head WHERE id = 1"
    )
    .fetch_one(p)
    .await)?;
    let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq <= $1 ORDER BY seq");
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1;
    let mut rows = 0u64;
    let mut first_break = None;
    on_db!(db, |p| {
        let mut stream = sqlx::query_as::<_, AuditEntry>(&sql)
            .bind(head_seq)
            .fetch(p);
        while let Some(e) = stream.try_next().await? {
            rows += 1;
            if first_break.is_none() {
                if e.seq != expected_seq {
                    first_break = Some((
                        e.seq,
                        format!("expected row {expected_seq}: a row is missing"),
                    ));
                } else if e.prev_hash != prev {
                    first_break =
                        Some((e.seq, "its link to the previous row is wrong".to_string()));
                } else if row_hash(&prev, &e) != e.hash {
                    first_break = Some((e.seq, "its content does not match its hash".to_string()));
                }
            }
            prev = e.hash.clone();
            expected_seq = e.seq + 1;
        }
        Ok::<(), sqlx::Error>(())
    })?;
    if first_break.is_none() && (head_seq != expected_seq - 1 || head_hash != prev) {
        first_break = Some((
            head_seq,
            "the chain head does not match the last row: rows were removed".to_string(),
        ));
    }
    Ok(ChainReport {
        rows,
        first_break,
        head_hash,
    })
}
