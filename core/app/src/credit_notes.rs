//! Credit notes: a whole invoice, or chosen lines (in full or in part), credited back with
//! their own gap-free numbering (`billing.credit_note_number_format`).
//!
//! # The rules
//! - An amount credited on a line is *gross* (what the client paid for that line); its tax
//!   part is the line's tax in the same proportion, `tax = round(gross × line tax / line
//!   total)` half away from zero, and its net part is the rest.
//! - A credit note never exceeds what is left to credit: per line `total − credited`, per
//!   invoice `total − credited − refunded`. Lines that are themselves credits (negative)
//!   cannot be credited.
//! - Its money first reduces what the client still owes (receivable), and the rest, which the
//!   client had already paid, goes to the client's wallet. The entry is the reversal of
//!   issuing: revenue Dr net, tax payable Dr tax / receivable Cr, wallet Cr.
//! - An invoice credited in full becomes `refunded` when anything had been paid, else
//!   `cancelled`; one whose balance reaches zero otherwise becomes `paid`.

use crate::audit::record;
use crate::billing::{Lookups, next_number, parse_amount, wallet_account};
use crate::invoices::{LineView, get as get_invoice};
use crate::ledger::{Amount, SystemAccount};
use crate::{App, AppError, Ctx};
use chrono::NaiveDate;
use keel_domain::Money;
use keel_domain::access::Permission;
use keel_domain::ids::{CreditNoteId, InvoiceId, InvoiceLineId};
use keel_domain::ledger::EntryBuilder;
use keel_domain::lifecycle::{CreditDisposition, InvoiceKind, InvoiceStatus};
use keel_domain::proration::prorate;
use keel_store::ledger as ledger_store;
use keel_store::{self as store, credit_notes::CreditNoteRecord, credit_notes::NewCreditNote};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditLineInput {
    #[schema(minimum = 1)]
    pub line_id: i64,
    /// Gross amount (decimal text) to credit on this line; default: all that is left of it.
    #[schema(schema_with = keel_domain::money::schema::positive_amount)]
    pub amount: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditNoteInput {
    #[schema(schema_with = keel_domain::text::schema::reason)]
    pub reason: String,
    /// The lines to credit; omitted: everything not yet credited on the invoice.
    #[schema(min_items = 1)]
    pub lines: Option<Vec<CreditLineInput>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CreditNoteLineView {
    pub invoice_line_id: i64,
    pub net: Amount,
    pub tax: Amount,
    pub total: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CreditNoteView {
    pub id: CreditNoteId,
    pub number: String,
    pub invoice_id: InvoiceId,
    pub net: Amount,
    pub tax: Amount,
    pub total: Amount,
    /// Where most of the money went: `receivable` (off what was owed) or `wallet`.
    pub disposition: CreditDisposition,
    pub reason: String,
    pub issue_date: NaiveDate,
    pub lines: Vec<CreditNoteLineView>,
}

impl From<CreditNoteRecord> for CreditNoteView {
    fn from(c: CreditNoteRecord) -> CreditNoteView {
        let cur = c.total.currency();
        CreditNoteView {
            id: c.id,
            number: c.number,
            invoice_id: c.invoice_id,
            net: c.net.into(),
            tax: c.tax.into(),
            total: c.total.into(),
            disposition: c.disposition,
            reason: c.reason,
            issue_date: c.issue_date,
            lines: c
                .lines
                .into_iter()
                .map(|(l, n, t, tot)| CreditNoteLineView {
                    invoice_line_id: l.get(),
                    net: Money::new(n, cur).into(),
                    tax: Money::new(t, cur).into(),
                    total: Money::new(tot, cur).into(),
                })
                .collect(),
        }
    }
}

fn over(what: &str, asked: Money, left: Money) -> AppError {
    AppError::invalid(
        "credit_exceeds_invoice",
        Some("lines"),
        format!(
            "{what}: {} is more than the {} left to credit",
            asked.format_amount(),
            left.format_amount()
        ),
    )
}

/// Issues a credit note on an invoice. See the module docs.
pub async fn issue(
    app: &App,
    ctx: &Ctx,
    invoice_id: InvoiceId,
    input: &CreditNoteInput,
) -> Result<CreditNoteView, AppError> {
    issue_keyed(app, ctx, invoice_id, input, None).await
}

/// [`issue`] under the request's `Idempotency-Key`: the credit note's ledger entry is keyed by
/// it (per actor), so a retry after a crash between the commit and the API storing its answer
/// finds the credit note it made and returns it, instead of crediting again.
pub async fn issue_keyed(
    app: &App,
    ctx: &Ctx,
    invoice_id: InvoiceId,
    input: &CreditNoteInput,
    key: Option<&str>,
) -> Result<CreditNoteView, AppError> {
    ctx.require(Permission::BillingWrite)?;
    let reason = crate::required_reason(&input.reason)?;
    let mut tx = app.db.begin().await?;
    let inv = store::invoices::invoice_for_update(&mut tx, ctx.actor.scope(), invoice_id)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    let entry_key = key.map(|k| {
        format!(
            "credit_note:req:{}:{k}",
            crate::ledger::principal(&ctx.actor)
        )
    });
    if let Some(k) = &entry_key
        && let Some(done) = ledger_store::entry_by_key(&mut tx, k).await?
    {
        drop(tx);
        return store::credit_notes::credit_notes(
            &app.db,
            ctx.actor.scope(),
            Some(invoice_id),
            None,
        )
        .await?
        .into_iter()
        .find(|n| n.entry_id == done.id)
        .map(CreditNoteView::from)
        .ok_or_else(|| {
            AppError::invalid(
                "idempotency_key_reused",
                None,
                "this Idempotency-Key already made a credit note on another invoice",
            )
        });
    }
    let number_of = inv.number.clone().unwrap_or_default();
    if !matches!(
        inv.status,
        InvoiceStatus::Unpaid | InvoiceStatus::Paid | InvoiceStatus::Collections
    ) {
        return Err(AppError::conflict(
            "invoice_not_creditable",
            format!(
                "invoice {number_of} is {} and cannot be credited",
                inv.status
            ),
        ));
    }
    if inv.kind == InvoiceKind::TopUp {
        return Err(AppError::conflict(
            "invoice_not_creditable",
            "a top-up invoice is not credited: debit the wallet instead",
        ));
    }
    let cur = inv.currency;
    let lines = store::invoices::invoice_lines_tx(&mut tx, invoice_id, cur).await?;
    // (line, gross to credit)
    let mut chosen: Vec<(&store::invoices::LineRecord, Money)> = Vec::new();
    match &input.lines {
        None => {
            for l in &lines {
                let left = l.total.minor() - l.credited.minor();
                if l.total.is_positive() && left > 0 {
                    chosen.push((l, Money::new(left, cur)));
                }
            }
        }
        Some(asked) => {
            if asked.is_empty() {
                return Err(AppError::invalid(
                    "empty_credit_note",
                    Some("lines"),
                    "name at least one line, or leave `lines` out to credit the whole invoice",
                ));
            }
            for (i, a) in asked.iter().enumerate() {
                let field = format!("lines[{i}]");
                let l = lines
                    .iter()
                    .find(|l| l.id == InvoiceLineId(a.line_id))
                    .ok_or_else(|| {
                        AppError::invalid(
                            "unknown_line",
                            Some(&field),
                            format!("invoice {number_of} has no line {}", a.line_id),
                        )
                    })?;
                if chosen.iter().any(|(c, _)| c.id == l.id) {
                    return Err(AppError::invalid(
                        "duplicate_line",
                        Some(&field),
                        format!("line {} is named twice", a.line_id),
                    ));
                }
                if !l.total.is_positive() {
                    return Err(AppError::invalid(
                        "line_not_creditable",
                        Some(&field),
                        format!("line {} is itself a credit", a.line_id),
                    ));
                }
                let left = Money::new(l.total.minor() - l.credited.minor(), cur);
                let gross = match a.amount.as_deref() {
                    Some(t) => parse_amount(t, cur, &format!("{field}.amount"))?,
                    None => left,
                };
                if !gross.is_positive() {
                    return Err(AppError::invalid(
                        "invalid_amount",
                        Some(&format!("{field}.amount")),
                        "the amount must be more than zero",
                    ));
                }
                if gross.minor() > left.minor() {
                    return Err(over(&format!("line {}", a.line_id), gross, left));
                }
                chosen.push((l, gross));
            }
        }
    }
    let total_minor: i64 = chosen.iter().map(|(_, g)| g.minor()).sum();
    let left = Money::new(
        inv.total.minor() - inv.credited.minor() - inv.refunded.minor(),
        cur,
    );
    if total_minor == 0 {
        return Err(AppError::conflict(
            "nothing_to_credit",
            format!("invoice {number_of} has nothing left to credit"),
        ));
    }
    if total_minor > left.minor() {
        return Err(over(
            &format!("invoice {number_of}"),
            Money::new(total_minor, cur),
            left,
        ));
    }
    let (id, _) = credit_in(
        &mut tx,
        app,
        ctx,
        &inv,
        &chosen
            .iter()
            .map(|(l, g)| ((*l).clone(), *g))
            .collect::<Vec<_>>(),
        reason,
        entry_key,
    )
    .await?;
    tx.commit().await?;
    get(app, &Ctx::system("read-back"), id).await
}

/// Issues a credit note for `chosen` (line, gross) of the invoice `inv`, locked by the
/// caller, inside the caller's transaction: the credit note, its entry (revenue and tax
/// payable Dr at each line's frozen tax / receivable Cr for what is still owed, wallet Cr for
/// what was paid), the invoice's new state and the audit row. The caller has checked that
/// each gross fits its line and the invoice (see the module rules). Returns the credit note
/// and what went to the wallet.
pub(crate) async fn credit_in(
    tx: &mut keel_store::Tx,
    app: &App,
    ctx: &Ctx,
    inv: &store::invoices::InvoiceRecord,
    chosen: &[(store::invoices::LineRecord, Money)],
    reason: &str,
    entry_key: Option<String>,
) -> Result<(CreditNoteId, i64), AppError> {
    let invoice_id = inv.id;
    let number_of = inv.number.clone().unwrap_or_default();
    let cur = inv.currency;
    let total_minor: i64 = chosen.iter().map(|(_, g)| g.minor()).sum();
    let mut note_lines = Vec::with_capacity(chosen.len());
    let (mut net_sum, mut tax_sum) = (0i64, 0i64);
    for (l, gross) in chosen {
        let line_tax = l.tax1.minor() + l.tax2.minor();
        let tax = prorate(Money::new(line_tax, cur), gross.minor(), l.total.minor())
            .map_err(|e| AppError::invalid(e.code(), Some("lines"), e.to_string()))?
            .minor();
        let net = gross.minor() - tax;
        net_sum += net;
        tax_sum += tax;
        note_lines.push((l.id, net, tax, gross.minor()));
    }
    // Off what is owed first; the rest (already paid) to the wallet.
    let to_receivable = total_minor.min(inv.balance_due().minor().max(0));
    let to_wallet = total_minor - to_receivable;
    let today = app.today();
    let now = app.now();
    let number = next_number(tx, &app.billing.credit_note_number, "credit_note", today).await?;
    let mut lookups = Lookups::default();
    let mut b = EntryBuilder::new(
        entry_key.unwrap_or_else(|| format!("credit_note:{number}")),
        format!("Credit note {number} on invoice {number_of}"),
    );
    for (purpose, amount) in [
        (SystemAccount::Revenue, net_sum),
        (SystemAccount::TaxPayable, tax_sum),
    ] {
        let account = lookups.account(tx, app, purpose, cur).await?;
        if amount > 0 {
            b = b.debit(account, Money::new(amount, cur));
        } else if amount < 0 {
            b = b.credit(account, Money::new(-amount, cur));
        }
    }
    if to_receivable > 0 {
        let receivable = lookups
            .account(tx, app, SystemAccount::Receivable, cur)
            .await?;
        b = b.credit(receivable, Money::new(to_receivable, cur));
    }
    if to_wallet > 0 {
        let wallet = wallet_account(tx, app, inv.client_id, cur).await?;
        b = b.credit(wallet, Money::new(to_wallet, cur));
    }
    let posted = ledger_store::post(tx, &b.build()?, now).await?;
    let disposition = if to_wallet > 0 {
        CreditDisposition::Wallet
    } else {
        CreditDisposition::Receivable
    };
    let id = store::credit_notes::insert_credit_note(
        tx,
        &NewCreditNote {
            number: &number,
            invoice: inv,
            net: Money::new(net_sum, cur),
            tax: Money::new(tax_sum, cur),
            total: Money::new(total_minor, cur),
            disposition,
            reason,
            entry_id: posted.entry.id,
            issue_date: today,
            lines: note_lines,
        },
        now,
    )
    .await?;
    let credited = inv.credited.minor() + to_receivable;
    let refunded = inv.refunded.minor() + to_wallet;
    let status = if credited + refunded == inv.total.minor() {
        if inv.paid.is_positive() {
            InvoiceStatus::Refunded
        } else {
            InvoiceStatus::Cancelled
        }
    } else if inv.total.minor() - inv.paid.minor() - credited == 0 && inv.status.is_payable() {
        InvoiceStatus::Paid
    } else {
        inv.status
    };
    store::credit_notes::credit_invoice(tx, invoice_id, to_receivable, to_wallet, status, now)
        .await?;
    record(
        tx,
        app,
        ctx,
        "invoice.credit_note",
        "invoice",
        invoice_id,
        json!({ "credit_note": number, "total": Amount::from(Money::new(total_minor, cur)), "to_wallet": to_wallet, "reason": reason }),
    )
    .await?;
    Ok((id, to_wallet))
}

pub async fn get(app: &App, ctx: &Ctx, id: CreditNoteId) -> Result<CreditNoteView, AppError> {
    ctx.require(Permission::BillingRead)?;
    store::credit_notes::credit_notes(&app.db, ctx.actor.scope(), None, Some(id))
        .await?
        .into_iter()
        .next()
        .map(CreditNoteView::from)
        .ok_or(AppError::NotFound {
            what: "credit note",
        })
}

/// The credit notes of an invoice.
pub async fn of_invoice(
    app: &App,
    ctx: &Ctx,
    invoice: InvoiceId,
) -> Result<Vec<CreditNoteView>, AppError> {
    ctx.require(Permission::BillingRead)?;
    get_invoice(app, ctx, invoice).await?;
    Ok(
        store::credit_notes::credit_notes(&app.db, ctx.actor.scope(), Some(invoice), None)
            .await?
            .into_iter()
            .map(CreditNoteView::from)
            .collect(),
    )
}

/// The credit note's number and PDF: the credited lines of its invoice, with the invoice's
/// frozen parties.
pub async fn pdf(app: &App, ctx: &Ctx, id: CreditNoteId) -> Result<(String, Vec<u8>), AppError> {
    let note = get(app, ctx, id).await?;
    let inv = get_invoice(app, &Ctx::system("read-back"), note.invoice_id).await?;
    let mut doc = crate::invoices::document(&inv);
    let shown = |a: &Amount| Money::new(a.amount_minor, a.currency).format_amount();
    doc.kind = keel_pdf::DocumentKind::CreditNote;
    doc.number = note.number.clone();
    doc.status = "issued".into();
    doc.issue_date = note.issue_date.to_string();
    doc.due_date = None;
    doc.lines = note
        .lines
        .iter()
        .map(|nl| {
            let l: Option<&LineView> = inv.lines.iter().find(|l| l.id == nl.invoice_line_id);
            keel_pdf::Line {
                description: l.map(|l| l.description.clone()).unwrap_or_default(),
                quantity: "1".into(),
                unit_price: shown(&nl.net),
                discount: None,
                tax: (nl.tax.amount_minor != 0).then(|| shown(&nl.tax)),
                amount: shown(&nl.net),
            }
        })
        .collect();
    doc.totals = vec![
        keel_pdf::TotalRow {
            label: "Subtotal".into(),
            amount: shown(&note.net),
            strong: false,
        },
        keel_pdf::TotalRow {
            label: "Tax".into(),
            amount: shown(&note.tax),
            strong: false,
        },
        keel_pdf::TotalRow {
            label: "Total credited".into(),
            amount: shown(&note.total),
            strong: true,
        },
    ];
    doc.notes = vec![
        format!(
            "Credits invoice {} of {}.",
            inv.number.clone().unwrap_or_default(),
            inv.issue_date.map(|d| d.to_string()).unwrap_or_default()
        ),
        format!("Reason: {}", note.reason),
        match note.disposition {
            CreditDisposition::Wallet => "Money already paid was returned to your wallet.".into(),
            CreditDisposition::Receivable => "The amount was taken off what you owe.".into(),
        },
    ];
    let bytes = keel_pdf::render(&doc, &app.pdf_template).map_err(AppError::internal)?;
    Ok((note.number, bytes))
}
