//! Outgoing webhooks' tables (migration 0006): endpoints, the events written with the change
//! that caused them, one delivery per (endpoint, event), and every attempt.
//!
//! # The rules the queries keep
//! - An event and its deliveries are written in the caller's transaction ([`insert_event`]),
//!   so they exist exactly when the change committed. Nothing is written when no enabled
//!   endpoint subscribes (the caller checks [`subscriptions`] first).
//! - A delivery is attempted only through [`claim`], a conditional update that takes it when
//!   it is pending, due, not locked by another attempt, its endpoint is enabled, and no
//!   earlier delivery of the same (endpoint, subject) is pending: deliveries of one subject
//!   reach one endpoint in order, and two wake-ups of one delivery never post at once.
//! - Only the attempt that claimed a delivery records its outcome ([`finish`]: the attempt
//!   number must still match); a delivered or failed delivery is never claimed again, so a
//!   retried job never re-delivers it. Staff [`replay`] makes it pending again.
//! - Each wake-up is a `webhook.deliver` job with the key `webhook:delivery:{id}:{n}`, `n`
//!   counting the delivery's wake-ups ([`wake`]), so a new wake-up is never swallowed by the
//!   key of an old one.
//!
//! Every write goes through a transaction ([`Db::begin`]).

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::jobs::{self, NewJob};
use crate::page::{Cursor, Page};
use crate::{on_db, on_tx};
use chrono::{DateTime, Utc};

/// The job kind that delivers (registered by keel-app).
pub const DELIVER: &str = "webhook.deliver";

/// The longest response snippet kept, in characters.
pub const MAX_RESPONSE_CHARS: usize = 1000;

keel_domain::named_enum!(
    /// A delivery's state.
    DeliveryState {
        /// Waiting for its next attempt (or for an earlier delivery of its subject).
        Pending = "pending",
        /// The endpoint answered 2xx.
        Delivered = "delivered",
        /// Every attempt failed; kept with the last error until staff replay it.
        Failed = "failed",
    }
);

// ---------------------------------------------------------------------------------------
// Endpoints

/// An endpoint as stored (the secret included: handle with care).
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointRecord {
    pub id: i64,
    pub url: String,
    pub description: String,
    /// Event types; `["*"]` is every type.
    pub events: Vec<String>,
    pub secret: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointRecord {
    /// Whether this endpoint wants events of `event_type`.
    pub fn subscribes(&self, event_type: &str) -> bool {
        subscribes(&self.events, event_type)
    }
}

fn subscribes(events: &[String], event_type: &str) -> bool {
    events.iter().any(|e| e == "*" || e == event_type)
}

/// A new endpoint.
#[derive(Debug, Clone)]
pub struct NewEndpoint<'a> {
    pub url: &'a str,
    pub description: &'a str,
    pub events: &'a [String],
    pub secret: &'a str,
}

const ENDPOINT_COLUMNS: &str =
    "id, url, description, events, secret, enabled, disabled_reason, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: i64,
    url: String,
    description: String,
    events: String,
    secret: String,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn events_of(id: i64, text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("webhook endpoint {id} events: {e}")))
}

impl TryFrom<EndpointRow> for EndpointRecord {
    type Error = StoreError;
    fn try_from(r: EndpointRow) -> Result<EndpointRecord, StoreError> {
        Ok(EndpointRecord {
            events: events_of(r.id, &r.events)?,
            id: r.id,
            url: r.url,
            description: r.description,
            secret: r.secret,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

pub async fn insert_endpoint(
    tx: &mut Tx,
    new: &NewEndpoint<'_>,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let events = serde_json::to_string(new.events)
        .map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?;
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO webhook_endpoints (url, description, events, secret, enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, TRUE, $5, $5) RETURNING id"
    )
    .bind(new.url)
    .bind(new.description)
    .bind(&events)
    .bind(new.secret)
    .bind(now)
    .fetch_one(&mut *c)
    .await
    })?)
}

/// What a change to an endpoint sets (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct EndpointChange<'a> {
    pub url: Option<&'a str>,
    pub description: Option<&'a str>,
    pub events: Option<&'a [String]>,
    /// `Some((enabled, reason))`; the reason is kept while disabled.
    pub enabled: Option<(bool, Option<&'a str>)>,
}

pub async fn update_endpoint(
    tx: &mut Tx,
    id: i64,
    change: &EndpointChange<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let events = change
        .events
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?;
    let (set_enabled, enabled, reason) = match change.enabled {
        Some((on, reason)) => (true, on, if on { None } else { reason }),
        None => (false, true, None),
    };
    let n = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE webhook_endpoints SET url = COALESCE($1, url), description = COALESCE($2, description), \
           events = COALESCE($3, events), \
           enabled = CASE WHEN $4 THEN $5 ELSE enabled END, \
           disabled_reason = CASE WHEN $4 THEN $6 ELSE disabled_reason END, \
           updated_at = $7 WHERE id = $8"
    )
    .bind(change.url)
    .bind(change.description)
    .bind(events.as_deref())
    .bind(set_enabled)
    .bind(enabled)
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Removes an endpoint with its deliveries and their attempts (events stay).
pub async fn delete_endpoint(tx: &mut Tx, id: i64) -> Result<bool, StoreError> {
    // Explicit deletes rather than relying on the cascade: SQLite enforces it only with
    // foreign keys on, and this way the statement counts say what went.
    on_tx!(tx, |c| sqlx::query(
        "DELETE FROM webhook_attempts WHERE delivery_id IN \
           (SELECT id FROM webhook_deliveries WHERE endpoint_id = $1)"
    )
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    on_tx!(tx, |c| sqlx::query(
        "DELETE FROM webhook_deliveries WHERE endpoint_id = $1"
    )
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    let n = on_tx!(tx, |c| sqlx::query(
        "DELETE FROM webhook_endpoints WHERE id = $1"
    )
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn endpoint(db: &Db, id: i64) -> Result<Option<EndpointRecord>, StoreError> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
    let row: Option<EndpointRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(p)
        .await)?;
    row.map(EndpointRecord::try_from).transpose()
}

/// The same, inside a transaction (an endpoint just created, before its commit).
pub async fn endpoint_tx(tx: &mut Tx, id: i64) -> Result<Option<EndpointRecord>, StoreError> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
    let row: Option<EndpointRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *c)
        .await)?;
    row.map(EndpointRecord::try_from).transpose()
}

/// Every endpoint, by id.
pub async fn endpoints(db: &Db) -> Result<Vec<EndpointRecord>, StoreError> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id");
    let rows: Vec<EndpointRow> = on_db!(db, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
    rows.into_iter().map(EndpointRecord::try_from).collect()
}

/// The enabled endpoints' subscriptions, read in the caller's transaction: `(id, events)`.
/// One small read; the emitting use case checks it before writing anything.
pub async fn subscriptions(tx: &mut Tx) -> Result<Subscriptions, StoreError> {
    let rows: Vec<(i64, String)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT id, events FROM webhook_endpoints WHERE enabled ORDER BY id"
    )
    .fetch_all(&mut *c)
    .await)?;
    let endpoints = rows
        .into_iter()
        .map(|(id, text)| Ok((id, events_of(id, &text)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Subscriptions { endpoints })
}

/// The enabled endpoints and the event types each wants, as read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Subscriptions {
    endpoints: Vec<(i64, Vec<String>)>,
}

impl Subscriptions {
    /// The endpoints that want `event_type`, by id.
    pub fn endpoints_for(&self, event_type: &str) -> Vec<i64> {
        self.endpoints
            .iter()
            .filter(|(_, events)| subscribes(events, event_type))
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}

// ---------------------------------------------------------------------------------------
// Events and deliveries

/// An event as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventRecord {
    pub id: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub subject: String,
    pub occurred_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

/// Writes an event and a pending delivery to each of `endpoints`, each with its first
/// wake-up job, in the caller's transaction. Returns the event's id and the deliveries'.
pub async fn insert_event(
    tx: &mut Tx,
    event_type: &str,
    subject: &str,
    data: &serde_json::Value,
    endpoints: &[i64],
    now: DateTime<Utc>,
) -> Result<(i64, Vec<i64>), StoreError> {
    let text = data.to_string();
    let event: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO webhook_events (type, subject, data, occurred_at) VALUES ($1, $2, $3, $4) RETURNING id"
    )
    .bind(event_type)
    .bind(subject)
    .bind(&text)
    .bind(now)
    .fetch_one(&mut *c)
    .await
    })?;
    let mut deliveries = Vec::with_capacity(endpoints.len());
    let mut wakeups = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        let id: i64 = on_tx!(tx, |c| {
            sqlx::query_scalar(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, subject, state, attempts, next_attempt_at, \
               wakeups, created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, 1, $4, $4) RETURNING id"
        )
        .bind(endpoint)
        .bind(event)
        .bind(subject)
        .bind(now)
        .fetch_one(&mut *c)
        .await
        })?;
        wakeups.push(wake_job(id, 1, now));
        deliveries.push(id);
    }
    jobs::enqueue_many(tx, &wakeups, now).await?;
    Ok((event, deliveries))
}

fn wake_job(delivery: i64, n: i32, run_at: DateTime<Utc>) -> NewJob {
    NewJob::new(
        DELIVER,
        serde_json::json!({ "delivery_id": delivery }),
        run_at,
    )
    .unique(format!("webhook:delivery:{delivery}:{n}"))
}

/// Enqueues another wake-up of a delivery at `run_at` (its next attempt, a successor's
/// turn, a replay, an endpoint enabled again).
pub async fn wake(tx: &mut Tx, delivery: i64, run_at: DateTime<Utc>) -> Result<(), StoreError> {
    let n: Option<i32> = on_tx!(tx, |c| sqlx::query_scalar(
        "UPDATE webhook_deliveries SET wakeups = wakeups + 1 WHERE id = $1 RETURNING wakeups"
    )
    .bind(delivery)
    .fetch_optional(&mut *c)
    .await)?;
    if let Some(n) = n {
        jobs::enqueue(tx, &wake_job(delivery, n, run_at), run_at).await?;
    }
    Ok(())
}

/// A delivery as stored, with its event's type.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeliveryRecord {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_id: i64,
    pub event_type: String,
    pub subject: String,
    pub state: DeliveryState,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub last_response: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, d.event_id, e.type AS event_type, d.subject, d.state, \
    d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.last_response, d.delivered_at, \
    d.created_at, d.updated_at";

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    endpoint_id: i64,
    event_id: i64,
    event_type: String,
    subject: String,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    last_response: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<DeliveryRow> for DeliveryRecord {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<DeliveryRecord, StoreError> {
        Ok(DeliveryRecord {
            state: DeliveryState::parse(&r.state).ok_or_else(|| {
                StoreError::Corrupt(format!("webhook delivery {} state {:?}", r.id, r.state))
            })?,
            id: r.id,
            endpoint_id: r.endpoint_id,
            event_id: r.event_id,
            event_type: r.event_type,
            subject: r.subject,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_status_code: r.last_status_code,
            last_error: r.last_error,
            last_response: r.last_response,
            delivered_at: r.delivered_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

pub async fn delivery(db: &Db, id: i64) -> Result<Option<DeliveryRecord>, StoreError> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
         WHERE d.id = $1"
    );
    let row: Option<DeliveryRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(p)
        .await)?;
    row.map(DeliveryRecord::try_from).transpose()
}

/// The same, inside a transaction (a delivery just made or replayed, before its commit).
pub async fn delivery_tx(tx: &mut Tx, id: i64) -> Result<Option<DeliveryRecord>, StoreError> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
         WHERE d.id = $1"
    );
    let row: Option<DeliveryRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *c)
        .await)?;
    row.map(DeliveryRecord::try_from).transpose()
}

/// An endpoint's deliveries, newest first, optionally in one state; a page of `limit`.
pub async fn deliveries(
    db: &Db,
    endpoint: i64,
    state: Option<DeliveryState>,
    after: Option<Cursor>,
    limit: u32,
) -> Result<Page<DeliveryRecord>, StoreError> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
         WHERE d.endpoint_id = $1 AND ($2 IS NULL OR d.state = $2) AND d.id < $3 ORDER BY d.id DESC LIMIT $4"
    );
    let rows: Vec<DeliveryRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(endpoint)
        .bind(state.map(DeliveryState::as_str))
        .bind(after.map_or(i64::MAX, |c| c.after_id))
        .bind(i64::from(limit) + 1)
        .fetch_all(p)
        .await)?;
    let rows = rows
        .into_iter()
        .map(DeliveryRecord::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(rows, limit, |d| d.id))
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct AttemptRecord {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub response: Option<String>,
    pub duration_ms: i64,
}

/// A delivery's attempts, oldest first.
pub async fn attempts(db: &Db, delivery: i64) -> Result<Vec<AttemptRecord>, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_as(
        "SELECT attempt, at, status_code, error, response, duration_ms FROM webhook_attempts \
         WHERE delivery_id = $1 ORDER BY id"
    )
    .bind(delivery)
    .fetch_all(p)
    .await)?)
}

/// What an attempt needs: where to, the secret, and the event.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: i64,
    pub attempt: i32,
    pub endpoint_id: i64,
    pub url: String,
    pub secret: String,
    pub event: EventRecord,
}

/// Takes a delivery for one attempt if it is pending, due by `now`, not locked by another
/// attempt, its endpoint enabled, and no earlier delivery of its (endpoint, subject) is
/// pending; counts the attempt and locks it until `lock_until`. `None`: not its turn.
pub async fn claim(
    db: &Db,
    delivery: i64,
    now: DateTime<Utc>,
    lock_until: DateTime<Utc>,
) -> Result<Option<Claimed>, StoreError> {
    let mut tx = db.begin().await?;
    let attempt: Option<i32> = on_tx!(&mut tx, |c| {
        sqlx::query_scalar(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, locked_until = $1, updated_at = $2 \
         WHERE id = $3 AND state = 'pending' AND next_attempt_at <= $2 \
           AND (locked_until IS NULL OR locked_until < $2) \
           AND EXISTS (SELECT 1 FROM webhook_endpoints w \
                       WHERE w.id = webhook_deliveries.endpoint_id AND w.enabled) \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p \
                           WHERE p.endpoint_id = webhook_deliveries.endpoint_id \
                             AND p.subject = webhook_deliveries.subject \
                             AND p.state = 'pending' AND p.id < webhook_deliveries.id) \
         RETURNING attempts"
    )
    .bind(lock_until)
    .bind(now)
    .bind(delivery)
    .fetch_optional(&mut *c)
    .await
    })?;
    let Some(attempt) = attempt else {
        return Ok(None);
    };
    #[derive(sqlx::FromRow)]
    struct Joined {
        endpoint_id: i64,
        url: String,
        secret: String,
        event_id: i64,
        event_type: String,
        subject: String,
        data: String,
        occurred_at: DateTime<Utc>,
    }
    let j: Joined = on_tx!(&mut tx, |c| {
        sqlx::query_as(
        "SELECT w.id AS endpoint_id, w.url, w.secret, e.id AS event_id, e.type AS event_type, e.subject, \
           e.data, e.occurred_at \
         FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id \
           JOIN webhook_events e ON e.id = d.event_id WHERE d.id = $1"
    )
    .bind(delivery)
    .fetch_one(&mut *c)
    .await
    })?;
    tx.commit().await?;
    Ok(Some(Claimed {
        delivery,
        attempt,
        endpoint_id: j.endpoint_id,
        url: j.url,
        secret: j.secret,
        event: EventRecord {
            data: serde_json::from_str(&j.data).map_err(|e| {
                StoreError::Corrupt(format!("webhook event {} data: {e}", j.event_id))
            })?,
            id: j.event_id,
            event_type: j.event_type,
            subject: j.subject,
            occurred_at: j.occurred_at,
        },
    }))
}

/// Until when another attempt holds a pending delivery (`None`: nobody holds it, or it is
/// not pending).
pub async fn held_until(db: &Db, delivery: i64) -> Result<Option<DateTime<Utc>>, StoreError> {
    let at: Option<Option<DateTime<Utc>>> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT locked_until FROM webhook_deliveries WHERE id = $1 AND state = 'pending'"
    )
    .bind(delivery)
    .fetch_optional(p)
    .await)?;
    Ok(at.flatten())
}

/// What one attempt brought back.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    pub status_code: Option<i32>,
    pub error: Option<&'a str>,
    pub response: Option<&'a str>,
    pub duration_ms: i64,
    /// Delivered, failed for good, or pending again with its next attempt.
    pub state: DeliveryState,
    pub next_attempt_at: DateTime<Utc>,
}

/// Records the outcome of the attempt [`claim`] returned, if that attempt still holds the
/// delivery, and wakes what comes next: the delivery itself at its next attempt, or (when
/// it is finished) the next pending delivery of its (endpoint, subject). Returns whether it
/// was recorded.
pub async fn finish(
    db: &Db,
    claimed: &Claimed,
    outcome: &Outcome<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    let delivered_at = (outcome.state == DeliveryState::Delivered).then_some(now);
    let n = on_tx!(&mut tx, |c| {
        sqlx::query(
        "UPDATE webhook_deliveries SET state = $1, next_attempt_at = $2, locked_until = NULL, \
           last_status_code = $3, last_error = $4, last_response = $5, delivered_at = $6, updated_at = $7 \
         WHERE id = $8 AND attempts = $9 AND state = 'pending'"
    )
    .bind(outcome.state.as_str())
    .bind(outcome.next_attempt_at)
    .bind(outcome.status_code)
    .bind(outcome.error)
    .bind(outcome.response)
    .bind(delivered_at)
    .bind(now)
    .bind(claimed.delivery)
    .bind(claimed.attempt)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if n != 1 {
        return Ok(false);
    }
    on_tx!(&mut tx, |c| {
        sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, response, duration_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )
    .bind(claimed.delivery)
    .bind(claimed.attempt)
    .bind(now)
    .bind(outcome.status_code)
    .bind(outcome.error)
    .bind(outcome.response)
    .bind(outcome.duration_ms)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if outcome.state == DeliveryState::Pending {
        wake(&mut tx, claimed.delivery, outcome.next_attempt_at).await?;
    } else if let Some((next, at)) = next_in_chain(
        &mut tx,
        claimed.endpoint_id,
        &claimed.event.subject,
        claimed.delivery,
    )
    .await?
    {
        wake(&mut tx, next, at.max(now)).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// The first pending delivery of (endpoint, subject) after `after`, with its next attempt.
async fn next_in_chain(
    tx: &mut Tx,
    endpoint: i64,
    subject: &str,
    after: i64,
) -> Result<Option<(i64, DateTime<Utc>)>, StoreError> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
        "SELECT id, next_attempt_at FROM webhook_deliveries \
         WHERE endpoint_id = $1 AND subject = $2 AND state = 'pending' AND id > $3 ORDER BY id LIMIT 1"
    )
    .bind(endpoint)
    .bind(subject)
    .bind(after)
    .fetch_optional(&mut *c)
    .await
    })?)
}

/// Makes a delivered or failed delivery pending again, due now, with its attempts counted
/// afresh, and wakes it. `false` when it is pending already (or does not exist).
pub async fn replay(tx: &mut Tx, delivery: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1, \
           locked_until = NULL, delivered_at = NULL, updated_at = $1 \
         WHERE id = $2 AND state IN ('delivered', 'failed')"
    )
    .bind(now)
    .bind(delivery)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    if n == 1 {
        wake(tx, delivery, now).await?;
    }
    Ok(n == 1)
}

/// Wakes every pending delivery of an endpoint (it was enabled again): each at its next
/// attempt or now. Returns how many.
pub async fn wake_endpoint(
    tx: &mut Tx,
    endpoint: i64,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let pending: Vec<(i64, DateTime<Utc>)> = on_tx!(tx, |c| {
        sqlx::query_as(
        "SELECT id, next_attempt_at FROM webhook_deliveries WHERE endpoint_id = $1 AND state = 'pending' \
         ORDER BY id"
    )
    .bind(endpoint)
    .fetch_all(&mut *c)
    .await
    })?;
    for (id, at) in &pending {
        wake(tx, *id, (*at).max(now)).await?;
    }
    Ok(pending.len())
}

/// Rows in the webhook tables: (endpoints, events, deliveries, attempts). For tests and
/// the census.
pub async fn counts(db: &Db) -> Result<(i64, i64, i64, i64), StoreError> {
    Ok(on_db!(db, |p| sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM webhook_endpoints), (SELECT COUNT(*) FROM webhook_events), \
           (SELECT COUNT(*) FROM webhook_deliveries), (SELECT COUNT(*) FROM webhook_attempts)"
    )
    .fetch_one(p)
    .await)?)
}
