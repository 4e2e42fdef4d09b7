//! Invoices and their lines: inserts (one at a time or in batches for the billing run),
//! drafts, issuing, reads, the cached paid amount and status, the late fee.
//!
//! Money moves through [`crate::ledger`]; this module keeps the documents and their cached
//! amounts, which the use cases move in the same transaction as the postings.
//!
//! Concurrency rules kept here:
//! - [`add_payment`] moves `paid_minor` with a conditional update that refuses to pass the
//!   total, so two concurrent payments cannot overpay;
//! - a service period is invoiced once: `invoice_lines_service_period_key`.

use crate::clients::owned_scope_sql;
use crate::clients::scope_params;
use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::error::{corrupt, parse_decimal};
use crate::ledger::{currency, placeholders};
use crate::page::{Cursor, Page};
use crate::{on_db, on_tx};
use chrono::{DateTime, NaiveDate, Utc};
use keel_domain::Currency;
use keel_domain::Money;
use keel_domain::ids::{ClientId, EntryId, InvoiceId, InvoiceLineId, ResellerId, ServiceId};
use keel_domain::invoice::Line;
use keel_domain::lifecycle::{InvoiceKind, InvoiceStatus, LineKind};
use keel_domain::tax::TaxMode;
use keel_domain::tenancy::Scope;
use rust_decimal::Decimal;

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

fn tax_mode_str(mode: TaxMode) -> &'static str {
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
        owned_scope_sql("", 2, 3)
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
        owned_scope_sql("", 2, 3)
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
        owned_scope_sql("", 2, 3)
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

/// Takes a reversed payment of `amount` back off an invoice: what was paid goes down and a
/// paid invoice is open again (`unpaid`, its `paid_at` cleared; dunning sees it by its due
/// date). Returns the updated invoice, or `None` when the invoice is not paid or open, or
/// holds less paid than `amount` (nothing changed).
pub async fn remove_payment(
    tx: &mut Tx,
    id: InvoiceId,
    amount_minor: i64,
    at: DateTime<Utc>,
) -> Result<Option<InvoiceRecord>, StoreError> {
    let sql = format!(
        "UPDATE invoices SET paid_minor = paid_minor - $1, updated_at = $2, \
           status = CASE WHEN status = 'paid' THEN 'unpaid' ELSE status END, paid_at = NULL \
         WHERE id = $3 AND status IN ('paid', 'unpaid', 'collections') AND paid_minor >= $1 \
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
