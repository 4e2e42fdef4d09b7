//! Orders, services, invoices, payments and the gap-free number sequences.
//!
//! Rows owned by a client carry the client's `reseller_id`, so every scoped read filters on
//! its own columns ([`scope_sql`]). Money moves through [`crate::ledger`]; this module keeps
//! the documents (invoices, payments) and their cached amounts, which the use cases move in
//! the same transaction as the postings.
//!
//! Concurrency rules kept here:
//! - numbers come from [`next_numbers`], one row per (sequence, scope) moved inside the
//!   issuing transaction: a rollback gives the numbers back, concurrent issuers queue on the
//!   row, so numbers are unique and gap-free;
//! - [`add_payment`] moves `paid_minor` with a conditional update that refuses to pass the
//!   total, so two concurrent payments cannot overpay;
//! - a service period is invoiced once: `invoice_lines_service_period_key`.

use crate::clients::scope_params;
use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::ledger::{currency, placeholders};
use crate::page::{Cursor, Page};
use crate::{on_db, on_tx};
use chrono::{DateTime, NaiveDate, Utc};
use keel_domain::Currency;
use keel_domain::Money;
use keel_domain::billing::{Anniversary, BillingCycle};
use keel_domain::ids::{
    ClientId, EntryId, InvoiceId, InvoiceLineId, OrderId, PaymentId, ProductId, PromotionId,
    ResellerId, ServiceId,
};
use keel_domain::invoice::Line;
use keel_domain::lifecycle::{
    CancelKind, InvoiceKind, InvoiceStatus, LineKind, OrderStatus, ServiceStatus,
};
use keel_domain::tax::TaxMode;
use keel_domain::tenancy::Scope;
use rust_decimal::Decimal;

/// `(reseller_id = $a or unrestricted) and (client_id = $b or unrestricted)` on `alias`.
fn scope_sql(alias: &str, a: usize, b: usize) -> String {
    format!(
        "(CAST(${a} AS BIGINT) IS NULL OR {alias}reseller_id = ${a}) AND (CAST(${b} AS BIGINT) IS NULL OR {alias}client_id = ${b})"
    )
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("invalid {what} {value:?} in the database"))
}

/// A service's anniversary from its two columns, `anniversary` and `billing_day`: a billing
/// day out of 1..=31, or one the anniversary is not on (clamped), is corrupt.
pub fn anniversary(date: NaiveDate, billing_day: Option<i64>) -> Result<Anniversary, StoreError> {
    let day = billing_day
        .map(|d| u32::try_from(d).map_err(|_| corrupt("billing day", &d.to_string())))
        .transpose()?;
    Anniversary::with_billing_day(date, day)
        .map_err(|e| StoreError::Corrupt(format!("service anniversary in the database: {e}")))
}

fn parse_decimal(what: &str, text: &str) -> Result<Decimal, StoreError> {
    text.parse().map_err(|_| corrupt(what, text))
}

// ---------------------------------------------------------------------------------------
// Number sequences

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

// ---------------------------------------------------------------------------------------
// Orders

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrderRecord {
    pub id: OrderId,
    pub client_id: ClientId,
    pub reseller_id: Option<ResellerId>,
    pub status: OrderStatus,
    pub currency: Currency,
    pub promotion_id: Option<PromotionId>,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: i64,
    client_id: i64,
    reseller_id: Option<i64>,
    status: String,
    currency: String,
    promotion_id: Option<i64>,
    idempotency_key: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

const ORDER_COLUMNS: &str = "id, client_id, reseller_id, status, currency, promotion_id, idempotency_key, created_at, updated_at";

impl TryFrom<OrderRow> for OrderRecord {
    type Error = StoreError;
    fn try_from(r: OrderRow) -> Result<OrderRecord, StoreError> {
        Ok(OrderRecord {
            id: OrderId(r.id),
            client_id: ClientId(r.client_id),
            reseller_id: r.reseller_id.map(ResellerId),
            status: OrderStatus::parse(&r.status)
                .ok_or_else(|| corrupt("order status", &r.status))?,
            currency: currency(&r.currency)?,
            promotion_id: r.promotion_id.map(PromotionId),
            idempotency_key: r.idempotency_key,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Inserts a pending order. The same `(client, idempotency_key)` twice is
/// `Conflict { constraint: "orders_idempotency_key" }`.
pub async fn insert_order(
    tx: &mut Tx,
    client: ClientId,
    reseller: Option<ResellerId>,
    currency: Currency,
    promotion: Option<PromotionId>,
    idempotency_key: &str,
    at: DateTime<Utc>,
) -> Result<OrderRecord, StoreError> {
    let sql = format!(
        "INSERT INTO orders (client_id, reseller_id, status, currency, promotion_id, idempotency_key, created_at, updated_at) \
         VALUES ($1, $2, 'pending', $3, $4, $5, $6, $6) RETURNING {ORDER_COLUMNS}"
    );
    let row: OrderRow = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(client.get())
        .bind(reseller.map(ResellerId::get))
        .bind(currency.code())
        .bind(promotion.map(PromotionId::get))
        .bind(idempotency_key)
        .bind(at)
        .fetch_one(&mut *c)
        .await)?;
    row.try_into()
}

/// The order placed by `client` under `idempotency_key`, if any.
pub async fn order_by_key(
    tx: &mut Tx,
    client: ClientId,
    idempotency_key: &str,
) -> Result<Option<OrderRecord>, StoreError> {
    let sql =
        format!("SELECT {ORDER_COLUMNS} FROM orders WHERE client_id = $1 AND idempotency_key = $2");
    let row: Option<OrderRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(client.get())
        .bind(idempotency_key)
        .fetch_optional(&mut *c)
        .await)?;
    row.map(OrderRecord::try_from).transpose()
}

pub async fn get_order(
    db: &Db,
    scope: Scope,
    id: OrderId,
) -> Result<Option<OrderRecord>, StoreError> {
    let (reseller, only) = scope_params(scope);
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND {}",
        scope_sql("", 2, 3)
    );
    let row: Option<OrderRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id.get())
        .bind(reseller)
        .bind(only)
        .fetch_optional(p)
        .await)?;
    row.map(OrderRecord::try_from).transpose()
}

/// Moves an order from `from` to `to`; false when it was not in `from`.
pub async fn set_order_status(
    tx: &mut Tx,
    id: OrderId,
    from: OrderStatus,
    to: OrderStatus,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = on_tx!(tx, |c| sqlx::query(
        "UPDATE orders SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4"
    )
    .bind(to.as_str())
    .bind(at)
    .bind(id.get())
    .bind(from.as_str())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

// ---------------------------------------------------------------------------------------
// Services

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceRecord {
    pub id: ServiceId,
    pub client_id: ClientId,
    pub reseller_id: Option<ResellerId>,
    pub order_id: Option<OrderId>,
    pub product_id: ProductId,
    pub parent_id: Option<ServiceId>,
    pub label: String,
    pub cycle: BillingCycle,
    pub recurring: Money,
    pub promotion_id: Option<PromotionId>,
    pub status: ServiceStatus,
    pub registration_date: NaiveDate,
    /// Where due dates are counted from, with the billing day they keep (`billing_day`).
    pub anniversary: Anniversary,
    /// The first period not yet invoiced.
    pub next_period: u32,
    pub next_due_date: Option<NaiveDate>,
    pub cancel_kind: Option<CancelKind>,
    pub cancel_reason: Option<String>,
    pub cancel_on: Option<NaiveDate>,
    pub provision_intent: Option<String>,
    /// A downgrade's credit (net of tax), taken off the next renewal invoice.
    pub pending_credit: Money,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SERVICE_COLUMNS: &str = "id, client_id, reseller_id, order_id, product_id, parent_id, label, cycle, currency, \
    recurring_minor, promotion_id, status, registration_date, anniversary, billing_day, next_period, next_due_date, \
    cancel_kind, cancel_reason, cancel_on, provision_intent, pending_credit_minor, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct ServiceRow {
    id: i64,
    client_id: i64,
    reseller_id: Option<i64>,
    order_id: Option<i64>,
    product_id: i64,
    parent_id: Option<i64>,
    label: String,
    cycle: String,
    currency: String,
    recurring_minor: i64,
    promotion_id: Option<i64>,
    status: String,
    registration_date: NaiveDate,
    anniversary: NaiveDate,
    billing_day: Option<i64>,
    next_period: i64,
    next_due_date: Option<NaiveDate>,
    cancel_kind: Option<String>,
    cancel_reason: Option<String>,
    cancel_on: Option<NaiveDate>,
    provision_intent: Option<String>,
    pending_credit_minor: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ServiceRow> for ServiceRecord {
    type Error = StoreError;
    fn try_from(r: ServiceRow) -> Result<ServiceRecord, StoreError> {
        let cur = currency(&r.currency)?;
        Ok(ServiceRecord {
            id: ServiceId(r.id),
            client_id: ClientId(r.client_id),
            reseller_id: r.reseller_id.map(ResellerId),
            order_id: r.order_id.map(OrderId),
            product_id: ProductId(r.product_id),
            parent_id: r.parent_id.map(ServiceId),
            label: r.label,
            cycle: r.cycle.parse().map_err(|_| corrupt("cycle", &r.cycle))?,
            recurring: Money::new(r.recurring_minor, cur),
            promotion_id: r.promotion_id.map(PromotionId),
            status: ServiceStatus::parse(&r.status)
                .ok_or_else(|| corrupt("service status", &r.status))?,
            registration_date: r.registration_date,
            anniversary: anniversary(r.anniversary, r.billing_day)?,
            next_period: u32::try_from(r.next_period)
                .map_err(|_| corrupt("next_period", &r.next_period.to_string()))?,
            next_due_date: r.next_due_date,
            cancel_kind: r
                .cancel_kind
                .map(|k| CancelKind::parse(&k).ok_or_else(|| corrupt("cancel kind", &k)))
                .transpose()?,
            cancel_reason: r.cancel_reason,
            cancel_on: r.cancel_on,
            provision_intent: r.provision_intent,
            pending_credit: Money::new(r.pending_credit_minor, cur),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A service to create.
#[derive(Debug, Clone)]
pub struct NewService {
    pub client_id: ClientId,
    pub reseller_id: Option<ResellerId>,
    pub order_id: Option<OrderId>,
    pub product_id: ProductId,
    pub parent_id: Option<ServiceId>,
    pub label: String,
    pub cycle: BillingCycle,
    pub recurring: Money,
    pub promotion_id: Option<PromotionId>,
    pub status: ServiceStatus,
    pub registration_date: NaiveDate,
    /// Stored as its date and its billing day (NULL when due dates keep the date's day).
    pub anniversary: Anniversary,
    pub next_period: u32,
    pub next_due_date: Option<NaiveDate>,
}

/// Inserts a service and its first history row.
pub async fn insert_service(
    tx: &mut Tx,
    new: &NewService,
    reason: &str,
    actor_label: &str,
    at: DateTime<Utc>,
) -> Result<ServiceRecord, StoreError> {
    let sql = format!(
        "INSERT INTO services (client_id, reseller_id, order_id, product_id, parent_id, label, cycle, currency, \
           recurring_minor, promotion_id, status, registration_date, anniversary, billing_day, next_period, \
           next_due_date, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17) \
         RETURNING {SERVICE_COLUMNS}"
    );
    let row: ServiceRow = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(new.client_id.get())
        .bind(new.reseller_id.map(ResellerId::get))
        .bind(new.order_id.map(OrderId::get))
        .bind(new.product_id.get())
        .bind(new.parent_id.map(ServiceId::get))
        .bind(&new.label)
        .bind(new.cycle.as_str())
        .bind(new.recurring.currency().code())
        .bind(new.recurring.minor())
        .bind(new.promotion_id.map(PromotionId::get))
        .bind(new.status.as_str())
        .bind(new.registration_date)
        .bind(new.anniversary.date())
        .bind(new.anniversary.billing_day().map(i64::from))
        .bind(i64::from(new.next_period))
        .bind(new.next_due_date)
        .bind(at)
        .fetch_one(&mut *c)
        .await)?;
    let service = ServiceRecord::try_from(row)?;
    insert_service_event(
        tx,
        service.id,
        None,
        service.status,
        reason,
        actor_label,
        at,
    )
    .await?;
    Ok(service)
}

async fn insert_service_event(
    tx: &mut Tx,
    service: ServiceId,
    from: Option<ServiceStatus>,
    to: ServiceStatus,
    reason: &str,
    actor_label: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO service_events (service_id, from_status, to_status, reason, actor_label, at) \
         VALUES ($1, $2, $3, $4, $5, $6)"
    )
    .bind(service.get())
    .bind(from.map(ServiceStatus::as_str))
    .bind(to.as_str())
    .bind(reason)
    .bind(actor_label)
    .bind(at)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The id of the latest status change of a service (0 when it has none), read in the
/// transaction that made it.
pub async fn last_service_event(tx: &mut Tx, service: ServiceId) -> Result<i64, StoreError> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COALESCE(MAX(id), 0) FROM service_events WHERE service_id = $1"
    )
    .bind(service.get())
    .fetch_one(&mut *c)
    .await)?)
}

/// The service if the scope sees it, read inside the transaction (and locked on PostgreSQL).
pub async fn service_for_update(
    tx: &mut Tx,
    scope: Scope,
    id: ServiceId,
) -> Result<Option<ServiceRecord>, StoreError> {
    let (reseller, only) = scope_params(scope);
    let lock = match tx.engine() {
        crate::Engine::Postgres => " FOR UPDATE",
        crate::Engine::Sqlite => "",
    };
    let sql = format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE id = $1 AND {}{lock}",
        scope_sql("", 2, 3)
    );
    let row: Option<ServiceRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id.get())
        .bind(reseller)
        .bind(only)
        .fetch_optional(&mut *c)
        .await)?;
    row.map(ServiceRecord::try_from).transpose()
}

/// The service, read inside a transaction (host scope: the caller has locked it).
pub async fn service_tx(tx: &mut Tx, id: ServiceId) -> Result<Option<ServiceRecord>, StoreError> {
    let sql = format!("SELECT {SERVICE_COLUMNS} FROM services WHERE id = $1");
    let row: Option<ServiceRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_optional(&mut *c)
        .await)?;
    row.map(ServiceRecord::try_from).transpose()
}

pub async fn get_service(
    db: &Db,
    scope: Scope,
    id: ServiceId,
) -> Result<Option<ServiceRecord>, StoreError> {
    let (reseller, only) = scope_params(scope);
    let sql = format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE id = $1 AND {}",
        scope_sql("", 2, 3)
    );
    let row: Option<ServiceRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id.get())
        .bind(reseller)
        .bind(only)
        .fetch_optional(p)
        .await)?;
    row.map(ServiceRecord::try_from).transpose()
}

#[derive(Debug, Clone, Default)]
pub struct ServiceFilter {
    pub client: Option<ClientId>,
    pub status: Option<ServiceStatus>,
}

pub async fn list_services(
    db: &Db,
    scope: Scope,
    filter: &ServiceFilter,
    after: Option<Cursor>,
    limit: u32,
) -> Result<Page<ServiceRecord>, StoreError> {
    let (reseller, only) = scope_params(scope);
    let sql = format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE id > $1 AND {} \
           AND (CAST($4 AS BIGINT) IS NULL OR client_id = $4) AND (CAST($5 AS TEXT) IS NULL OR status = $5) \
         ORDER BY id LIMIT $6",
        scope_sql("", 2, 3)
    );
    let rows: Vec<ServiceRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(after.map_or(0, |c| c.after_id))
        .bind(reseller)
        .bind(only)
        .bind(filter.client.map(ClientId::get))
        .bind(filter.status.map(ServiceStatus::as_str))
        .bind(i64::from(limit) + 1)
        .fetch_all(p)
        .await)?;
    let items = rows
        .into_iter()
        .map(ServiceRecord::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(items, limit, |s| s.id.get()))
}

/// Moves a service from `from` to `to` and records the change with its reason; false when
/// the service was no longer in `from` (someone else moved it first).
#[allow(clippy::too_many_arguments)]
pub async fn set_service_status(
    tx: &mut Tx,
    id: ServiceId,
    from: ServiceStatus,
    to: ServiceStatus,
    reason: &str,
    actor_label: &str,
    provision_intent: Option<&str>,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE services SET status = $1, updated_at = $2, provision_intent = COALESCE($5, provision_intent) \
         WHERE id = $3 AND status = $4"
    )
    .bind(to.as_str())
    .bind(at)
    .bind(id.get())
    .bind(from.as_str())
    .bind(provision_intent)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if done != 1 {
        return Ok(false);
    }
    insert_service_event(tx, id, Some(from), to, reason, actor_label, at).await?;
    Ok(true)
}

/// Records a cancellation request (`cancel_on` is when it takes effect).
pub async fn request_cancellation(
    tx: &mut Tx,
    id: ServiceId,
    kind: CancelKind,
    reason: &str,
    on: NaiveDate,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE services SET cancel_kind = $1, cancel_reason = $2, cancel_on = $3, updated_at = $4 WHERE id = $5"
    )
    .bind(kind.as_str())
    .bind(reason)
    .bind(on)
    .bind(at)
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// One status change of a service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct ServiceEvent {
    pub id: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: String,
    pub actor_label: String,
    pub at: DateTime<Utc>,
}

pub async fn service_events(db: &Db, id: ServiceId) -> Result<Vec<ServiceEvent>, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_as(
        "SELECT id, from_status, to_status, reason, actor_label, at FROM service_events \
         WHERE service_id = $1 ORDER BY id"
    )
    .bind(id.get())
    .fetch_all(p)
    .await)?)
}

/// The same, inside a transaction.
pub async fn service_events_tx(
    tx: &mut Tx,
    id: ServiceId,
) -> Result<Vec<ServiceEvent>, StoreError> {
    Ok(on_tx!(tx, |c| sqlx::query_as(
        "SELECT id, from_status, to_status, reason, actor_label, at FROM service_events \
         WHERE service_id = $1 ORDER BY id"
    )
    .bind(id.get())
    .fetch_all(&mut *c)
    .await)?)
}

/// Pending services billed on `invoice` (the services its payment activates).
pub async fn pending_services_of_invoice(
    tx: &mut Tx,
    invoice: InvoiceId,
) -> Result<Vec<ServiceId>, StoreError> {
    let ids: Vec<i64> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT DISTINCT s.id FROM invoice_lines l JOIN services s ON s.id = l.service_id \
         WHERE l.invoice_id = $1 AND s.status = 'pending' ORDER BY s.id"
    )
    .bind(invoice.get())
    .fetch_all(&mut *c)
    .await)?;
    Ok(ids.into_iter().map(ServiceId).collect())
}

/// How the billing run moves one service on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    pub id: ServiceId,
    /// The `next_period` the run read; a service no longer there is left alone.
    pub expected: u32,
    pub next_period: u32,
    pub next_due_date: Option<NaiveDate>,
    /// Pending (downgrade) credit the run's invoice used up.
    pub credit_used_minor: i64,
}

/// Advances services after their periods were invoiced. A service whose `next_period` is no
/// longer the expected one is left alone; the count of services moved is returned so the
/// caller can refuse a batch that raced another run.
pub async fn advance_services(
    tx: &mut Tx,
    moves: &[Advance],
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut moved = 0;
    for chunk in moves.chunks(500) {
        // A CTE with a column list works on both engines; the date parameter is cast per
        // dialect (CAST(… AS DATE) would give SQLite NUMERIC affinity and mangle the text).
        // `+v.…` keeps SQLite (3.46) from scanning the whole table and probing an automatic
        // index on `v` (its plan for a few hundred rows): it drives from `v` by primary key.
        let date_type = match tx.engine() {
            crate::Engine::Postgres => "DATE",
            crate::Engine::Sqlite => "TEXT",
        };
        let mut values = String::new();
        let mut n = 0;
        for i in 0..chunk.len() {
            if i > 0 {
                values.push_str(", ");
            }
            let p = |k: usize| tx.placeholder(n + k);
            values.push_str(&format!(
                "(CAST({} AS BIGINT), CAST({} AS BIGINT), CAST({} AS BIGINT), CAST({} AS {date_type}), CAST({} AS BIGINT))",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5)
            ));
            n += 5;
        }
        let at_p = tx.placeholder(n + 1);
        let sql = format!(
            "WITH v (id, expected, next_period, next_due_date, used) AS (VALUES {values}) \
             UPDATE services SET next_period = v.next_period, next_due_date = v.next_due_date, \
               pending_credit_minor = services.pending_credit_minor - v.used, updated_at = {at_p} \
             FROM v WHERE services.id = +v.id AND services.next_period = +v.expected"
        );
        let done = on_tx!(tx, |c| {
            let mut q = sqlx::query(&sql);
            for a in chunk {
                q = q
                    .bind(a.id.get())
                    .bind(i64::from(a.expected))
                    .bind(i64::from(a.next_period))
                    .bind(a.next_due_date)
                    .bind(a.credit_used_minor);
            }
            q.bind(at).execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
        moved += done;
    }
    Ok(moved)
}

// ---------------------------------------------------------------------------------------
// Invoices

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvoiceRecord {
    pub id: InvoiceId,
    pub client_id: ClientId,
    pub reseller_id: Option<ResellerId>,
    pub number: Option<String>,
    pub kind: InvoiceKind,
    pub status: InvoiceStatus,
    pub currency: Currency,
    pub tax_mode: TaxMode,
    pub issue_date: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub subtotal: Money,
    pub tax: Money,
    pub total: Money,
    pub paid: Money,
    pub credited: Money,
    pub refunded: Money,
    pub exchange_rate: Option<Decimal>,
    pub base_currency: Option<Currency>,
    pub buyer: Option<serde_json::Value>,
    pub seller: Option<serde_json::Value>,
    pub late_fee_at: Option<NaiveDate>,
    pub issue_entry_id: Option<EntryId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

impl InvoiceRecord {
    /// How people name the invoice: its number, or `draft 12` before it has one.
    pub fn display(&self) -> String {
        self.number
            .clone()
            .unwrap_or_else(|| format!("draft {}", self.id))
    }

    /// What the client still owes: total − paid − credited.
    pub fn balance_due(&self) -> Money {
        Money::new(
            self.total.minor() - self.paid.minor() - self.credited.minor(),
            self.currency,
        )
    }
}

const INVOICE_COLUMNS: &str = "id, client_id, reseller_id, number, kind, status, currency, tax_mode, issue_date, \
    due_date, subtotal_minor, tax_minor, total_minor, paid_minor, credited_minor, refunded_minor, exchange_rate, \
    base_currency, buyer, seller, late_fee_at, issue_entry_id, created_at, updated_at, paid_at";

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    id: i64,
    client_id: i64,
    reseller_id: Option<i64>,
    number: Option<String>,
    kind: String,
    status: String,
    currency: String,
    tax_mode: String,
    issue_date: Option<NaiveDate>,
    due_date: Option<NaiveDate>,
    subtotal_minor: i64,
    tax_minor: i64,
    total_minor: i64,
    paid_minor: i64,
    credited_minor: i64,
    refunded_minor: i64,
    exchange_rate: Option<String>,
    base_currency: Option<String>,
    buyer: Option<String>,
    seller: Option<String>,
    late_fee_at: Option<NaiveDate>,
    issue_entry_id: Option<i64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
}

fn tax_mode(text: &str) -> Result<TaxMode, StoreError> {
    match text {
        "exclusive" => Ok(TaxMode::Exclusive),
        "inclusive" => Ok(TaxMode::Inclusive),
        other => Err(corrupt("tax mode", other)),
    }
}

pub(crate) fn tax_mode_str(mode: TaxMode) -> &'static str {
    match mode {
        TaxMode::Exclusive => "exclusive",
        TaxMode::Inclusive => "inclusive",
    }
}

fn json(what: &str, text: Option<String>) -> Result<Option<serde_json::Value>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|_| corrupt(what, &t)))
        .transpose()
}

impl TryFrom<InvoiceRow> for InvoiceRecord {
    type Error = StoreError;
    fn try_from(r: InvoiceRow) -> Result<InvoiceRecord, StoreError> {
        let cur = currency(&r.currency)?;
        let m = |minor| Money::new(minor, cur);
        Ok(InvoiceRecord {
            id: InvoiceId(r.id),
            client_id: ClientId(r.client_id),
            reseller_id: r.reseller_id.map(ResellerId),
            number: r.number,
            kind: InvoiceKind::parse(&r.kind).ok_or_else(|| corrupt("invoice kind", &r.kind))?,
            status: InvoiceStatus::parse(&r.status)
                .ok_or_else(|| corrupt("invoice status", &r.status))?,
            currency: cur,
            tax_mode: tax_mode(&r.tax_mode)?,
            issue_date: r.issue_date,
            due_date: r.due_date,
            subtotal: m(r.subtotal_minor),
            tax: m(r.tax_minor),
            total: m(r.total_minor),
            paid: m(r.paid_minor),
            credited: m(r.credited_minor),
            refunded: m(r.refunded_minor),
            exchange_rate: r
                .exchange_rate
                .map(|t| parse_decimal("exchange rate", &t))
                .transpose()?,
            base_currency: r.base_currency.as_deref().map(currency).transpose()?,
            buyer: json("buyer", r.buyer)?,
            seller: json("seller", r.seller)?,
            late_fee_at: r.late_fee_at,
            issue_entry_id: r.issue_entry_id.map(EntryId),
            created_at: r.created_at,
            updated_at: r.updated_at,
            paid_at: r.paid_at,
        })
    }
}

/// A stored invoice line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineRecord {
    pub id: InvoiceLineId,
    pub position: i64,
    pub kind: LineKind,
    pub service_id: Option<ServiceId>,
    pub period_index: Option<i64>,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub description: String,
    pub quantity: i64,
    pub unit: Money,
    pub discount: Money,
    pub net: Money,
    pub tax1_name: Option<String>,
    pub tax1_rate: Option<Decimal>,
    pub tax1: Money,
    pub tax2_name: Option<String>,
    pub tax2_rate: Option<Decimal>,
    pub tax2: Money,
    pub total: Money,
    pub credited: Money,
}

const LINE_COLUMNS: &str = "id, position, kind, service_id, period_index, period_start, period_end, description, \
    quantity, unit_minor, discount_minor, net_minor, tax1_name, tax1_rate, tax1_minor, tax2_name, tax2_rate, \
    tax2_minor, total_minor, credited_minor";

#[derive(sqlx::FromRow)]
struct LineRow {
    id: i64,
    position: i64,
    kind: String,
    service_id: Option<i64>,
    period_index: Option<i64>,
    period_start: Option<NaiveDate>,
    period_end: Option<NaiveDate>,
    description: String,
    quantity: i64,
    unit_minor: i64,
    discount_minor: i64,
    net_minor: i64,
    tax1_name: Option<String>,
    tax1_rate: Option<String>,
    tax1_minor: i64,
    tax2_name: Option<String>,
    tax2_rate: Option<String>,
    tax2_minor: i64,
    total_minor: i64,
    credited_minor: i64,
}

impl LineRow {
    fn into_record(self, cur: Currency) -> Result<LineRecord, StoreError> {
        let m = |minor| Money::new(minor, cur);
        Ok(LineRecord {
            id: InvoiceLineId(self.id),
            position: self.position,
            kind: LineKind::parse(&self.kind).ok_or_else(|| corrupt("line kind", &self.kind))?,
            service_id: self.service_id.map(ServiceId),
            period_index: self.period_index,
            period_start: self.period_start,
            period_end: self.period_end,
            description: self.description,
            quantity: self.quantity,
            unit: m(self.unit_minor),
            discount: m(self.discount_minor),
            net: m(self.net_minor),
            tax1_name: self.tax1_name,
            tax1_rate: self
                .tax1_rate
                .map(|t| parse_decimal("tax rate", &t))
                .transpose()?,
            tax1: m(self.tax1_minor),
            tax2_name: self.tax2_name,
            tax2_rate: self
                .tax2_rate
                .map(|t| parse_decimal("tax rate", &t))
                .transpose()?,
            tax2: m(self.tax2_minor),
            total: m(self.total_minor),
            credited: m(self.credited_minor),
        })
    }
}

/// An invoice to insert, with its computed lines.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub client_id: ClientId,
    pub reseller_id: Option<ResellerId>,
    /// `Some` when it is inserted already issued.
    pub number: Option<String>,
    pub kind: InvoiceKind,
    pub status: InvoiceStatus,
    pub currency: Currency,
    pub tax_mode: TaxMode,
    pub issue_date: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub subtotal: Money,
    pub tax: Money,
    pub total: Money,
    pub exchange_rate: Option<Decimal>,
    pub base_currency: Option<Currency>,
    pub buyer: Option<serde_json::Value>,
    pub seller: Option<serde_json::Value>,
    /// The ledger entry that posted the issue, when it was posted before the insert.
    pub issue_entry: Option<EntryId>,
    pub lines: Vec<Line>,
}

const INVOICE_INSERT_COLUMNS: &str = "client_id, reseller_id, number, kind, status, currency, tax_mode, issue_date, \
    due_date, subtotal_minor, tax_minor, total_minor, exchange_rate, base_currency, buyer, seller, issue_entry_id, created_at, updated_at";
const INVOICE_INSERT_WIDTH: usize = 19;

const LINE_INSERT_COLUMNS: &str = "invoice_id, position, kind, service_id, period_index, period_start, period_end, \
    description, quantity, unit_minor, discount_minor, net_minor, tax1_name, tax1_rate, tax1_minor, tax2_name, \
    tax2_rate, tax2_minor, total_minor";
const LINE_INSERT_WIDTH: usize = 19;

/// Inserts invoices and their lines with multi-row statements (the billing run inserts a
/// thousand at a time). Returns the new ids in input order. Invoices inserted together must
/// all be issued (numbered): ids are matched back by number, since neither engine promises
/// the order of `RETURNING` rows.
pub async fn insert_invoices(
    tx: &mut Tx,
    invoices: &[NewInvoice],
    at: DateTime<Utc>,
) -> Result<Vec<InvoiceId>, StoreError> {
    if invoices.len() > 1 && invoices.iter().any(|i| i.number.is_none()) {
        return Err(StoreError::Corrupt(
            "invoices inserted together must all be numbered".into(),
        ));
    }
    let mut ids = Vec::with_capacity(invoices.len());
    for chunk in invoices.chunks(200) {
        let sql = format!(
            "INSERT INTO invoices ({INVOICE_INSERT_COLUMNS}) VALUES {} RETURNING id, number",
            placeholders(tx, chunk.len(), INVOICE_INSERT_WIDTH)
        );
        let rows: Vec<(i64, Option<String>)> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql);
            for i in chunk {
                q = q
                    .bind(i.client_id.get())
                    .bind(i.reseller_id.map(ResellerId::get))
                    .bind(i.number.as_deref())
                    .bind(i.kind.as_str())
                    .bind(i.status.as_str())
                    .bind(i.currency.code())
                    .bind(tax_mode_str(i.tax_mode))
                    .bind(i.issue_date)
                    .bind(i.due_date)
                    .bind(i.subtotal.minor())
                    .bind(i.tax.minor())
                    .bind(i.total.minor())
                    .bind(i.exchange_rate.map(|r| r.to_string()))
                    .bind(i.base_currency.map(|c| c.code()))
                    .bind(i.buyer.as_ref().map(|b| b.to_string()))
                    .bind(i.seller.as_ref().map(|s| s.to_string()))
                    .bind(i.issue_entry.map(EntryId::get))
                    .bind(at)
                    .bind(at);
            }
            q.fetch_all(&mut *c).await
        })?;
        if chunk.len() == 1 {
            ids.push(InvoiceId(rows[0].0));
        } else {
            let by_number: std::collections::HashMap<String, i64> = rows
                .into_iter()
                .filter_map(|(id, n)| n.map(|n| (n, id)))
                .collect();
            for i in chunk {
                let number = i.number.as_deref().unwrap_or_default();
                ids.push(InvoiceId(*by_number.get(number).ok_or_else(|| {
                    StoreError::Corrupt(format!("invoice {number} was not returned"))
                })?));
            }
        }
    }
    // Lines, in the same order.
    let mut rows: Vec<(InvoiceId, usize, &Line)> = Vec::new();
    for (inv, id) in invoices.iter().zip(&ids) {
        for (pos, line) in inv.lines.iter().enumerate() {
            rows.push((*id, pos + 1, line));
        }
    }
    insert_lines(tx, &rows).await?;
    Ok(ids)
}

/// Inserts invoice lines: `(invoice, position, line)`.
async fn insert_lines(tx: &mut Tx, rows: &[(InvoiceId, usize, &Line)]) -> Result<(), StoreError> {
    for chunk in rows.chunks(300) {
        let sql = format!(
            "INSERT INTO invoice_lines ({LINE_INSERT_COLUMNS}) VALUES {}",
            placeholders(tx, chunk.len(), LINE_INSERT_WIDTH)
        );
        on_tx!(tx, |c| {
            let mut q = sqlx::query(&sql);
            for (id, pos, l) in chunk {
                let (index, start, end) = match l.input.period {
                    Some((i, p)) => (Some(i64::from(i)), Some(p.start), Some(p.end)),
                    None => (None, None, None),
                };
                q = q
                    .bind(id.get())
                    .bind(*pos as i64)
                    .bind(l.input.kind.as_str())
                    .bind(l.input.service.map(ServiceId::get))
                    .bind(index)
                    .bind(start)
                    .bind(end)
                    .bind(&l.input.description)
                    .bind(l.input.quantity)
                    .bind(l.input.unit.minor())
                    .bind(l.input.discount.minor())
                    .bind(l.net.minor())
                    .bind(l.tax1.as_ref().map(|t| t.name.clone()))
                    .bind(l.tax1.as_ref().map(|t| t.rate.to_string()))
                    .bind(l.tax1.as_ref().map_or(0, |t| t.amount.minor()))
                    .bind(l.tax2.as_ref().map(|t| t.name.clone()))
                    .bind(l.tax2.as_ref().map(|t| t.rate.to_string()))
                    .bind(l.tax2.as_ref().map_or(0, |t| t.amount.minor()))
                    .bind(l.total.minor());
            }
            q.execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Issues a draft: number, dates, frozen parties and rate, the ledger entry. False when the
/// invoice was no longer a draft.
#[allow(clippy::too_many_arguments)]
pub async fn issue_draft(
    tx: &mut Tx,
    id: InvoiceId,
    number: &str,
    issue_date: NaiveDate,
    due_date: NaiveDate,
    exchange_rate: Option<Decimal>,
    base_currency: Option<Currency>,
    buyer: &serde_json::Value,
    seller: &serde_json::Value,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE invoices SET number = $1, status = 'unpaid', issue_date = $2, due_date = $3, exchange_rate = $4, \
           base_currency = $5, buyer = $6, seller = $7, updated_at = $8 \
         WHERE id = $9 AND status = 'draft'"
    )
    .bind(number)
    .bind(issue_date)
    .bind(due_date)
    .bind(exchange_rate.map(|r| r.to_string()))
    .bind(base_currency.map(|c| c.code()))
    .bind(buyer.to_string())
    .bind(seller.to_string())
    .bind(at)
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Links invoices to the ledger entries that issued them.
pub async fn set_issue_entries(
    tx: &mut Tx,
    links: &[(InvoiceId, EntryId)],
) -> Result<(), StoreError> {
    for chunk in links.chunks(500) {
        let mut values = String::new();
        for i in 0..chunk.len() {
            if i > 0 {
                values.push_str(", ");
            }
            values.push_str(&format!(
                "(CAST({} AS BIGINT), CAST({} AS BIGINT))",
                tx.placeholder(2 * i + 1),
                tx.placeholder(2 * i + 2)
            ));
        }
        // `+v.id`: drive from `v` by primary key (see `advance_services`).
        let sql = format!(
            "WITH v (id, entry) AS (VALUES {values}) \
             UPDATE invoices SET issue_entry_id = v.entry FROM v WHERE invoices.id = +v.id"
        );
        on_tx!(tx, |c| {
            let mut q = sqlx::query(&sql);
            for (inv, entry) in chunk {
                q = q.bind(inv.get()).bind(entry.get());
            }
            q.execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// The invoice if the scope sees it, read in the transaction (locked on PostgreSQL).
pub async fn invoice_for_update(
    tx: &mut Tx,
    scope: Scope,
    id: InvoiceId,
) -> Result<Option<InvoiceRecord>, StoreError> {
    let (reseller, only) = scope_params(scope);
    let lock = match tx.engine() {
        crate::Engine::Postgres => " FOR UPDATE",
        crate::Engine::Sqlite => "",
    };
    let sql = format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1 AND {}{lock}",
        scope_sql("", 2, 3)
    );
    let row: Option<InvoiceRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id.get())
        .bind(reseller)
        .bind(only)
        .fetch_optional(&mut *c)
        .await)?;
    row.map(InvoiceRecord::try_from).transpose()
}

pub async fn get_invoice(
    db: &Db,
    scope: Scope,
    id: InvoiceId,
) -> Result<Option<InvoiceRecord>, StoreError> {
    let (reseller, only) = scope_params(scope);
    let sql = format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1 AND {}",
        scope_sql("", 2, 3)
    );
    let row: Option<InvoiceRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id.get())
        .bind(reseller)
        .bind(only)
        .fetch_optional(p)
        .await)?;
    row.map(InvoiceRecord::try_from).transpose()
}

/// The invoice, read inside a transaction (host scope: the caller made or locked it).
pub async fn invoice_tx(tx: &mut Tx, id: InvoiceId) -> Result<Option<InvoiceRecord>, StoreError> {
    let sql = format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1");
    let row: Option<InvoiceRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_optional(&mut *c)
        .await)?;
    row.map(InvoiceRecord::try_from).transpose()
}

/// The lines of an invoice (the caller has checked the scope on the invoice).
pub async fn invoice_lines(
    db: &Db,
    id: InvoiceId,
    currency: Currency,
) -> Result<Vec<LineRecord>, StoreError> {
    let sql =
        format!("SELECT {LINE_COLUMNS} FROM invoice_lines WHERE invoice_id = $1 ORDER BY position");
    let rows: Vec<LineRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_all(p)
        .await)?;
    rows.into_iter().map(|r| r.into_record(currency)).collect()
}

/// The same, inside a transaction.
pub async fn invoice_lines_tx(
    tx: &mut Tx,
    id: InvoiceId,
    currency: Currency,
) -> Result<Vec<LineRecord>, StoreError> {
    let sql =
        format!("SELECT {LINE_COLUMNS} FROM invoice_lines WHERE invoice_id = $1 ORDER BY position");
    let rows: Vec<LineRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_all(&mut *c)
        .await)?;
    rows.into_iter().map(|r| r.into_record(currency)).collect()
}

/// The lines that charged a service for the period starting `start`, on issued invoices
/// still standing (unpaid, paid or in collections), with something left to credit: its
/// renewal (or first-invoice) lines and the charges of plan changes made in that period.
/// What a credit for unused time of that period may come from, newest invoice first, so a
/// later charge (an upgrade) is credited before the renewal it changed. Returns (invoice,
/// line) ids.
pub async fn period_charges(
    tx: &mut Tx,
    service: ServiceId,
    start: NaiveDate,
) -> Result<Vec<(InvoiceId, InvoiceLineId)>, StoreError> {
    let rows: Vec<(i64, i64)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT l.invoice_id, l.id FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id \
         WHERE l.service_id = $1 AND l.period_start = $2 AND l.total_minor > 0 \
           AND l.total_minor > l.credited_minor \
           AND l.kind IN ('service', 'option', 'proration') \
           AND i.status IN ('unpaid', 'paid', 'collections') \
         ORDER BY l.invoice_id DESC, l.id DESC"
    )
    .bind(service.get())
    .bind(start)
    .fetch_all(&mut *c)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(i, l)| (InvoiceId(i), InvoiceLineId(l)))
        .collect())
}

#[derive(Debug, Clone, Default)]
pub struct InvoiceFilter {
    pub client: Option<ClientId>,
    pub status: Option<InvoiceStatus>,
}

pub async fn list_invoices(
    db: &Db,
    scope: Scope,
    filter: &InvoiceFilter,
    after: Option<Cursor>,
    limit: u32,
) -> Result<Page<InvoiceRecord>, StoreError> {
    let (reseller, only) = scope_params(scope);
    let sql = format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE id > $1 AND {} \
           AND (CAST($4 AS BIGINT) IS NULL OR client_id = $4) AND (CAST($5 AS TEXT) IS NULL OR status = $5) \
         ORDER BY id LIMIT $6",
        scope_sql("", 2, 3)
    );
    let rows: Vec<InvoiceRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(after.map_or(0, |c| c.after_id))
        .bind(reseller)
        .bind(only)
        .bind(filter.client.map(ClientId::get))
        .bind(filter.status.map(InvoiceStatus::as_str))
        .bind(i64::from(limit) + 1)
        .fetch_all(p)
        .await)?;
    let items = rows
        .into_iter()
        .map(InvoiceRecord::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(items, limit, |i| i.id.get()))
}

/// Adds `amount` to what was paid on a payable invoice, refusing to pass what is due; marks
/// it paid when nothing is left. Returns the updated invoice, or `None` when the invoice was
/// not payable or the amount is more than is due (nothing changed).
pub async fn add_payment(
    tx: &mut Tx,
    id: InvoiceId,
    amount_minor: i64,
    at: DateTime<Utc>,
) -> Result<Option<InvoiceRecord>, StoreError> {
    let sql = format!(
        "UPDATE invoices SET paid_minor = paid_minor + $1, updated_at = $2, \
           status = CASE WHEN paid_minor + $1 + credited_minor = total_minor THEN 'paid' ELSE status END, \
           paid_at = CASE WHEN paid_minor + $1 + credited_minor = total_minor THEN $2 ELSE paid_at END \
         WHERE id = $3 AND status IN ('unpaid', 'collections') AND paid_minor + $1 + credited_minor <= total_minor \
         RETURNING {INVOICE_COLUMNS}"
    );
    let row: Option<InvoiceRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(amount_minor)
        .bind(at)
        .bind(id.get())
        .fetch_optional(&mut *c)
        .await)?;
    row.map(InvoiceRecord::try_from).transpose()
}

/// Moves an invoice between statuses (cancel, collections); false when it was not in `from`.
pub async fn set_invoice_status(
    tx: &mut Tx,
    id: InvoiceId,
    from: InvoiceStatus,
    to: InvoiceStatus,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = on_tx!(tx, |c| sqlx::query(
        "UPDATE invoices SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4"
    )
    .bind(to.as_str())
    .bind(at)
    .bind(id.get())
    .bind(from.as_str())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

// ---------------------------------------------------------------------------------------
// Payments

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaymentRecord {
    pub id: PaymentId,
    pub invoice_id: InvoiceId,
    pub client_id: ClientId,
    pub method: String,
    pub reference: String,
    pub amount: Money,
    pub entry_id: EntryId,
    pub note: Option<String>,
    pub actor_label: String,
    pub received_on: NaiveDate,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    id: i64,
    invoice_id: i64,
    client_id: i64,
    method: String,
    reference: String,
    amount_minor: i64,
    currency: String,
    entry_id: i64,
    note: Option<String>,
    actor_label: String,
    received_on: NaiveDate,
    created_at: DateTime<Utc>,
}

const PAYMENT_COLUMNS: &str = "id, invoice_id, client_id, method, reference, amount_minor, currency, entry_id, note, \
    actor_label, received_on, created_at";

impl TryFrom<PaymentRow> for PaymentRecord {
    type Error = StoreError;
    fn try_from(r: PaymentRow) -> Result<PaymentRecord, StoreError> {
        Ok(PaymentRecord {
            id: PaymentId(r.id),
            invoice_id: InvoiceId(r.invoice_id),
            client_id: ClientId(r.client_id),
            method: r.method,
            reference: r.reference,
            amount: Money::new(r.amount_minor, currency(&r.currency)?),
            entry_id: EntryId(r.entry_id),
            note: r.note,
            actor_label: r.actor_label,
            received_on: r.received_on,
            created_at: r.created_at,
        })
    }
}

/// A payment to record.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    pub invoice: &'a InvoiceRecord,
    pub method: &'a str,
    pub reference: &'a str,
    pub amount: Money,
    pub entry_id: EntryId,
    pub note: Option<&'a str>,
    pub actor_label: &'a str,
    pub received_on: NaiveDate,
}

/// Inserts a payment row. The same (method, reference) twice is
/// `Conflict { constraint: "payments_reference_key" }`.
pub async fn insert_payment(
    tx: &mut Tx,
    p: &NewPayment<'_>,
    at: DateTime<Utc>,
) -> Result<PaymentRecord, StoreError> {
    let sql = format!(
        "INSERT INTO payments (invoice_id, client_id, reseller_id, method, reference, amount_minor, currency, \
           entry_id, note, actor_label, received_on, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {PAYMENT_COLUMNS}"
    );
    let row: PaymentRow = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(p.invoice.id.get())
        .bind(p.invoice.client_id.get())
        .bind(p.invoice.reseller_id.map(ResellerId::get))
        .bind(p.method)
        .bind(p.reference)
        .bind(p.amount.minor())
        .bind(p.amount.currency().code())
        .bind(p.entry_id.get())
        .bind(p.note)
        .bind(p.actor_label)
        .bind(p.received_on)
        .bind(at)
        .fetch_one(&mut *c)
        .await)?;
    row.try_into()
}

/// The payment recorded under (method, reference), if any.
pub async fn payment_by_reference(
    tx: &mut Tx,
    method: &str,
    reference: &str,
) -> Result<Option<PaymentRecord>, StoreError> {
    let sql =
        format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE method = $1 AND reference = $2");
    let row: Option<PaymentRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(method)
        .bind(reference)
        .fetch_optional(&mut *c)
        .await)?;
    row.map(PaymentRecord::try_from).transpose()
}

pub async fn invoice_payments(db: &Db, id: InvoiceId) -> Result<Vec<PaymentRecord>, StoreError> {
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE invoice_id = $1 ORDER BY id");
    let rows: Vec<PaymentRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_all(p)
        .await)?;
    rows.into_iter().map(PaymentRecord::try_from).collect()
}

/// The same, inside a transaction.
pub async fn invoice_payments_tx(
    tx: &mut Tx,
    id: InvoiceId,
) -> Result<Vec<PaymentRecord>, StoreError> {
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE invoice_id = $1 ORDER BY id");
    let rows: Vec<PaymentRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_all(&mut *c)
        .await)?;
    rows.into_iter().map(PaymentRecord::try_from).collect()
}

// ---------------------------------------------------------------------------------------
// The billing run's reads

/// A renewable service with what the billing run needs of its client, read in one pass.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueRow {
    pub id: i64,
    pub client_id: i64,
    pub reseller_id: Option<i64>,
    pub product_id: i64,
    pub label: String,
    pub cycle: String,
    pub currency: String,
    pub recurring_minor: i64,
    pub anniversary: NaiveDate,
    /// The billing day due dates keep; NULL: the anniversary's day (see [`anniversary`]).
    pub billing_day: Option<i64>,
    pub next_period: i64,
    pub next_due_date: NaiveDate,
    pub cancel_on: Option<NaiveDate>,
    pub pending_credit_minor: i64,
    pub tax_class: Option<String>,
}

/// Where a renewable service stands in the billing run's walk: enough to cut batches and to
/// know which period a batch expects to bill. The batch reads the rest ([`DueRow`]) under
/// its lock.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct DueKey {
    pub id: i64,
    pub client_id: i64,
    pub next_period: i64,
}

/// The columns of a [`DueRow`] and where they come from, read by [`lock_services`].
const DUE_COLUMNS: &str = "s.id, s.client_id, s.reseller_id, s.product_id, s.label, s.cycle, s.currency, \
           s.recurring_minor, s.anniversary, s.billing_day, s.next_period, s.next_due_date, s.cancel_on, \
           s.pending_credit_minor, p.tax_class";
const DUE_FROM: &str = "FROM services s JOIN products p ON p.id = s.product_id";

/// Renewable services (active or suspended, not yet invoiced up to `horizon`) after
/// `(client, id)` in (client, id) order, at most `limit`. Reads the pool, not a
/// transaction: the batch reads each service again under its write transaction
/// ([`lock_services`]), so only the keys are read here.
pub async fn due_services(
    db: &Db,
    after: (i64, i64),
    horizon: NaiveDate,
    limit: u32,
) -> Result<Vec<DueKey>, StoreError> {
    // The row-value comparison lets both engines seek the (client_id, id) index to the
    // cursor; the equivalent OR form made each batch scan every row before it (quadratic).
    let sql = "SELECT s.id, s.client_id, s.next_period FROM services s \
         WHERE s.status IN ('active', 'suspended') AND s.next_due_date IS NOT NULL AND s.next_due_date <= $1 \
           AND (s.client_id, s.id) > ($2, $3) \
         ORDER BY s.client_id, s.id LIMIT $4";
    Ok(on_db!(db, |p| sqlx::query_as(sql)
        .bind(horizon)
        .bind(after.0)
        .bind(after.1)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?)
}

/// How many services [`due_services`] would walk, for the progress bar.
pub async fn count_due_services(db: &Db, horizon: NaiveDate) -> Result<u64, StoreError> {
    let n: i64 = on_db!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM services WHERE status IN ('active', 'suspended') \
           AND next_due_date IS NOT NULL AND next_due_date <= $1"
    )
    .bind(horizon)
    .fetch_one(p)
    .await)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The services of a batch as they are now, read (and on PostgreSQL locked) inside the
/// batch's transaction: the rows the batch plans from. Only services still renewable are
/// returned. Planning from these rows, not from the earlier [`due_services`] read, means a
/// batch never bills a period another run already billed, nor on terms (a cancellation, a
/// plan change) committed between that read and this lock.
pub async fn lock_services(
    tx: &mut Tx,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, DueRow>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Locked {
        #[sqlx(flatten)]
        row: DueRow,
        status: String,
    }
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let lock = match tx.engine() {
            crate::Engine::Postgres => " ORDER BY s.id FOR UPDATE OF s",
            crate::Engine::Sqlite => "",
        };
        // The status is checked here, not in SQL: a status condition lets PostgreSQL
        // combine the primary key with a full scan of the partial billing index.
        let sql = format!(
            "SELECT {DUE_COLUMNS}, s.status {DUE_FROM} WHERE s.id IN ({}) AND s.next_due_date IS NOT NULL{lock}",
            placeholders(tx, chunk.len(), 1)
        );
        let rows: Vec<Locked> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(&mut *c).await
        })?;
        out.extend(
            rows.into_iter()
                .filter(|l| ServiceStatus::parse(&l.status).is_some_and(ServiceStatus::renews))
                .map(|l| (l.row.id, l.row)),
        );
    }
    Ok(out)
}

/// What the billing run needs to know of a client.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BillingClientRow {
    pub id: i64,
    pub kind: String,
    pub company_name: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: String,
    pub tax_id: Option<String>,
    pub tax_exempt: bool,
    pub group_tax_exempt: Option<bool>,
    pub wallet_auto_apply: Option<bool>,
    pub group_wallet_auto_apply: Option<bool>,
    pub invoice_lead_days: Option<i64>,
    pub group_invoice_lead_days: Option<i64>,
    pub billing_day: Option<i64>,
    pub group_billing_day: Option<i64>,
}

const BILLING_CLIENT_SELECT: &str = "SELECT c.id, c.kind, c.company_name, c.first_name, c.last_name, c.email, \
    c.address_line1, c.address_line2, c.city, c.region, c.postal_code, c.country, c.tax_id, c.tax_exempt, \
    g.tax_exempt AS group_tax_exempt, c.wallet_auto_apply, g.wallet_auto_apply AS group_wallet_auto_apply, \
    c.invoice_lead_days, g.invoice_lead_days AS group_invoice_lead_days, c.billing_day, \
    g.billing_day AS group_billing_day \
    FROM clients c LEFT JOIN client_groups g ON g.id = c.group_id";

/// The billing view of many clients at once, read in the caller's transaction.
pub async fn billing_clients(
    tx: &mut Tx,
    ids: &[i64],
) -> Result<Vec<BillingClientRow>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "{BILLING_CLIENT_SELECT} WHERE c.id IN ({})",
            (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows: Vec<BillingClientRow> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(&mut *c).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// The billing view of one client, in a transaction.
pub async fn billing_client(
    tx: &mut Tx,
    id: ClientId,
) -> Result<Option<BillingClientRow>, StoreError> {
    let sql = format!("{BILLING_CLIENT_SELECT} WHERE c.id = $1");
    Ok(on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_optional(&mut *c)
        .await)?)
}

/// Wallet accounts (`wallet:client:{id}:{currency}`) with their balance and credit limit,
/// for the clients given, in one currency-agnostic read: `(client, currency) -> (account id,
/// available = -balance + credit limit)`.
pub async fn wallets_of(
    tx: &mut Tx,
    clients: &[i64],
) -> Result<std::collections::HashMap<(i64, String), (i64, i64)>, StoreError> {
    let mut out = std::collections::HashMap::new();
    for chunk in clients.chunks(500) {
        let sql = format!(
            "SELECT client_id, currency, id, balance_minor, COALESCE(credit_limit_minor, 0) FROM ledger_accounts \
             WHERE kind = 'liability' AND code LIKE 'wallet:client:%' AND client_id IN ({})",
            placeholders(tx, chunk.len(), 1)
        );
        let rows: Vec<(i64, String, i64, i64, i64)> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(&mut *c).await
        })?;
        for (client, cur, id, balance, limit) in rows {
            // A liability's natural balance is credits - debits = -balance.
            out.insert((client, cur), (id, -balance + limit));
        }
    }
    Ok(out)
}

/// A payment from a client's wallet made by the billing run.
#[derive(Debug, Clone)]
pub struct WalletPayment {
    pub invoice: InvoiceId,
    pub client: ClientId,
    pub reseller: Option<ResellerId>,
    pub amount: Money,
    pub entry: EntryId,
    pub reference: String,
    pub received_on: NaiveDate,
}

/// Inserts wallet payments made by the billing run in bulk (method `wallet`).
pub async fn insert_wallet_payments(
    tx: &mut Tx,
    rows: &[WalletPayment],
    actor_label: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(300) {
        let sql = format!(
            "INSERT INTO payments (invoice_id, client_id, reseller_id, method, reference, amount_minor, currency, \
               entry_id, note, actor_label, received_on, created_at) VALUES {}",
            placeholders(tx, chunk.len(), 12)
        );
        on_tx!(tx, |c| {
            let mut q = sqlx::query(&sql);
            for w in chunk {
                q = q
                    .bind(w.invoice.get())
                    .bind(w.client.get())
                    .bind(w.reseller.map(ResellerId::get))
                    .bind("wallet")
                    .bind(w.reference.as_str())
                    .bind(w.amount.minor())
                    .bind(w.amount.currency().code())
                    .bind(w.entry.get())
                    .bind(Option::<&str>::None)
                    .bind(actor_label)
                    .bind(w.received_on)
                    .bind(at);
            }
            q.execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Marks invoices paid by the billing run's wallet auto-apply in bulk: `(id, amount)`.
pub async fn add_payments_bulk(
    tx: &mut Tx,
    rows: &[(InvoiceId, i64)],
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut moved = 0;
    for chunk in rows.chunks(500) {
        let mut values = String::new();
        for i in 0..chunk.len() {
            if i > 0 {
                values.push_str(", ");
            }
            values.push_str(&format!(
                "(CAST({} AS BIGINT), CAST({} AS BIGINT))",
                tx.placeholder(2 * i + 1),
                tx.placeholder(2 * i + 2)
            ));
        }
        let at_p = tx.placeholder(2 * chunk.len() + 1);
        // `+v.id`: drive from `v` by primary key (see `advance_services`).
        let sql = format!(
            "WITH v (id, amount) AS (VALUES {values}) \
             UPDATE invoices SET paid_minor = invoices.paid_minor + v.amount, updated_at = {at_p}, \
               status = CASE WHEN invoices.paid_minor + v.amount + invoices.credited_minor = invoices.total_minor THEN 'paid' ELSE invoices.status END, \
               paid_at = CASE WHEN invoices.paid_minor + v.amount + invoices.credited_minor = invoices.total_minor THEN {at_p} ELSE invoices.paid_at END \
             FROM v WHERE invoices.id = +v.id AND invoices.paid_minor + v.amount + invoices.credited_minor <= invoices.total_minor"
        );
        let done = on_tx!(tx, |c| {
            let mut q = sqlx::query(&sql);
            for (inv, amount) in chunk {
                q = q.bind(inv.get()).bind(*amount);
            }
            q.bind(at).execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
        moved += done;
    }
    Ok(moved)
}

/// Records a billing run (informational).
pub async fn record_billing_run(
    tx: &mut Tx,
    as_of: NaiveDate,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    services: i64,
    invoices: i64,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO billing_runs (as_of, started_at, finished_at, services, invoices) VALUES ($1, $2, $3, $4, $5)"
    )
    .bind(as_of)
    .bind(started_at)
    .bind(finished_at)
    .bind(services)
    .bind(invoices)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The first invoice of an order (the one that billed its services).
pub async fn order_invoice(db: &Db, order: OrderId) -> Result<Option<InvoiceId>, StoreError> {
    let id: Option<i64> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT MIN(l.invoice_id) FROM invoice_lines l JOIN services s ON s.id = l.service_id \
         WHERE s.order_id = $1"
    )
    .bind(order.get())
    .fetch_one(p)
    .await)?;
    Ok(id.map(InvoiceId))
}

/// The largest invoice lead time set on any client or client group.
pub async fn max_invoice_lead_days(db: &Db) -> Result<Option<i64>, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_scalar(
        "SELECT MAX(d) FROM (SELECT invoice_lead_days AS d FROM clients \
         UNION ALL SELECT invoice_lead_days AS d FROM client_groups) AS leads"
    )
    .fetch_one(p)
    .await)?)
}

/// One chosen option of a service: `(option, value, quantity)`.
pub type ChosenOption = (
    keel_domain::ids::OptionId,
    keel_domain::ids::OptionValueId,
    i64,
);

/// Replaces a service's chosen options.
pub async fn set_service_options(
    tx: &mut Tx,
    service: ServiceId,
    options: &[ChosenOption],
) -> Result<(), StoreError> {
    on_tx!(tx, |c| sqlx::query(
        "DELETE FROM service_options WHERE service_id = $1"
    )
    .bind(service.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    for (option, value, quantity) in options {
        on_tx!(tx, |c| {
            sqlx::query(
            "INSERT INTO service_options (service_id, option_id, value_id, quantity) VALUES ($1, $2, $3, $4)"
        )
        .bind(service.get())
        .bind(option.get())
        .bind(value.get())
        .bind(*quantity)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// A service's chosen options: `(option, value, quantity)`.
pub async fn service_options(
    tx: &mut Tx,
    service: ServiceId,
) -> Result<Vec<ChosenOption>, StoreError> {
    let rows: Vec<(i64, i64, i64)> = on_tx!(tx, |c| {
        sqlx::query_as(
        "SELECT option_id, value_id, quantity FROM service_options WHERE service_id = $1 ORDER BY option_id"
    )
    .bind(service.get())
    .fetch_all(&mut *c)
    .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(o, v, q)| {
            (
                keel_domain::ids::OptionId(o),
                keel_domain::ids::OptionValueId(v),
                q,
            )
        })
        .collect())
}

/// Moves a service to another product and price (an upgrade or a downgrade), adding
/// `add_credit_minor` to the credit its next renewal takes off.
pub async fn change_plan(
    tx: &mut Tx,
    id: ServiceId,
    product: ProductId,
    label: &str,
    recurring_minor: i64,
    add_credit_minor: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE services SET product_id = $1, label = $2, recurring_minor = $3,            pending_credit_minor = pending_credit_minor + $4, updated_at = $5 WHERE id = $6"
    )
    .bind(product.get())
    .bind(label)
    .bind(recurring_minor)
    .bind(add_credit_minor)
    .bind(at)
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Credit notes

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CreditNoteRecord {
    pub id: keel_domain::ids::CreditNoteId,
    pub number: String,
    pub invoice_id: InvoiceId,
    pub client_id: ClientId,
    pub net: Money,
    pub tax: Money,
    pub total: Money,
    pub disposition: keel_domain::lifecycle::CreditDisposition,
    pub reason: String,
    pub entry_id: EntryId,
    pub issue_date: NaiveDate,
    pub created_at: DateTime<Utc>,
    /// `(invoice line, net, tax, total)`.
    pub lines: Vec<(InvoiceLineId, i64, i64, i64)>,
}

/// A credit note to insert (already computed and posted).
#[derive(Debug, Clone)]
pub struct NewCreditNote<'a> {
    pub number: &'a str,
    pub invoice: &'a InvoiceRecord,
    pub net: Money,
    pub tax: Money,
    pub total: Money,
    pub disposition: keel_domain::lifecycle::CreditDisposition,
    pub reason: &'a str,
    pub entry_id: EntryId,
    pub issue_date: NaiveDate,
    pub lines: Vec<(InvoiceLineId, i64, i64, i64)>,
}

/// Inserts a credit note and its lines, and moves the credited amounts of the invoice lines.
pub async fn insert_credit_note(
    tx: &mut Tx,
    n: &NewCreditNote<'_>,
    at: DateTime<Utc>,
) -> Result<keel_domain::ids::CreditNoteId, StoreError> {
    let id: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO credit_notes (number, invoice_id, client_id, reseller_id, currency, net_minor, tax_minor, \
           total_minor, disposition, reason, entry_id, issue_date, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id"
    )
    .bind(n.number)
    .bind(n.invoice.id.get())
    .bind(n.invoice.client_id.get())
    .bind(n.invoice.reseller_id.map(ResellerId::get))
    .bind(n.total.currency().code())
    .bind(n.net.minor())
    .bind(n.tax.minor())
    .bind(n.total.minor())
    .bind(n.disposition.as_str())
    .bind(n.reason)
    .bind(n.entry_id.get())
    .bind(n.issue_date)
    .bind(at)
    .fetch_one(&mut *c)
    .await
    })?;
    for (line, net, tax, total) in &n.lines {
        on_tx!(tx, |c| {
            sqlx::query(
            "INSERT INTO credit_note_lines (credit_note_id, invoice_line_id, net_minor, tax_minor, total_minor) \
             VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(id)
        .bind(line.get())
        .bind(*net)
        .bind(*tax)
        .bind(*total)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected())
        })?;
        let moved = on_tx!(tx, |c| sqlx::query(
            "UPDATE invoice_lines SET credited_minor = credited_minor + $1 \
             WHERE id = $2 AND credited_minor + $1 <= total_minor"
        )
        .bind(*total)
        .bind(line.get())
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        if moved != 1 {
            return Err(StoreError::Conflict {
                constraint: "invoice_line_overcredited".into(),
            });
        }
    }
    Ok(keel_domain::ids::CreditNoteId(id))
}

/// Adds credited (what is owed) and refunded (what was paid) amounts to an invoice and sets
/// its status; the table's checks refuse more than the invoice.
pub async fn credit_invoice(
    tx: &mut Tx,
    id: InvoiceId,
    credited_minor: i64,
    refunded_minor: i64,
    status: InvoiceStatus,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE invoices SET credited_minor = credited_minor + $1, refunded_minor = refunded_minor + $2, \
           status = $3, updated_at = $4 WHERE id = $5"
    )
    .bind(credited_minor)
    .bind(refunded_minor)
    .bind(status.as_str())
    .bind(at)
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct CreditNoteRow {
    id: i64,
    number: String,
    invoice_id: i64,
    client_id: i64,
    currency: String,
    net_minor: i64,
    tax_minor: i64,
    total_minor: i64,
    disposition: String,
    reason: String,
    entry_id: i64,
    issue_date: NaiveDate,
    created_at: DateTime<Utc>,
}

/// The credit notes of an invoice (the caller has checked the scope on the invoice), or one
/// credit note by id when `only` is given.
pub async fn credit_notes(
    db: &Db,
    scope: Scope,
    invoice: Option<InvoiceId>,
    only: Option<keel_domain::ids::CreditNoteId>,
) -> Result<Vec<CreditNoteRecord>, StoreError> {
    let (reseller, client) = scope_params(scope);
    let sql = format!(
        "SELECT id, number, invoice_id, client_id, currency, net_minor, tax_minor, total_minor, disposition, \
           reason, entry_id, issue_date, created_at FROM credit_notes \
         WHERE (CAST($1 AS BIGINT) IS NULL OR invoice_id = $1) AND (CAST($2 AS BIGINT) IS NULL OR id = $2) AND {} \
         ORDER BY id",
        scope_sql("", 3, 4)
    );
    let rows: Vec<CreditNoteRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(invoice.map(InvoiceId::get))
        .bind(only.map(|c| c.get()))
        .bind(reseller)
        .bind(client)
        .fetch_all(p)
        .await)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let cur = currency(&r.currency)?;
        let lines: Vec<(i64, i64, i64, i64)> = on_db!(db, |p| sqlx::query_as(
            "SELECT invoice_line_id, net_minor, tax_minor, total_minor FROM credit_note_lines \
             WHERE credit_note_id = $1 ORDER BY invoice_line_id"
        )
        .bind(r.id)
        .fetch_all(p)
        .await)?;
        out.push(CreditNoteRecord {
            id: keel_domain::ids::CreditNoteId(r.id),
            number: r.number,
            invoice_id: InvoiceId(r.invoice_id),
            client_id: ClientId(r.client_id),
            net: Money::new(r.net_minor, cur),
            tax: Money::new(r.tax_minor, cur),
            total: Money::new(r.total_minor, cur),
            disposition: keel_domain::lifecycle::CreditDisposition::parse(&r.disposition)
                .ok_or_else(|| corrupt("credit disposition", &r.disposition))?,
            reason: r.reason,
            entry_id: EntryId(r.entry_id),
            issue_date: r.issue_date,
            created_at: r.created_at,
            lines: lines
                .into_iter()
                .map(|(l, n, t, tot)| (InvoiceLineId(l), n, t, tot))
                .collect(),
        });
    }
    Ok(out)
}

/// Replaces a draft's lines and amounts; false when the invoice is no longer a draft.
pub async fn replace_draft(
    tx: &mut Tx,
    id: InvoiceId,
    inv: &NewInvoice,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let moved = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE invoices SET currency = $1, due_date = $2, subtotal_minor = $3, tax_minor = $4, \
           total_minor = $5, updated_at = $6 WHERE id = $7 AND status = 'draft'"
    )
    .bind(inv.currency.code())
    .bind(inv.due_date)
    .bind(inv.subtotal.minor())
    .bind(inv.tax.minor())
    .bind(inv.total.minor())
    .bind(at)
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if moved != 1 {
        return Ok(false);
    }
    on_tx!(tx, |c| sqlx::query(
        "DELETE FROM invoice_lines WHERE invoice_id = $1"
    )
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    let rows: Vec<(InvoiceId, usize, &Line)> = inv
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| (id, i + 1, l))
        .collect();
    insert_lines(tx, &rows).await?;
    Ok(true)
}

/// Adds a late fee line to an issued invoice, once: false when the invoice already had one
/// or is no longer payable.
pub async fn add_late_fee(
    tx: &mut Tx,
    id: InvoiceId,
    fee: &Line,
    on: NaiveDate,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let moved = on_tx!(tx, |c| sqlx::query(
        "UPDATE invoices SET subtotal_minor = subtotal_minor + $1, tax_minor = tax_minor + $2, \
           total_minor = total_minor + $3, late_fee_at = $4, updated_at = $5 \
         WHERE id = $6 AND late_fee_at IS NULL AND status IN ('unpaid', 'collections')"
    )
    .bind(fee.net.minor())
    .bind(fee.total.minor() - fee.net.minor())
    .bind(fee.total.minor())
    .bind(on)
    .bind(at)
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    if moved != 1 {
        return Ok(false);
    }
    let position: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COALESCE(MAX(position), 0) + 1 FROM invoice_lines WHERE invoice_id = $1"
    )
    .bind(id.get())
    .fetch_one(&mut *c)
    .await)?;
    insert_lines(tx, &[(id, position as usize, fee)]).await?;
    Ok(true)
}

/// The services an order created, in order.
pub async fn services_of_order(db: &Db, order: OrderId) -> Result<Vec<ServiceId>, StoreError> {
    let ids: Vec<i64> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT id FROM services WHERE order_id = $1 ORDER BY id"
    )
    .bind(order.get())
    .fetch_all(p)
    .await)?;
    Ok(ids.into_iter().map(ServiceId).collect())
}

/// Marks an invoice with the request that created it (unique per client).
pub async fn set_invoice_key(tx: &mut Tx, id: InvoiceId, key: &str) -> Result<(), StoreError> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE invoices SET idempotency_key = $1 WHERE id = $2"
    )
    .bind(key)
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The invoice a client's request created, if any.
pub async fn invoice_by_key(
    tx: &mut Tx,
    client: ClientId,
    key: &str,
) -> Result<Option<InvoiceId>, StoreError> {
    let id: Option<i64> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT id FROM invoices WHERE client_id = $1 AND idempotency_key = $2"
    )
    .bind(client.get())
    .bind(key)
    .fetch_optional(&mut *c)
    .await)?;
    Ok(id.map(InvoiceId))
}
