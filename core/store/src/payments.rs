//! Payments recorded against invoices: one row per payment (staff, wallet, gateway), each
//! with its journal entry, and the billing run's batched wallet payments.
//!
//! A payment's reference is unique per method (`payments_reference_key`), so a
//! gateway's callback or a retried request records it once.

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::invoices::InvoiceRecord;
use crate::ledger::{currency, placeholders};
use crate::{on_db, on_tx};
use chrono::{DateTime, NaiveDate, Utc};
use keel_domain::Money;
use keel_domain::ids::{ClientId, EntryId, InvoiceId, PaymentId, ResellerId};

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
    /// When the payment was reversed (a provider's refund or dispute), with the entry that
    /// reversed it; a reversed payment no longer counts towards its invoice.
    pub reversed_at: Option<DateTime<Utc>>,
    pub reversal_entry_id: Option<EntryId>,
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
    reversed_at: Option<DateTime<Utc>>,
    reversal_entry_id: Option<i64>,
}

const PAYMENT_COLUMNS: &str = "id, invoice_id, client_id, method, reference, amount_minor, currency, entry_id, note, \
    actor_label, received_on, created_at, reversed_at, reversal_entry_id";

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
            reversed_at: r.reversed_at,
            reversal_entry_id: r.reversal_entry_id.map(EntryId),
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

/// Marks a payment reversed by entry `reversal`; false when it already was (nothing changed).
pub async fn mark_reversed(
    tx: &mut Tx,
    id: PaymentId,
    reversal: EntryId,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE payments SET reversed_at = $1, reversal_entry_id = $2 WHERE id = $3 AND reversed_at IS NULL"
    )
    .bind(at)
    .bind(reversal.get())
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
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
