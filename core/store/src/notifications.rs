//! The notification outbox and clients' channel preferences.
//!
//! A notification is written once per (cause, channel) (`notifications_key`), in the
//! transaction of the event that causes it; its job marks it sent or failed. Skipped ones
//! are deleted by the daily cleanup once past their retention ([`delete_skipped`]).

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::{on_db, on_tx};
use chrono::{DateTime, Utc};
use keel_domain::ids::{ClientId, InvoiceId};

keel_domain::named_enum!(
    /// Where a notification is in the outbox.
    NotificationState {
        /// Its `notification.send` job sends it (and retries it).
        Pending = "pending",
        /// Handed to the channel (`sent_at` says when).
        Sent = "sent",
        /// Every attempt failed; `last_error` says why.
        Failed = "failed",
        /// Never to be sent (no address, the channel off, the client opted out): kept with
        /// `last_error` saying why, deleted after `[notifications] keep_skipped_days`.
        Skipped = "skipped",
    }
);

impl TryFrom<String> for NotificationState {
    type Error = StoreError;
    fn try_from(text: String) -> Result<Self, StoreError> {
        NotificationState::parse(&text)
            .ok_or_else(|| crate::error::corrupt("notification state", &text))
    }
}

/// A rendered message to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification<'a> {
    pub client_id: ClientId,
    pub event: &'a str,
    pub channel: &'a str,
    pub recipient: &'a str,
    pub language: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: &'a str,
    pub invoice_id: Option<InvoiceId>,
    /// [`NotificationState::Pending`] (its job sends it) or [`NotificationState::Skipped`]
    /// (with `note` saying why).
    pub state: NotificationState,
    pub note: Option<&'a str>,
    pub unique_key: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct NotificationRow {
    pub id: i64,
    pub client_id: i64,
    pub event: String,
    pub channel: String,
    pub recipient: String,
    pub language: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub invoice_id: Option<i64>,
    #[sqlx(try_from = "String")]
    pub state: NotificationState,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub unique_key: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, client_id, event, channel, recipient, language, subject, body_text, body_html, \
    invoice_id, state, attempts, last_error, unique_key, created_at, sent_at";

/// Writes a notification; `None` when one with the same cause and channel exists.
pub async fn insert(
    tx: &mut Tx,
    n: &NewNotification<'_>,
    at: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO notifications (client_id, event, channel, recipient, language, subject, body_text, \
           body_html, invoice_id, state, last_error, unique_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING RETURNING id"
    )
    .bind(n.client_id.get())
    .bind(n.event)
    .bind(n.channel)
    .bind(n.recipient)
    .bind(n.language)
    .bind(n.subject)
    .bind(n.body_text)
    .bind(n.body_html)
    .bind(n.invoice_id.map(|i| i.get()))
    .bind(n.state.as_str())
    .bind(n.note)
    .bind(n.unique_key)
    .bind(at)
    .fetch_optional(&mut *c)
    .await
    })?)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<NotificationRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM notifications WHERE id = $1");
    Ok(on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(p)
        .await)?)
}

/// A client's notifications, newest first.
pub async fn of_client(
    db: &Db,
    client: ClientId,
    limit: u32,
) -> Result<Vec<NotificationRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE client_id = $1 ORDER BY id DESC LIMIT $2"
    );
    Ok(on_db!(db, |p| sqlx::query_as(&sql)
        .bind(client.get())
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?)
}

/// Records one sending attempt: [`NotificationState::Sent`] (with the time), or still
/// pending, or failed, with the error. Only a pending notification moves; false otherwise
/// (sent already).
pub async fn record_attempt(
    db: &Db,
    id: i64,
    state: NotificationState,
    error: Option<&str>,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sent_at = (state == NotificationState::Sent).then_some(at);
    let mut tx = db.begin().await?;
    let n = on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE notifications SET state = $1, last_error = $2, attempts = attempts + 1, \
           sent_at = COALESCE($3, sent_at) \
         WHERE id = $4 AND state = $5"
    )
    .bind(state.as_str())
    .bind(error)
    .bind(sent_at)
    .bind(id)
    .bind(NotificationState::Pending.as_str())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(n == 1)
}

/// Deletes at most `limit` `skipped` notifications written before `before`; returns how
/// many. Pending, sent and failed ones stay whatever their age. The daily cleanup calls it
/// in batches (`[notifications] keep_skipped_days`): a skipped message was never sent, and
/// one is written for every event of a client who turned email off, or of every client
/// while `[email]` is not set. Its (cause, channel) key is freed with it; Keel's causes (a
/// dunning step, an issued or paid invoice, a lifted suspension) happen once.
pub async fn delete_skipped(db: &Db, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
    // The state is written into the statement, not bound, so PostgreSQL's planner matches
    // the partial index `notifications_skipped_idx` (WHERE state = 'skipped').
    let sql = format!(
        "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications \
           WHERE state = '{}' AND created_at < $1 ORDER BY created_at, id LIMIT $2)",
        NotificationState::Skipped.as_str()
    );
    let mut tx = db.begin().await?;
    let n = on_tx!(&mut tx, |c| sqlx::query(&sql)
        .bind(before)
        .bind(i64::from(limit))
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(n)
}

/// Whether a client receives messages on `channel` (no choice recorded: yes).
pub async fn channel_enabled(
    tx: &mut Tx,
    client: ClientId,
    channel: &str,
) -> Result<bool, StoreError> {
    let v: Option<bool> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT enabled FROM notification_preferences WHERE client_id = $1 AND channel = $2"
    )
    .bind(client.get())
    .bind(channel)
    .fetch_optional(&mut *c)
    .await)?;
    Ok(v.unwrap_or(true))
}

pub async fn set_channel(
    tx: &mut Tx,
    client: ClientId,
    channel: &str,
    enabled: bool,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO notification_preferences (client_id, channel, enabled, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (client_id, channel) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at"
    )
    .bind(client.get())
    .bind(channel)
    .bind(enabled)
    .bind(at)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Who a client is, for a message: (email, language, first name, last name, company).
pub async fn recipient(
    tx: &mut Tx,
    client: ClientId,
) -> Result<Option<(String, String, String, String, Option<String>)>, StoreError> {
    Ok(on_tx!(tx, |c| sqlx::query_as(
        "SELECT email, language, first_name, last_name, company_name FROM clients WHERE id = $1"
    )
    .bind(client.get())
    .fetch_optional(&mut *c)
    .await)?)
}
