//! Invoices: issuing (numbered, frozen, posted), reading, staff drafts, cancelling, sending
//! to collections, the late fee, and the PDF. Payments against them are
//! [`crate::payments`]; what a payment sets off is [`crate::settlement`].
//!
//! Postings (docs/money.md): issuing posts receivable Dr / revenue Cr / tax payable Cr;
//! cancelling an unpaid invoice reverses its issue entry.

use crate::audit::record;
use crate::billing::{
    ClientTerms, Lookups, Party, issue_entry, next_number, parse_amount, parse_date,
};
use crate::events::{self, Event, InvoiceData};
use crate::ledger::{Amount, SystemAccount, principal};
use crate::notify::{self, Notice};
use crate::{App, AppError, Ctx};
use chrono::{DateTime, NaiveDate, Utc};
use keel_domain::Money;
use keel_domain::access::Permission;
use keel_domain::ids::{ClientId, EntryId, InvoiceId, ServiceId};
use keel_domain::invoice::{self, LineInput};
use keel_domain::ledger::EntryBuilder;
use keel_domain::lifecycle::{InvoiceKind, InvoiceStatus, LineKind};
use keel_domain::tax::{TaxMode, Taxes};
use keel_domain::tenancy::Scope;
use keel_domain::text::limits;
use keel_store::Tx;
use keel_store::ledger as ledger_store;
use keel_store::{
    self as store, billing_run::BillingClientRow, invoices::InvoiceFilter, invoices::InvoiceRecord,
    invoices::LineRecord, invoices::NewInvoice, payments::PaymentRecord,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

// ---------------------------------------------------------------------------------------
// Views

/// One tax of a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LineTaxView {
    pub name: String,
    /// Percent, as decimal text.
    pub rate: String,
    pub amount: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LineView {
    pub id: i64,
    pub position: i64,
    pub kind: LineKind,
    pub service_id: Option<ServiceId>,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub description: String,
    pub quantity: i64,
    pub unit_price: Amount,
    pub discount: Amount,
    pub net: Amount,
    pub taxes: Vec<LineTaxView>,
    pub total: Amount,
    pub credited: Amount,
}

impl From<LineRecord> for LineView {
    fn from(l: LineRecord) -> LineView {
        let mut taxes = Vec::new();
        if let (Some(name), Some(rate)) = (l.tax1_name.clone(), l.tax1_rate) {
            taxes.push(LineTaxView {
                name,
                rate: rate.normalize().to_string(),
                amount: l.tax1.into(),
            });
        }
        if let (Some(name), Some(rate)) = (l.tax2_name.clone(), l.tax2_rate) {
            taxes.push(LineTaxView {
                name,
                rate: rate.normalize().to_string(),
                amount: l.tax2.into(),
            });
        }
        LineView {
            id: l.id.get(),
            position: l.position,
            kind: l.kind,
            service_id: l.service_id,
            period_start: l.period_start,
            period_end: l.period_end,
            description: l.description,
            quantity: l.quantity,
            unit_price: l.unit.into(),
            discount: l.discount.into(),
            net: l.net.into(),
            taxes,
            total: l.total.into(),
            credited: l.credited.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PaymentView {
    pub id: i64,
    pub method: String,
    pub reference: String,
    pub amount: Amount,
    pub received_on: NaiveDate,
    pub recorded_by: String,
    pub note: Option<String>,
    pub entry_id: EntryId,
    /// When the provider's refund or dispute reversed this payment (it then no longer
    /// counts towards the invoice), and the entry that reversed it.
    pub reversed_at: Option<DateTime<Utc>>,
    pub reversal_entry_id: Option<EntryId>,
}

impl From<PaymentRecord> for PaymentView {
    fn from(p: PaymentRecord) -> PaymentView {
        PaymentView {
            id: p.id.get(),
            method: p.method,
            reference: p.reference,
            amount: p.amount.into(),
            received_on: p.received_on,
            recorded_by: p.actor_label,
            note: p.note,
            entry_id: p.entry_id,
            reversed_at: p.reversed_at,
            reversal_entry_id: p.reversal_entry_id,
        }
    }
}

/// An invoice as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InvoiceView {
    pub id: InvoiceId,
    /// Assigned when the invoice is issued; absent on drafts.
    pub number: Option<String>,
    pub client_id: ClientId,
    pub kind: InvoiceKind,
    pub status: InvoiceStatus,
    #[schema(value_type = String, example = "USD")]
    pub currency: keel_domain::Currency,
    #[schema(value_type = String, example = "exclusive")]
    pub tax_mode: TaxMode,
    pub issue_date: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub subtotal: Amount,
    pub tax: Amount,
    pub total: Amount,
    pub paid: Amount,
    /// Taken off what was owed by credit notes.
    pub credited: Amount,
    /// Money already paid that credit notes returned to the client's wallet.
    pub refunded: Amount,
    pub balance_due: Amount,
    /// 1 unit of the invoice currency in the base currency, frozen at issue.
    pub exchange_rate: Option<String>,
    pub base_currency: Option<String>,
    pub buyer: Option<Party>,
    pub seller: Option<Party>,
    pub lines: Vec<LineView>,
    pub payments: Vec<PaymentView>,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

/// An invoice in a list (no lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InvoiceSummary {
    pub id: InvoiceId,
    pub number: Option<String>,
    pub client_id: ClientId,
    pub kind: InvoiceKind,
    pub status: InvoiceStatus,
    pub issue_date: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub total: Amount,
    pub balance_due: Amount,
}

impl From<InvoiceRecord> for InvoiceSummary {
    fn from(i: InvoiceRecord) -> InvoiceSummary {
        InvoiceSummary {
            balance_due: i.balance_due().into(),
            id: i.id,
            number: i.number,
            client_id: i.client_id,
            kind: i.kind,
            status: i.status,
            issue_date: i.issue_date,
            due_date: i.due_date,
            total: i.total.into(),
        }
    }
}

fn party(v: Option<serde_json::Value>) -> Option<Party> {
    v.and_then(|v| serde_json::from_value(v).ok())
}

fn view(i: InvoiceRecord, lines: Vec<LineRecord>, payments: Vec<PaymentRecord>) -> InvoiceView {
    InvoiceView {
        balance_due: i.balance_due().into(),
        id: i.id,
        number: i.number,
        client_id: i.client_id,
        kind: i.kind,
        status: i.status,
        currency: i.currency,
        tax_mode: i.tax_mode,
        issue_date: i.issue_date,
        due_date: i.due_date,
        subtotal: i.subtotal.into(),
        tax: i.tax.into(),
        total: i.total.into(),
        paid: i.paid.into(),
        credited: i.credited.into(),
        refunded: i.refunded.into(),
        exchange_rate: i.exchange_rate.map(|r| r.normalize().to_string()),
        base_currency: i.base_currency.map(|c| c.code().to_string()),
        buyer: party(i.buyer),
        seller: party(i.seller),
        lines: lines.into_iter().map(LineView::from).collect(),
        payments: payments.into_iter().map(PaymentView::from).collect(),
        created_at: i.created_at,
        paid_at: i.paid_at,
    }
}

// ---------------------------------------------------------------------------------------
// Reading

pub async fn get(app: &App, ctx: &Ctx, id: InvoiceId) -> Result<InvoiceView, AppError> {
    ctx.require(Permission::BillingRead)?;
    let inv = store::invoices::get_invoice(&app.db, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    let lines = store::invoices::invoice_lines(&app.db, id, inv.currency).await?;
    let payments = store::payments::invoice_payments(&app.db, id).await?;
    Ok(view(inv, lines, payments))
}

/// An invoice as [`get`] shows it, read in `tx` before it commits (what a use case stores
/// as its answer). The caller has checked the scope: it made or locked the invoice.
pub(crate) async fn view_in(tx: &mut Tx, id: InvoiceId) -> Result<InvoiceView, AppError> {
    let inv = store::invoices::invoice_tx(tx, id)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    let lines = store::invoices::invoice_lines_tx(tx, id, inv.currency).await?;
    let payments = store::payments::invoice_payments_tx(tx, id).await?;
    Ok(view(inv, lines, payments))
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InvoiceQuery {
    pub client_id: Option<i64>,
    /// draft, unpaid, paid, cancelled, refunded or collections.
    #[param(value_type = Option<keel_domain::lifecycle::InvoiceStatus>)]
    pub status: Option<String>,
    #[param(schema_with = keel_store::Cursor::schema)]
    pub cursor: Option<String>,
    #[param(schema_with = crate::page_limit_schema)]
    pub limit: Option<u32>,
}

pub async fn list(
    app: &App,
    ctx: &Ctx,
    q: &InvoiceQuery,
) -> Result<keel_store::Page<InvoiceSummary>, AppError> {
    ctx.require(Permission::BillingRead)?;
    let status = crate::parse_status(q.status.as_deref(), InvoiceStatus::parse, "invoice")?;
    let filter = InvoiceFilter {
        client: q.client_id.map(ClientId),
        status,
    };
    let page = store::invoices::list_invoices(
        &app.db,
        ctx.actor.scope(),
        &filter,
        crate::cursor(q.cursor.as_deref())?,
        crate::page_limit(q.limit)?,
    )
    .await?;
    Ok(page.map(InvoiceSummary::from))
}

// ---------------------------------------------------------------------------------------
// Issuing

/// What a new invoice is made of (built by orders, upgrades, top-ups and staff).
pub struct Issue {
    pub client: BillingClientRow,
    pub reseller: Option<keel_domain::ids::ResellerId>,
    pub kind: InvoiceKind,
    pub currency: keel_domain::Currency,
    pub lines: Vec<LineInput>,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
}

/// Computes, numbers, inserts and posts one invoice inside the caller's transaction. Does not
/// apply the wallet or mark a zero invoice paid; see [`crate::settlement::settle_new`].
pub async fn issue_in(
    tx: &mut Tx,
    app: &App,
    lookups: &mut Lookups,
    issue: Issue,
) -> Result<InvoiceRecord, AppError> {
    let terms = ClientTerms::of(&issue.client, &app.billing);
    let computed = invoice::compute(
        issue.currency,
        app.billing.tax_mode,
        terms.tax_exempt,
        issue.lines,
    )
    .map_err(|e| AppError::invalid(e.code(), Some("lines"), e.to_string()))?;
    let number = next_number(tx, &app.billing.invoice_number, "invoice", issue.issue_date).await?;
    let rate = lookups.rate(tx, app, issue.currency).await?;
    let now = app.now();
    // The issue entry is posted first (keyed by the number), so the invoice is inserted
    // already linked to it.
    let issue_entry = match issue_entry(
        tx,
        app,
        lookups,
        format!("invoice:issue:{number}"),
        format!("Invoice {number}"),
        issue.kind,
        computed.subtotal,
        computed.tax,
        computed.total,
    )
    .await?
    {
        Some(entry) => Some(ledger_store::post(tx, &entry, now).await?.entry.id),
        None => None,
    };
    let new = NewInvoice {
        client_id: ClientId(issue.client.id),
        reseller_id: issue.reseller,
        number: Some(number),
        kind: issue.kind,
        status: InvoiceStatus::Unpaid,
        currency: issue.currency,
        tax_mode: app.billing.tax_mode,
        issue_date: Some(issue.issue_date),
        due_date: Some(issue.due_date),
        subtotal: computed.subtotal,
        tax: computed.tax,
        total: computed.total,
        exchange_rate: rate,
        base_currency: Some(app.billing.base_currency),
        buyer: Some(Party::buyer(&issue.client).to_json()),
        seller: Some(Party::seller(&app.billing.seller).to_json()),
        issue_entry,
        lines: computed.lines,
    };
    let id = store::invoices::insert_invoices(tx, std::slice::from_ref(&new), now).await?[0];
    let inv = store::invoices::invoice_for_update(tx, Scope::Host, id)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    events::emit(tx, app, Event::InvoiceIssued(InvoiceData::of(&inv))).await?;
    notify_issued(tx, app, &inv).await?;
    Ok(inv)
}

/// The cause under which an issued invoice's message is written once (`issued:{invoice}`),
/// by the single path and the billing run's `notification.issued` job alike.
pub fn issued_cause(id: InvoiceId) -> String {
    format!("issued:{id}")
}

/// The "invoice created" message of an issued invoice, once.
async fn notify_issued(tx: &mut Tx, app: &App, inv: &InvoiceRecord) -> Result<(), AppError> {
    notify::queue(tx, app, Notice::InvoiceCreated(inv), &issued_cause(inv.id)).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Staff invoices, cancelling

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    #[schema(schema_with = keel_domain::text::schema::reason)]
    pub reason: String,
}

/// The invoice, locked for a change of status to `to`; refused with `code` ("invoice … is
/// …; `rule`") when its status cannot become `to`.
async fn invoice_becoming(
    tx: &mut Tx,
    ctx: &Ctx,
    id: InvoiceId,
    to: InvoiceStatus,
    code: &'static str,
    rule: &str,
) -> Result<InvoiceRecord, AppError> {
    let inv = store::invoices::invoice_for_update(tx, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    if !inv.status.can_become(to) {
        return Err(AppError::conflict(
            code,
            format!("invoice {} is {}; {rule}", inv.display(), inv.status),
        ));
    }
    Ok(inv)
}

/// Cancels an unpaid invoice with nothing paid on it: the issue entry is reversed and the
/// services it billed are left to be billed again only by staff.
pub async fn cancel(
    app: &App,
    ctx: &Ctx,
    id: InvoiceId,
    input: &CancelInput,
) -> Result<InvoiceView, AppError> {
    ctx.require(Permission::BillingWrite)?;
    let reason = crate::required_reason(&input.reason)?;
    let mut tx = app.db.begin().await?;
    let inv = invoice_becoming(
        &mut tx,
        ctx,
        id,
        InvoiceStatus::Cancelled,
        "invoice_not_cancellable",
        "it cannot be cancelled",
    )
    .await?;
    cancel_in(&mut tx, app, &inv, reason).await?;
    record(
        &mut tx,
        app,
        ctx,
        "invoice.cancel",
        "invoice",
        id,
        json!({ "reason": reason }),
    )
    .await?;
    tx.commit().await?;
    get(app, &Ctx::system("read-back"), id).await
}

/// Cancels `inv` (locked by the caller, allowed to become cancelled) inside the caller's
/// transaction: refused when something was paid or credited on it; the issue entry is
/// reversed.
pub(crate) async fn cancel_in(
    tx: &mut Tx,
    app: &App,
    inv: &InvoiceRecord,
    reason: &str,
) -> Result<(), AppError> {
    if inv.paid.is_positive() || inv.credited.is_positive() {
        return Err(AppError::conflict(
            "invoice_has_payments",
            format!(
                "invoice {} has {} paid or credited; issue a credit note instead",
                inv.display(),
                Money::new(inv.paid.minor() + inv.credited.minor(), inv.currency).format_amount()
            ),
        ));
    }
    let now = app.now();
    if let Some(entry) = inv.issue_entry_id {
        ledger_store::reverse(
            tx,
            entry,
            &format!("invoice:cancel:{}", inv.id),
            reason,
            now,
        )
        .await?;
    }
    // The late fee was posted on its own: it goes too.
    if inv.late_fee_at.is_some()
        && let Some(fee) =
            ledger_store::entry_by_key(tx, &format!("invoice:late_fee:{}", inv.id)).await?
    {
        ledger_store::reverse(
            tx,
            fee.id,
            &format!("invoice:cancel:late_fee:{}", inv.id),
            reason,
            now,
        )
        .await?;
    }
    store::invoices::set_invoice_status(tx, inv.id, inv.status, InvoiceStatus::Cancelled, now)
        .await?;
    Ok(())
}

/// Hands an unpaid invoice to collections (a debt agency, a lawyer): it stays owed and
/// payable (payments, credit notes and the one late fee still apply), only its status says
/// someone else is now chasing it. Nothing moves in the ledger; the reason is audited.
pub async fn send_to_collections(
    app: &App,
    ctx: &Ctx,
    id: InvoiceId,
    input: &CancelInput,
) -> Result<InvoiceView, AppError> {
    ctx.require(Permission::BillingWrite)?;
    let reason = crate::required_reason(&input.reason)?;
    let mut tx = app.db.begin().await?;
    let inv = invoice_becoming(
        &mut tx,
        ctx,
        id,
        InvoiceStatus::Collections,
        "invoice_not_collectable",
        "only an unpaid invoice can go to collections",
    )
    .await?;
    store::invoices::set_invoice_status(
        &mut tx,
        id,
        inv.status,
        InvoiceStatus::Collections,
        app.now(),
    )
    .await?;
    record(
        &mut tx,
        app,
        ctx,
        "invoice.collections",
        "invoice",
        id,
        json!({ "reason": reason }),
    )
    .await?;
    tx.commit().await?;
    get(app, &Ctx::system("read-back"), id).await
}

/// The principal-qualified key for an entry derived from an API idempotency key.
pub fn entry_key(ctx: &Ctx, what: &str, key: &str) -> String {
    format!("{what}:{}:{key}", principal(&ctx.actor))
}

// ---------------------------------------------------------------------------------------
// PDF

fn pdf_party(p: Option<Party>) -> keel_pdf::Party {
    let p = p.unwrap_or(Party {
        name: String::new(),
        lines: Vec::new(),
        country: None,
        tax_id: None,
        email: None,
    });
    keel_pdf::Party {
        name: p.name,
        lines: p.lines,
        tax_id: p.tax_id,
        email: p.email,
    }
}

fn shown(a: &Amount) -> String {
    Money::new(a.amount_minor, a.currency).format_amount()
}

/// The PDF document of an issued invoice, from its frozen parties, lines and totals.
pub fn document(v: &InvoiceView) -> keel_pdf::Document {
    let mut totals = vec![keel_pdf::TotalRow {
        label: "Subtotal".into(),
        amount: shown(&v.subtotal),
        strong: false,
    }];
    // One row per tax (name and rate), summed over the lines.
    let mut taxes: Vec<(String, i64)> = Vec::new();
    for l in &v.lines {
        for t in &l.taxes {
            let label = format!("{} {}%", t.name, t.rate);
            match taxes.iter_mut().find(|(n, _)| *n == label) {
                Some((_, sum)) => *sum += t.amount.amount_minor,
                None => taxes.push((label, t.amount.amount_minor)),
            }
        }
    }
    for (label, minor) in taxes {
        totals.push(keel_pdf::TotalRow {
            label,
            amount: Money::new(minor, v.currency).format_amount(),
            strong: false,
        });
    }
    totals.push(keel_pdf::TotalRow {
        label: "Total".into(),
        amount: shown(&v.total),
        strong: true,
    });
    if v.paid.amount_minor > 0 {
        totals.push(keel_pdf::TotalRow {
            label: "Paid".into(),
            amount: shown(&v.paid),
            strong: false,
        });
    }
    if v.credited.amount_minor > 0 {
        totals.push(keel_pdf::TotalRow {
            label: "Credited".into(),
            amount: shown(&v.credited),
            strong: false,
        });
    }
    totals.push(keel_pdf::TotalRow {
        label: "Balance due".into(),
        amount: shown(&v.balance_due),
        strong: v.balance_due.amount_minor > 0,
    });
    let mut notes = Vec::new();
    for p in &v.payments {
        notes.push(format!(
            "Payment received {}: {} ({} {})",
            p.received_on,
            shown(&p.amount),
            p.method.replace('_', " "),
            p.reference
        ));
    }
    keel_pdf::Document {
        kind: keel_pdf::DocumentKind::Invoice,
        number: v
            .number
            .clone()
            .unwrap_or_else(|| format!("DRAFT-{}", v.id)),
        status: v.status.as_str().replace('_', " "),
        issue_date: v.issue_date.map(|d| d.to_string()).unwrap_or_default(),
        due_date: v.due_date.map(|d| d.to_string()),
        seller: pdf_party(v.seller.clone()),
        buyer: pdf_party(v.buyer.clone()),
        currency: v.currency.code().to_string(),
        exchange_rate: match (&v.exchange_rate, &v.base_currency) {
            (Some(r), Some(base)) if base != v.currency.code() => {
                Some(format!("1 {} = {r} {base}", v.currency.code()))
            }
            _ => None,
        },
        lines: v
            .lines
            .iter()
            .map(|l| keel_pdf::Line {
                description: l.description.clone(),
                quantity: l.quantity.to_string(),
                unit_price: shown(&l.unit_price),
                discount: (l.discount.amount_minor != 0).then(|| shown(&l.discount)),
                tax: (!l.taxes.is_empty()).then(|| {
                    l.taxes
                        .iter()
                        .map(|t| format!("{} {}%", t.name, t.rate))
                        .collect::<Vec<_>>()
                        .join(" + ")
                }),
                amount: shown(&l.net),
            })
            .collect(),
        totals,
        notes,
    }
}

/// The invoice's number and PDF. Drafts have no PDF (nothing is final yet).
pub async fn pdf(app: &App, ctx: &Ctx, id: InvoiceId) -> Result<(String, Vec<u8>), AppError> {
    let v = get(app, ctx, id).await?;
    let Some(number) = v.number.clone() else {
        return Err(AppError::conflict(
            "invoice_not_issued",
            "a draft has no PDF until it is issued",
        ));
    };
    let bytes = keel_pdf::render(&document(&v), &app.pdf_template).map_err(AppError::internal)?;
    Ok((number, bytes))
}

// ---------------------------------------------------------------------------------------
// Staff invoices: drafts, edited freely, then issued (numbered and frozen)

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualLine {
    /// Printed on the invoice: one line (`keel_domain::text::limits::LINE_DESCRIPTION`).
    #[schema(schema_with = keel_domain::text::schema::line_description)]
    pub description: String,
    /// Default 1.
    #[schema(minimum = 1)]
    pub quantity: Option<i64>,
    /// Decimal text in the invoice's currency; negative for a credit line.
    #[schema(schema_with = keel_domain::money::schema::amount)]
    pub unit_price: String,
    /// Decimal text; default 0.
    #[schema(schema_with = keel_domain::money::schema::non_negative_amount)]
    pub discount: Option<String>,
    /// A tax class (`standard`, …) whose rules apply; absent: not taxed.
    #[schema(schema_with = crate::catalog::schemas::tax_class)]
    pub tax_class: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftInput {
    #[schema(minimum = 1)]
    pub client_id: i64,
    /// Default: the client's currency.
    #[schema(value_type = Option<keel_domain::currency::Currency>)]
    pub currency: Option<String>,
    /// YYYY-MM-DD; default: the day it is issued.
    #[schema(value_type = Option<chrono::NaiveDate>)]
    pub due_date: Option<String>,
    #[schema(min_items = 1, max_items = 200)]
    pub lines: Vec<ManualLine>,
}

async fn draft_invoice(
    tx: &mut Tx,
    app: &App,
    ctx: &Ctx,
    input: &DraftInput,
) -> Result<(NewInvoice, Option<NaiveDate>), AppError> {
    let client_id = ClientId(input.client_id);
    let client = keel_store::clients::client_for_update(tx, ctx.actor.scope(), client_id)
        .await?
        .ok_or(AppError::NotFound { what: "client" })?;
    let row = store::billing_run::billing_client(tx, client_id)
        .await?
        .ok_or(AppError::NotFound { what: "client" })?;
    let currency = match input.currency.as_deref() {
        Some(c) => crate::billing::parse_currency(c, "currency")?,
        None => client.currency,
    };
    let due = input
        .due_date
        .as_deref()
        .map(|d| parse_date(d, "due_date"))
        .transpose()?;
    if input.lines.is_empty() || input.lines.len() > 200 {
        return Err(AppError::invalid(
            "invalid_lines",
            Some("lines"),
            "an invoice has 1 to 200 lines",
        ));
    }
    let mut lookups = Lookups::default();
    let mut lines = Vec::with_capacity(input.lines.len());
    for (i, l) in input.lines.iter().enumerate() {
        let field = |f: &str| format!("lines[{i}].{f}");
        AppError::check_text(
            &field("description"),
            &l.description,
            limits::LINE_DESCRIPTION,
        )?;
        let description = l.description.trim();
        let taxes = lookups
            .taxes(
                tx,
                l.tax_class.as_deref(),
                &row.country,
                row.region.as_deref(),
            )
            .await?;
        lines.push(LineInput {
            kind: LineKind::Manual,
            description: description.to_string(),
            quantity: l.quantity.unwrap_or(1),
            unit: parse_amount(&l.unit_price, currency, &field("unit_price"))?,
            discount: match l.discount.as_deref() {
                Some(d) => parse_amount(d, currency, &field("discount"))?,
                None => Money::zero(currency),
            },
            service: None,
            period: None,
            taxes,
        });
    }
    let terms = ClientTerms::of(&row, &app.billing);
    let computed = invoice::compute(currency, app.billing.tax_mode, terms.tax_exempt, lines)
        .map_err(|e| AppError::invalid(e.code(), Some("lines"), e.to_string()))?;
    Ok((
        NewInvoice {
            client_id,
            reseller_id: client.reseller_id,
            number: None,
            kind: InvoiceKind::Standard,
            status: InvoiceStatus::Draft,
            currency,
            tax_mode: app.billing.tax_mode,
            issue_date: None,
            due_date: due,
            subtotal: computed.subtotal,
            tax: computed.tax,
            total: computed.total,
            exchange_rate: None,
            base_currency: None,
            buyer: None,
            seller: None,
            issue_entry: None,
            lines: computed.lines,
        },
        due,
    ))
}

/// A draft invoice by staff: no number, no ledger entry, editable until issued.
pub async fn create_draft(
    app: &App,
    ctx: &Ctx,
    input: &DraftInput,
) -> Result<InvoiceView, AppError> {
    create_draft_answering(app, ctx, input, None).await
}

/// [`create_draft`], storing the API's answer in the same transaction ([`crate::Answer`]):
/// a retry after a crash gets the draft it made, never a second draft.
pub async fn create_draft_answering(
    app: &App,
    ctx: &Ctx,
    input: &DraftInput,
    answer: Option<crate::Answer>,
) -> Result<InvoiceView, AppError> {
    ctx.require(Permission::BillingWrite)?;
    let mut tx = app.db.begin().await?;
    let (new, _) = draft_invoice(&mut tx, app, ctx, input).await?;
    let id =
        store::invoices::insert_invoices(&mut tx, std::slice::from_ref(&new), app.now()).await?[0];
    record(
        &mut tx,
        app,
        ctx,
        "invoice.draft",
        "invoice",
        id,
        json!({ "total": Amount::from(new.total) }),
    )
    .await?;
    let made = view_in(&mut tx, id).await?;
    if let Some(a) = answer {
        a.store(&mut tx, app, &made).await?;
    }
    tx.commit().await?;
    Ok(made)
}

/// Replaces a draft's lines. An issued invoice is frozen: `invoice_issued`.
pub async fn update_draft(
    app: &App,
    ctx: &Ctx,
    id: InvoiceId,
    input: &DraftInput,
) -> Result<InvoiceView, AppError> {
    ctx.require(Permission::BillingWrite)?;
    let mut tx = app.db.begin().await?;
    let inv = store::invoices::invoice_for_update(&mut tx, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    if inv.status != InvoiceStatus::Draft {
        return Err(AppError::conflict(
            "invoice_issued",
            format!(
                "invoice {} is issued and cannot be edited; issue a credit note or a new invoice",
                inv.display()
            ),
        ));
    }
    if input.client_id != inv.client_id.get() {
        return Err(AppError::invalid(
            "client_changed",
            Some("client_id"),
            "a draft stays with its client; create a new draft for another",
        ));
    }
    let (new, _) = draft_invoice(&mut tx, app, ctx, input).await?;
    if !store::invoices::replace_draft(&mut tx, id, &new, app.now()).await? {
        return Err(AppError::conflict(
            "invoice_issued",
            "the invoice was issued meanwhile",
        ));
    }
    record(
        &mut tx,
        app,
        ctx,
        "invoice.draft_update",
        "invoice",
        id,
        json!({ "total": Amount::from(new.total) }),
    )
    .await?;
    tx.commit().await?;
    get(app, &Ctx::system("read-back"), id).await
}

/// Issues a draft: numbered, dated, parties and rate frozen, posted to the ledger; the
/// wallet pays it when the client's terms say so.
pub async fn issue(app: &App, ctx: &Ctx, id: InvoiceId) -> Result<InvoiceView, AppError> {
    ctx.require(Permission::BillingWrite)?;
    let mut tx = app.db.begin().await?;
    let inv = store::invoices::invoice_for_update(&mut tx, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    if inv.status != InvoiceStatus::Draft {
        return Err(AppError::conflict(
            "invoice_issued",
            format!("invoice {} is already issued", inv.display()),
        ));
    }
    let row = store::billing_run::billing_client(&mut tx, inv.client_id)
        .await?
        .ok_or(AppError::NotFound { what: "client" })?;
    let today = app.today();
    let due = inv.due_date.unwrap_or(today);
    let number = next_number(&mut tx, &app.billing.invoice_number, "invoice", today).await?;
    let mut lookups = Lookups::default();
    let rate = lookups.rate(&mut tx, app, inv.currency).await?;
    let now = app.now();
    store::invoices::issue_draft(
        &mut tx,
        id,
        &number,
        today,
        due,
        rate,
        Some(app.billing.base_currency),
        &Party::buyer(&row).to_json(),
        &Party::seller(&app.billing.seller).to_json(),
        now,
    )
    .await?;
    if let Some(entry) = issue_entry(
        &mut tx,
        app,
        &mut lookups,
        format!("invoice:issue:{number}"),
        format!("Invoice {number}"),
        inv.kind,
        inv.subtotal,
        inv.tax,
        inv.total,
    )
    .await?
    {
        let posted = ledger_store::post(&mut tx, &entry, now).await?;
        store::invoices::set_issue_entries(&mut tx, &[(id, posted.entry.id)]).await?;
    }
    let issued = store::invoices::invoice_for_update(&mut tx, Scope::Host, id)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    events::emit(&mut tx, app, Event::InvoiceIssued(InvoiceData::of(&issued))).await?;
    notify_issued(&mut tx, app, &issued).await?;
    let terms = ClientTerms::of(&row, &app.billing);
    crate::settlement::settle_new(
        &mut tx,
        app,
        ctx,
        &mut lookups,
        issued,
        terms.wallet_auto_apply,
    )
    .await?;
    record(
        &mut tx,
        app,
        ctx,
        "invoice.issue",
        "invoice",
        id,
        json!({ "number": number }),
    )
    .await?;
    tx.commit().await?;
    get(app, &Ctx::system("read-back"), id).await
}

// ---------------------------------------------------------------------------------------
// Late fees

/// Adds `fee` to an unpaid invoice as an untaxed line, once, with its entry (receivable Dr /
/// revenue Cr), inside the caller's transaction: dunning's late-fee step. False when the
/// invoice already had one or is no longer payable.
pub(crate) async fn add_late_fee(
    tx: &mut Tx,
    app: &App,
    inv: &InvoiceRecord,
    fee: Money,
    days: u32,
    on: NaiveDate,
) -> Result<bool, AppError> {
    let line = invoice::compute(
        inv.currency,
        inv.tax_mode,
        true,
        vec![LineInput {
            kind: LineKind::LateFee,
            description: format!(
                "Late fee (unpaid {days} days after {})",
                inv.due_date.map(|d| d.to_string()).unwrap_or_default()
            ),
            quantity: 1,
            unit: fee,
            discount: Money::zero(inv.currency),
            service: None,
            period: None,
            taxes: Taxes::none(),
        }],
    )
    .map_err(|e| AppError::invalid(e.code(), None, e.to_string()))?
    .lines
    .remove(0);
    let now = app.now();
    if !store::invoices::add_late_fee(tx, inv.id, &line, on, now).await? {
        return Ok(false);
    }
    let mut lookups = Lookups::default();
    let receivable = lookups
        .account(tx, app, SystemAccount::Receivable, inv.currency)
        .await?;
    let revenue = lookups
        .account(tx, app, SystemAccount::Revenue, inv.currency)
        .await?;
    let entry = EntryBuilder::new(
        format!("invoice:late_fee:{}", inv.id),
        format!("Late fee on invoice {}", inv.display()),
    )
    .debit(receivable, fee)
    .credit(revenue, fee)
    .build()?;
    ledger_store::post(tx, &entry, now).await?;
    Ok(true)
}
