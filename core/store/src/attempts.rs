//! Payment attempts: payments started at a gateway plugin and not yet settled.
//!
//! An attempt is written, `pending`, before the gateway is called (so a crash after the
//! provider took the payer's money still leaves a row to settle it against); the gateway's
//! answer (its reference, the payer's next action, its opaque state) is stored after the
//! call; a confirmed update moves it once out of `pending` ([`transition`], guarded by the
//! state it was read in). One attempt per (gateway, reference) (`payment_attempts_reference_key`)
//! and per (invoice, request key) (`payment_attempts_request_key`). A pending attempt holds
//! dunning's suspension and termination until `hold_until` (see [`crate::dunning`]).

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::{on_db, on_tx};
use chrono::{DateTime, Utc};
use keel_domain::ids::InvoiceId;

keel_domain::named_enum!(
    /// Where a payment attempt stands.
    AttemptState {
        /// Started; the provider has not confirmed. Holds dunning.
        Pending = "pending",
        /// Confirmed paid; `payment_id` is the payment it recorded.
        Succeeded = "succeeded",
        /// The provider or the payer gave up; nothing was taken.
        Failed = "failed",
        /// The payer cancelled; nothing was taken.
        Cancelled = "cancelled",
        /// No answer came in time; Keel stopped waiting (a later confirmed payment is still
        /// recorded: money taken is never dropped).
        Expired = "expired",
        /// Paid, then returned to the payer; the payment was reversed.
        Refunded = "refunded",
        /// Paid, then disputed (a chargeback); the payment was reversed.
        Disputed = "disputed",
    }
);

impl TryFrom<String> for AttemptState {
    type Error = StoreError;
    fn try_from(text: String) -> Result<Self, StoreError> {
        AttemptState::parse(&text).ok_or_else(|| crate::error::corrupt("attempt state", &text))
    }
}

keel_domain::named_enum!(
    /// What the payer must do next, as the gateway said.
    ActionKind {
        Redirect = "redirect",
        Instructions = "instructions",
        None = "none",
    }
);

impl TryFrom<String> for ActionKind {
    type Error = StoreError;
    fn try_from(text: String) -> Result<Self, StoreError> {
        ActionKind::parse(&text).ok_or_else(|| crate::error::corrupt("attempt action", &text))
    }
}

/// A stored attempt.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct AttemptRow {
    pub id: i64,
    pub invoice_id: i64,
    pub gateway: String,
    pub reference: String,
    #[sqlx(try_from = "String")]
    pub state: AttemptState,
    pub hold_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub amount_minor: i64,
    pub currency: String,
    pub method: Option<String>,
    pub request_key: Option<String>,
    pub provider_reference: Option<String>,
    pub provider_status: Option<String>,
    pub plugin_state: Option<String>,
    pub action_kind: Option<String>,
    pub action_text: Option<String>,
    pub failure: Option<String>,
    pub attention: Option<String>,
    pub payment_id: Option<i64>,
    pub polled_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, invoice_id, gateway, reference, state, hold_until, created_at, resolved_at, \
    amount_minor, currency, method, request_key, provider_reference, provider_status, plugin_state, \
    action_kind, action_text, failure, attention, payment_id, polled_at, updated_at";

/// An attempt to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttempt<'a> {
    pub invoice: InvoiceId,
    pub gateway: &'a str,
    pub reference: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub method: Option<&'a str>,
    /// One attempt per (invoice, key): the pay page's form token or the API's
    /// `Idempotency-Key`.
    pub request_key: Option<&'a str>,
    pub hold_until: DateTime<Utc>,
}

/// Writes a pending attempt; `None` when its (gateway, reference) or (invoice, request key)
/// was written already.
pub async fn insert(
    tx: &mut Tx,
    new: &NewAttempt<'_>,
    at: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar(
            "INSERT INTO payment_attempts (invoice_id, gateway, reference, state, hold_until, created_at, \
               amount_minor, currency, method, request_key, updated_at) \
             VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $5) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(new.invoice.get())
        .bind(new.gateway)
        .bind(new.reference)
        .bind(new.hold_until)
        .bind(at)
        .bind(new.amount_minor)
        .bind(new.currency)
        .bind(new.method)
        .bind(new.request_key)
        .fetch_optional(&mut *c)
        .await
    })?)
}

/// The attempt of `invoice` made under `request_key`.
pub async fn by_request_key(
    tx: &mut Tx,
    invoice: InvoiceId,
    request_key: &str,
) -> Result<Option<AttemptRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM payment_attempts WHERE invoice_id = $1 AND request_key = $2"
    );
    Ok(on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(invoice.get())
        .bind(request_key)
        .fetch_optional(&mut *c)
        .await)?)
}

/// How many attempts `invoice` has, and how many of them are pending, read inside the
/// caller's transaction (which holds the invoice's row lock).
pub async fn counts(tx: &mut Tx, invoice: InvoiceId) -> Result<(i64, i64), StoreError> {
    let (all, pending): (i64, i64) = on_tx!(tx, |c| sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0) \
         FROM payment_attempts WHERE invoice_id = $1"
    )
    .bind(invoice.get())
    .fetch_one(&mut *c)
    .await)?;
    Ok((all, pending))
}

/// The attempt (gateway, reference), read outside a transaction.
pub async fn get(
    db: &Db,
    gateway: &str,
    reference: &str,
) -> Result<Option<AttemptRow>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM payment_attempts WHERE gateway = $1 AND reference = $2");
    Ok(on_db!(db, |p| sqlx::query_as(&sql)
        .bind(gateway)
        .bind(reference)
        .fetch_optional(p)
        .await)?)
}

/// The attempt whose Keel reference is `reference`, whatever its gateway (the pay page's
/// return address names the reference alone). References are random per attempt; should
/// two gateways hold the same one, neither is returned.
pub async fn by_reference(db: &Db, reference: &str) -> Result<Option<AttemptRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM payment_attempts WHERE reference = $1 \
         AND invoice_id IN (SELECT id FROM invoices) ORDER BY id LIMIT 2"
    );
    let rows: Vec<AttemptRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(reference)
        .fetch_all(p)
        .await)?;
    Ok(match <[AttemptRow; 1]>::try_from(rows) {
        Ok([row]) => Some(row),
        Err(_) => None,
    })
}

/// The attempt by id, read outside a transaction.
pub async fn by_id(db: &Db, id: i64) -> Result<Option<AttemptRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM payment_attempts WHERE id = $1");
    Ok(on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(p)
        .await)?)
}

/// The attempt (gateway, reference), locked for the rest of `tx` on PostgreSQL (SQLite's
/// write transaction already excludes other writers).
pub async fn for_update(
    tx: &mut Tx,
    gateway: &str,
    reference: &str,
) -> Result<Option<AttemptRow>, StoreError> {
    let lock = match tx.engine() {
        crate::Engine::Sqlite => "",
        crate::Engine::Postgres => " FOR UPDATE",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM payment_attempts WHERE gateway = $1 AND reference = $2{lock}"
    );
    Ok(on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(gateway)
        .bind(reference)
        .fetch_optional(&mut *c)
        .await)?)
}

/// Every attempt of `invoice`, newest first.
pub async fn of_invoice(db: &Db, invoice: InvoiceId) -> Result<Vec<AttemptRow>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM payment_attempts WHERE invoice_id = $1 ORDER BY id DESC");
    Ok(on_db!(db, |p| sqlx::query_as(&sql)
        .bind(invoice.get())
        .fetch_all(p)
        .await)?)
}

/// Pending attempts created before `before` and not polled since `polled_before`, oldest
/// first, at most `limit`: what the scheduled poll asks the gateways about.
pub async fn pending(
    db: &Db,
    before: DateTime<Utc>,
    polled_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<AttemptRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM payment_attempts WHERE state = 'pending' AND created_at < $1 \
         AND (polled_at IS NULL OR polled_at < $2) ORDER BY created_at, id LIMIT $3"
    );
    Ok(on_db!(db, |p| sqlx::query_as(&sql)
        .bind(before)
        .bind(polled_before)
        .bind(limit)
        .fetch_all(p)
        .await)?)
}

/// What the gateway answered `initiate` with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started<'a> {
    pub provider_reference: &'a str,
    pub action_kind: ActionKind,
    pub action_text: Option<&'a str>,
    pub plugin_state: Option<&'a str>,
}

/// Stores the gateway's answer on a pending attempt.
pub async fn started(
    tx: &mut Tx,
    id: i64,
    s: &Started<'_>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE payment_attempts SET provider_reference = $1, action_kind = $2, action_text = $3, \
           plugin_state = $4, updated_at = $5 WHERE id = $6"
    )
    .bind(s.provider_reference)
    .bind(s.action_kind.as_str())
    .bind(s.action_text)
    .bind(s.plugin_state)
    .bind(at)
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Moves attempt `id` from `from` to `to` (with the provider's status word, a failure
/// reason, the payment it recorded); false when it is no longer in `from`.
#[allow(clippy::too_many_arguments)]
pub async fn transition(
    tx: &mut Tx,
    id: i64,
    from: AttemptState,
    to: AttemptState,
    provider_status: Option<&str>,
    failure: Option<&str>,
    payment_id: Option<i64>,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE payment_attempts SET state = $1, provider_status = COALESCE($2, provider_status), \
           failure = COALESCE($3, failure), payment_id = COALESCE($4, payment_id), \
           resolved_at = $5, updated_at = $5 WHERE id = $6 AND state = $7"
    )
    .bind(to.as_str())
    .bind(provider_status)
    .bind(failure)
    .bind(payment_id)
    .bind(at)
    .bind(id)
    .bind(from.as_str())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Records that a pending attempt was asked about (and what the provider said), without
/// changing its state.
pub async fn polled(
    tx: &mut Tx,
    id: i64,
    provider_status: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE payment_attempts SET provider_status = COALESCE($1, provider_status), polled_at = $2, \
           updated_at = $2 WHERE id = $3"
    )
    .bind(provider_status)
    .bind(at)
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Claims the right to ask the gateway about pending attempt `id` now: sets `polled_at` to
/// `at` if it is still pending and was not asked since `asked_before`. True for the one
/// caller that claimed it; a concurrent or too-early caller gets false and asks nothing.
pub async fn claim_poll(
    tx: &mut Tx,
    id: i64,
    asked_before: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE payment_attempts SET polled_at = $1 WHERE id = $2 AND state = 'pending' \
           AND (polled_at IS NULL OR polled_at < $3)"
    )
    .bind(at)
    .bind(id)
    .bind(asked_before)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Flags an attempt for staff (`why` replaces an earlier flag).
pub async fn flag(tx: &mut Tx, id: i64, why: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE payment_attempts SET attention = $1, updated_at = $2 WHERE id = $3"
    )
    .bind(why)
    .bind(at)
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Resolves the pending attempt (gateway, reference) (`succeeded` or `failed`); false when
/// there is none pending.
pub async fn resolve(
    tx: &mut Tx,
    gateway: &str,
    reference: &str,
    state: AttemptState,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE payment_attempts SET state = $1, resolved_at = $2, updated_at = $2 \
         WHERE gateway = $3 AND reference = $4 AND state = 'pending'"
    )
    .bind(state.as_str())
    .bind(at)
    .bind(gateway)
    .bind(reference)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
