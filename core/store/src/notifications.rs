//! The notification outbox and clients' channel preferences.
//!
//! A notification is written once per (cause, channel) (`notifications_key`), in the
//! transaction of the event that causes it; its job marks it sent or failed. Skipped ones
//! are deleted by the daily cleanup once past their retention ([`delete_skipped`]).
//!
//! Plugin channels (WhatsApp) add three things: a client's consent per channel, with the
//! address and the time and source of its opt-in and opt-out ([`opt_in`], [`opt_out`]); the
//! provider's id of a sent message and its latest delivery receipt ([`record_delivery`],
//! which only moves forward); and the messages people send in ([`insert_inbound`]), whose
//! latest opens the channel's customer-service window ([`last_inbound_at`]).

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

keel_domain::named_enum!(
    /// How far a message sent through a plugin channel got, as the provider's receipts say.
    Delivery {
        /// The provider took it (the answer to the send).
        Accepted = "accepted",
        Sent = "sent",
        /// It could not be delivered; `delivery_detail` says why.
        Failed = "failed",
        Delivered = "delivered",
        Read = "read",
    }
);

impl Delivery {
    /// The order receipts are applied in: a receipt moves a message only to a later rank,
    /// so duplicates and late arrivals change nothing. `failed` ranks after `sent` (a
    /// message sent and then not deliverable) and before `delivered` (a receipt that it
    /// arrived outweighs one that it did not). For every order a provider really sends
    /// (sent, delivered, read; or sent, failed) the highest rank is the latest receipt.
    pub fn rank(self) -> i32 {
        match self {
            Delivery::Accepted => 0,
            Delivery::Sent => 1,
            Delivery::Failed => 2,
            Delivery::Delivered => 3,
            Delivery::Read => 4,
        }
    }

    /// The rank in SQL, for a conditional update on the `delivery` column.
    fn rank_sql() -> String {
        let mut s = String::from("CASE delivery");
        for d in Delivery::ALL {
            s.push_str(&format!(" WHEN '{}' THEN {}", d.as_str(), d.rank()));
        }
        s.push_str(" ELSE -1 END");
        s
    }
}

impl TryFrom<String> for Delivery {
    type Error = StoreError;
    fn try_from(text: String) -> Result<Self, StoreError> {
        Delivery::parse(&text).ok_or_else(|| crate::error::corrupt("delivery state", &text))
    }
}

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
    /// For plugin channels: the approved template with its parameters (JSON), sent outside
    /// the customer-service window.
    pub template: Option<&'a str>,
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
    pub template: Option<String>,
    pub provider_id: Option<String>,
    #[sqlx(try_from = "OptionalText")]
    pub delivery: Option<Delivery>,
    pub delivery_detail: Option<String>,
    /// When Keel recorded the latest receipt.
    pub delivery_at: Option<DateTime<Utc>>,
    /// When the provider says the latest receipt's state was reached, when it said.
    pub delivery_reported_at: Option<DateTime<Utc>>,
}

/// A nullable text column read into an optional enum.
#[derive(sqlx::Type)]
#[sqlx(transparent)]
struct OptionalText(Option<String>);

impl TryFrom<OptionalText> for Option<Delivery> {
    type Error = StoreError;
    fn try_from(t: OptionalText) -> Result<Self, StoreError> {
        t.0.map(Delivery::try_from).transpose()
    }
}

const COLUMNS: &str = "id, client_id, event, channel, recipient, language, subject, body_text, body_html, \
    invoice_id, state, attempts, last_error, unique_key, created_at, sent_at, template, provider_id, \
    delivery, delivery_detail, delivery_at, delivery_reported_at";

/// Writes a notification; `None` when one with the same cause and channel exists.
pub async fn insert(
    tx: &mut Tx,
    n: &NewNotification<'_>,
    at: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO notifications (client_id, event, channel, recipient, language, subject, body_text, \
           body_html, invoice_id, state, last_error, unique_key, created_at, template) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING RETURNING id"
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
    .bind(n.template)
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
/// pending, or failed or skipped, with the error or the reason. Only a pending
/// notification moves; false otherwise (sent already).
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

/// Records a message a plugin channel sent: `sent`, with the provider's id for it and the
/// provider's first answer as its delivery state. Only a pending notification moves.
pub async fn record_sent(
    db: &Db,
    id: i64,
    provider_id: &str,
    delivery: Delivery,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    let n = on_tx!(&mut tx, |c| {
        sqlx::query(
        "UPDATE notifications SET state = $1, last_error = NULL, attempts = attempts + 1, sent_at = $2, \
           provider_id = $3, delivery = $4, delivery_at = $2 \
         WHERE id = $5 AND state = $6"
    )
    .bind(NotificationState::Sent.as_str())
    .bind(at)
    .bind(provider_id)
    .bind(delivery.as_str())
    .bind(id)
    .bind(NotificationState::Pending.as_str())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(n == 1)
}

/// What a delivery receipt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryChange {
    /// No message of the channel has this provider id.
    Unknown,
    /// The message moved to the receipt's state.
    Moved,
    /// The message was at this state or a later one already (a duplicate, a late receipt).
    Unchanged,
}

/// A delivery receipt, as the provider reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt<'a> {
    pub delivery: Delivery,
    /// The provider's explanation (a failure's reason).
    pub detail: Option<&'a str>,
    /// When the provider says the state was reached, when it says.
    pub reported_at: Option<DateTime<Utc>>,
}

/// Applies a delivery receipt to the message `channel` sent as `provider_id`, at `at`
/// (Keel's clock). The latest receipt wins, so receipts may come in any order and any
/// number of times: when both the message's current receipt and this one carry the
/// provider's time, the later time wins and the later [`Delivery::rank`] breaks a tie (sent,
/// delivered and read in the same second); otherwise the later rank wins.
pub async fn record_delivery(
    db: &Db,
    channel: &str,
    provider_id: &str,
    receipt: Receipt<'_>,
    at: DateTime<Utc>,
) -> Result<DeliveryChange, StoreError> {
    let rank = Delivery::rank_sql();
    let sql = format!(
        "UPDATE notifications SET delivery = $1, delivery_detail = $2, delivery_at = $3, \
         delivery_reported_at = $7 \
         WHERE channel = $4 AND provider_id = $5 AND \
         CASE WHEN $7 IS NOT NULL AND delivery_reported_at IS NOT NULL \
              THEN delivery_reported_at < $7 OR (delivery_reported_at = $7 AND ({rank}) < $6) \
              ELSE ({rank}) < $6 END"
    );
    let Receipt {
        delivery,
        detail,
        reported_at,
    } = receipt;
    let mut tx = db.begin().await?;
    let moved = on_tx!(&mut tx, |c| sqlx::query(&sql)
        .bind(delivery.as_str())
        .bind(detail)
        .bind(at)
        .bind(channel)
        .bind(provider_id)
        .bind(delivery.rank())
        .bind(reported_at)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
    let change = if moved == 1 {
        DeliveryChange::Moved
    } else {
        let known: Option<i64> = on_tx!(&mut tx, |c| sqlx::query_scalar(
            "SELECT id FROM notifications WHERE channel = $1 AND provider_id = $2"
        )
        .bind(channel)
        .bind(provider_id)
        .fetch_optional(&mut *c)
        .await)?;
        if known.is_some() {
            DeliveryChange::Unchanged
        } else {
            DeliveryChange::Unknown
        }
    };
    tx.commit().await?;
    Ok(change)
}

// ---------------------------------------------------------------------------------------
// Consents

/// A client's consent to a channel.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ConsentRow {
    pub client_id: i64,
    pub channel: String,
    /// Where messages go (E.164 for WhatsApp).
    pub address: String,
    pub opted_in_at: DateTime<Utc>,
    /// Who or what recorded the opt-in (`api:client:12`, `staff:3: signup form`).
    pub opt_in_source: String,
    pub opted_out_at: Option<DateTime<Utc>>,
    pub opt_out_source: Option<String>,
}

impl ConsentRow {
    /// Whether messages may be sent: opted in and not opted out since.
    pub fn active(&self) -> bool {
        self.opted_out_at.is_none()
    }
}

const CONSENT_COLUMNS: &str =
    "client_id, channel, address, opted_in_at, opt_in_source, opted_out_at, opt_out_source";

/// Records a client's opt-in to `channel` at `address` (replacing an earlier one, and
/// clearing an opt-out).
pub async fn opt_in(
    tx: &mut Tx,
    client: ClientId,
    channel: &str,
    address: &str,
    source: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO channel_consents (client_id, channel, address, opted_in_at, opt_in_source) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (client_id, channel) DO UPDATE SET address = excluded.address, \
           opted_in_at = excluded.opted_in_at, opt_in_source = excluded.opt_in_source, \
           opted_out_at = NULL, opt_out_source = NULL"
    )
    .bind(client.get())
    .bind(channel)
    .bind(address)
    .bind(at)
    .bind(source)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records a client's opt-out of `channel`; false when it had no active opt-in.
pub async fn opt_out(
    tx: &mut Tx,
    client: ClientId,
    channel: &str,
    source: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE channel_consents SET opted_out_at = $1, opt_out_source = $2 \
         WHERE client_id = $3 AND channel = $4 AND opted_out_at IS NULL"
    )
    .bind(at)
    .bind(source)
    .bind(client.get())
    .bind(channel)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// A client's consent to `channel`, if it ever opted in.
pub async fn consent(
    tx: &mut Tx,
    client: ClientId,
    channel: &str,
) -> Result<Option<ConsentRow>, StoreError> {
    let sql = format!(
        "SELECT {CONSENT_COLUMNS} FROM channel_consents WHERE client_id = $1 AND channel = $2"
    );
    Ok(on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(client.get())
        .bind(channel)
        .fetch_optional(&mut *c)
        .await)?)
}

/// A client's consents, one per channel it ever opted in to.
pub async fn consents_of(db: &Db, client: ClientId) -> Result<Vec<ConsentRow>, StoreError> {
    let sql = format!(
        "SELECT {CONSENT_COLUMNS} FROM channel_consents WHERE client_id = $1 ORDER BY channel"
    );
    Ok(on_db!(db, |p| sqlx::query_as(&sql)
        .bind(client.get())
        .fetch_all(p)
        .await)?)
}

/// The clients an inbound message from `address` on `channel` belongs to: those that opted
/// in with it (active or not), else those whose phone it is. Usually one; a number shared
/// by two clients gives both, and the caller decides.
pub async fn clients_at(
    tx: &mut Tx,
    channel: &str,
    address: &str,
) -> Result<Vec<ClientId>, StoreError> {
    let consented: Vec<i64> = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "SELECT client_id FROM channel_consents WHERE channel = $1 AND address = $2 ORDER BY client_id"
    )
    .bind(channel)
    .bind(address)
    .fetch_all(&mut *c)
    .await
    })?;
    let ids = if consented.is_empty() {
        on_tx!(tx, |c| sqlx::query_scalar(
            "SELECT id FROM clients WHERE phone = $1 ORDER BY id"
        )
        .bind(address)
        .fetch_all(&mut *c)
        .await)?
    } else {
        consented
    };
    Ok(ids.into_iter().map(ClientId).collect())
}

// ---------------------------------------------------------------------------------------
// Inbound messages

/// A message someone sent in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInbound<'a> {
    pub channel: &'a str,
    pub provider_id: &'a str,
    pub sender: &'a str,
    pub client_id: Option<ClientId>,
    pub body: &'a str,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct InboundRow {
    pub id: i64,
    pub channel: String,
    pub provider_id: String,
    pub sender: String,
    pub client_id: Option<i64>,
    pub body: String,
    pub received_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// Stores an inbound message once; `None` when the provider delivered it before.
pub async fn insert_inbound(
    tx: &mut Tx,
    m: &NewInbound<'_>,
    at: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO inbound_messages (channel, provider_id, sender, client_id, body, received_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id"
    )
    .bind(m.channel)
    .bind(m.provider_id)
    .bind(m.sender)
    .bind(m.client_id.map(|c| c.get()))
    .bind(m.body)
    .bind(m.received_at)
    .bind(at)
    .fetch_optional(&mut *c)
    .await
    })?)
}

/// When `address` last wrote in on `channel` (what opens the customer-service window).
pub async fn last_inbound_at(
    db: &Db,
    channel: &str,
    address: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_scalar(
        "SELECT received_at FROM inbound_messages WHERE channel = $1 AND sender = $2 \
         ORDER BY received_at DESC LIMIT 1"
    )
    .bind(channel)
    .bind(address)
    .fetch_optional(p)
    .await)?)
}

/// A client's latest inbound messages, newest first.
pub async fn inbound_of_client(
    db: &Db,
    client: ClientId,
    limit: u32,
) -> Result<Vec<InboundRow>, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_as(
        "SELECT id, channel, provider_id, sender, client_id, body, received_at, created_at \
         FROM inbound_messages WHERE client_id = $1 ORDER BY id DESC LIMIT $2"
    )
    .bind(client.get())
    .bind(i64::from(limit))
    .fetch_all(p)
    .await)?)
}
