//! Credit notes against issued invoices: the note, its lines, and the credited amount
//! cached on the invoice.

use crate::clients::owned_scope_sql;
use crate::clients::scope_params;
use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::error::corrupt;
use crate::invoices::InvoiceRecord;
use crate::ledger::currency;
use crate::{on_db, on_tx};
use chrono::{DateTime, NaiveDate, Utc};
use keel_domain::Money;
use keel_domain::ids::{ClientId, EntryId, InvoiceId, InvoiceLineId, ResellerId};
use keel_domain::lifecycle::InvoiceStatus;
use keel_domain::tenancy::Scope;

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
        owned_scope_sql("", 3, 4)
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
