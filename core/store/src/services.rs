//! Services: what a client bought and renews, with their lifecycle history, chosen
//! options, plan changes, and the billing run's advance of their next period.
//!
//! Rows carry the client's `reseller_id`, so every scoped read filters on its own columns.

use crate::clients::owned_scope_sql;
use crate::clients::scope_params;
use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::error::corrupt;
use crate::ledger::currency;
use crate::page::{Cursor, Page};
use crate::{on_db, on_tx};
use chrono::{DateTime, NaiveDate, Utc};
use keel_domain::Money;
use keel_domain::cycle::{Anniversary, BillingCycle};
use keel_domain::ids::{
    ClientId, InvoiceId, OrderId, ProductId, PromotionId, ResellerId, ServiceId,
};
use keel_domain::lifecycle::{CancelKind, ServiceStatus};
use keel_domain::tenancy::Scope;

/// A service's anniversary from its two columns, `anniversary` and `billing_day`: a billing
/// day out of 1..=31, or one the anniversary is not on (clamped), is corrupt.
pub fn anniversary(date: NaiveDate, billing_day: Option<i64>) -> Result<Anniversary, StoreError> {
    let day = billing_day
        .map(|d| u32::try_from(d).map_err(|_| corrupt("billing day", &d.to_string())))
        .transpose()?;
    Anniversary::with_billing_day(date, day)
        .map_err(|e| StoreError::Corrupt(format!("service anniversary in the database: {e}")))
}

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
        owned_scope_sql("", 2, 3)
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
        owned_scope_sql("", 2, 3)
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
        owned_scope_sql("", 2, 3)
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
