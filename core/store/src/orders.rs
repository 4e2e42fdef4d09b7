//! Orders: a client's purchase of services, placed with an idempotency key, and the
//! invoice and services each one made.
//!
//! Rows carry the client's `reseller_id`, so every scoped read filters on its own columns.

use crate::clients::owned_scope_sql;
use crate::clients::scope_params;
use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::error::corrupt;
use crate::ledger::currency;
use crate::{on_db, on_tx};
use chrono::{DateTime, Utc};
use keel_domain::Currency;
use keel_domain::ids::{ClientId, InvoiceId, OrderId, PromotionId, ResellerId, ServiceId};
use keel_domain::lifecycle::OrderStatus;
use keel_domain::tenancy::Scope;

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
        owned_scope_sql("", 2, 3)
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
