//! What the pay page shows and does for a pay link ([`crate::pay_links`]); the HTML is
//! keel-api's.
//!
//! - [`open`]: the invoice a link names (number, dates, lines, total, paid, due), whether it
//!   takes a payment, and the methods the enabled gateways offer.
//! - [`pay`]: starts a payment through [`gateway_payments::start`] acting as the invoice's
//!   client ([`Ctx::pay_link`]), the form's nonce as the request key: a double-clicked
//!   button starts one payment.
//! - [`attempt`]: where a payment stands, by Keel's reference (the gateways send the payer
//!   back to `/pay/return/{reference}`): its state, the instructions, the invoice's number,
//!   status and amounts, nothing about the client.
//! - [`refresh`]: the same, after asking the gateway about a pending attempt not asked
//!   within [`ASK_EVERY`] (what the return page's script and Refresh button call), so a
//!   late or lost callback still ends as paid on the payer's screen.

use crate::gateway_payments::{self, ActionView, AttemptView, StartInput};
use crate::{App, AppError, Ctx, invoices, pay_links};
use chrono::NaiveDate;
use keel_domain::Money;
use keel_domain::ids::InvoiceId;
use keel_domain::lifecycle::{InvoiceKind, InvoiceStatus};
use keel_domain::tenancy::Scope;
use keel_store::attempts::{self as attempts_store, AttemptState};
use serde::Serialize;

/// The invoice as the pay page shows it. Amounts are formatted (`1,234.50`), without the
/// currency, which is given once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageInvoice {
    pub id: InvoiceId,
    pub number: String,
    pub top_up: bool,
    pub status: InvoiceStatus,
    pub issue_date: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub currency: &'static str,
    pub lines: Vec<PageLine>,
    pub total: String,
    pub paid: String,
    /// Taken off by credit notes; "" when nothing was.
    pub credited: String,
    pub balance_due: String,
}

/// One line of the invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageLine {
    pub description: String,
    pub quantity: i64,
    pub total: String,
}

/// One way to pay, as one form: a gateway and one of its methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayMethod {
    pub gateway: String,
    /// Sent as `method`; none for the gateway's default.
    pub method: Option<String>,
    /// The button's text.
    pub label: String,
    /// The form asks for the payer's mobile-money number.
    pub needs_phone: bool,
}

/// Whether the invoice takes a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PageState {
    /// It has a balance to pay: the methods are offered.
    Payable,
    Paid,
    Cancelled,
    /// Nothing to pay for another reason (credited in full, refunded).
    Closed,
}

/// What the pay page of a link shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayPage {
    pub invoice: PageInvoice,
    pub state: PageState,
    /// Empty unless the invoice is payable.
    pub methods: Vec<PayMethod>,
}

/// The methods a gateway offers on the page: Paynow's web checkout and its mobile-money
/// methods, a bank transfer, or one button for any other gateway.
pub fn methods_of(id: &str, name: &str) -> Vec<PayMethod> {
    let one = |method: Option<&str>, label: String, needs_phone| PayMethod {
        gateway: id.to_owned(),
        method: method.map(str::to_owned),
        label,
        needs_phone,
    };
    match id {
        "paynow" => vec![
            one(None, "Pay online (Paynow)".to_owned(), false),
            one(Some("ecocash"), "EcoCash".to_owned(), true),
            one(Some("onemoney"), "OneMoney".to_owned(), true),
        ],
        "bank-transfer" => vec![one(None, "Bank transfer".to_owned(), false)],
        _ => vec![one(None, format!("Pay with {name}"), false)],
    }
}

/// The invoice a link names and its client's context: the link's capability.
async fn holder(app: &App, token: &str) -> Result<(InvoiceId, Ctx), AppError> {
    let id = pay_links::verify(app, token).await?;
    let inv = keel_store::invoices::get_invoice(&app.db, Scope::Host, id)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    Ok((id, Ctx::pay_link(inv.client_id, id)))
}

/// The PDF of a link's invoice (its number and bytes): what the page shows, as a file.
pub async fn pdf(app: &App, token: &str) -> Result<(String, Vec<u8>), AppError> {
    let (id, ctx) = holder(app, token).await?;
    invoices::pdf(app, &ctx, id).await
}

/// The pay page of a link.
pub async fn open(app: &App, token: &str) -> Result<PayPage, AppError> {
    let (id, ctx) = holder(app, token).await?;
    let view = invoices::get(app, &ctx, id).await?;
    let shown = |a: &crate::ledger::Amount| Money::new(a.amount_minor, a.currency).format_amount();
    let state = match view.status {
        InvoiceStatus::Paid => PageState::Paid,
        InvoiceStatus::Cancelled => PageState::Cancelled,
        s if s.is_payable() && view.balance_due.amount_minor > 0 => PageState::Payable,
        _ => PageState::Closed,
    };
    let methods = if state == PageState::Payable {
        app.gateways
            .ids()
            .into_iter()
            .filter_map(|g| app.gateways.get(g))
            .flat_map(|g| methods_of(&g.id, &g.name))
            .collect()
    } else {
        Vec::new()
    };
    Ok(PayPage {
        invoice: PageInvoice {
            id,
            number: view.number.clone().unwrap_or_else(|| format!("draft {id}")),
            top_up: view.kind == InvoiceKind::TopUp,
            status: view.status,
            issue_date: view.issue_date,
            due_date: view.due_date,
            currency: view.currency.code(),
            lines: view
                .lines
                .iter()
                .map(|l| PageLine {
                    description: l.description.clone(),
                    quantity: l.quantity,
                    total: shown(&l.total),
                })
                .collect(),
            total: shown(&view.total),
            paid: shown(&view.paid),
            credited: if view.credited.amount_minor == 0 {
                String::new()
            } else {
                shown(&view.credited)
            },
            balance_due: shown(&view.balance_due),
        },
        state,
        methods,
    })
}

/// Starts paying the link's invoice as its client; `nonce` (the rendered form's) is the
/// request key, so the same form posted twice answers the same attempt.
pub async fn pay(
    app: &App,
    token: &str,
    input: &StartInput,
    nonce: &str,
) -> Result<AttemptView, AppError> {
    let (id, ctx) = holder(app, token).await?;
    gateway_payments::start(app, &ctx, id, input, Some(nonce)).await
}

/// A payment attempt as the return page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageAttempt {
    pub reference: String,
    /// `pending`, `succeeded`, `failed`, `cancelled`, `expired`, `refunded`, `disputed`.
    pub state: AttemptState,
    /// The state has settled: the page stops waiting.
    pub settled: bool,
    pub provider_status: Option<String>,
    /// What the payer does while it is pending (the bank's details, "approve on your
    /// phone").
    pub instructions: Option<String>,
    /// Where the payer continues at the provider while it is pending.
    pub redirect: Option<String>,
    pub failure: Option<String>,
    pub amount: String,
    pub currency: String,
    pub invoice: AttemptInvoice,
}

/// The invoice of an attempt, as much as the return page shows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptInvoice {
    /// Not shown: the page compares it with the pay link it may hold.
    #[serde(skip)]
    pub id: InvoiceId,
    pub number: String,
    pub status: InvoiceStatus,
    pub balance_due: String,
}

/// How often the pay pages may ask a gateway about one pending attempt: however many
/// browsers watch it and however often they ask, the provider hears at most this often.
pub const ASK_EVERY: chrono::Duration = chrono::Duration::seconds(3);

/// The attempt with Keel's `reference`, as [`attempt`] shows it, after asking its gateway
/// where it stands when it is pending, the gateway polls, and nobody asked within
/// [`ASK_EVERY`] (claimed through `polled_at`, so concurrent callers ask once).
pub async fn refresh(app: &App, reference: &str) -> Result<PageAttempt, AppError> {
    if plausible_reference(reference)
        && let Some(row) = attempts_store::by_reference(&app.db, reference).await?
        && row.state == AttemptState::Pending
        && app.gateways.get(&row.gateway).is_some_and(|g| g.polling)
    {
        let now = app.now();
        let mut tx = app.db.begin().await?;
        let claimed = attempts_store::claim_poll(&mut tx, row.id, now - ASK_EVERY, now).await?;
        tx.commit().await?;
        if claimed {
            gateway_payments::ask(app, &row).await?;
        }
    }
    attempt(app, reference).await
}

/// Keel's references are the invoice's number and a dash-joined tail: letters, digits and
/// dashes, at most 32 characters. Anything else names no attempt.
fn plausible_reference(reference: &str) -> bool {
    (1..=64).contains(&reference.len())
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The attempt with Keel's `reference` and its invoice's number, status and balance.
pub async fn attempt(app: &App, reference: &str) -> Result<PageAttempt, AppError> {
    let missing = || AppError::NotFound {
        what: "payment attempt",
    };
    if !plausible_reference(reference) {
        return Err(missing());
    }
    let row = attempts_store::by_reference(&app.db, reference)
        .await?
        .ok_or_else(missing)?;
    let inv = keel_store::invoices::get_invoice(&app.db, Scope::Host, InvoiceId(row.invoice_id))
        .await?
        .ok_or_else(missing)?;
    let amount = Money::new(row.amount_minor, inv.currency);
    let view = AttemptView::of(row)?;
    let pending = view.state == AttemptState::Pending;
    let (instructions, redirect) = match (&view.action, pending) {
        (Some(ActionView::Instructions { text }), true) => (Some(text.clone()), None),
        (Some(ActionView::Redirect { url }), true) => (None, Some(url.clone())),
        _ => (None, None),
    };
    Ok(PageAttempt {
        reference: view.reference,
        state: view.state,
        settled: !pending,
        provider_status: view.provider_status,
        instructions,
        redirect,
        failure: view.failure,
        amount: amount.format_amount(),
        currency: inv.currency.code().to_owned(),
        invoice: AttemptInvoice {
            id: inv.id,
            number: inv.display(),
            status: inv.status,
            balance_due: inv.balance_due().format_amount(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_gateway_offers_its_methods() {
        let labels = |id: &str, name: &str| -> Vec<(Option<String>, String, bool)> {
            methods_of(id, name)
                .into_iter()
                .map(|m| (m.method, m.label, m.needs_phone))
                .collect()
        };
        assert_eq!(
            labels("paynow", "Paynow"),
            vec![
                (None, "Pay online (Paynow)".into(), false),
                (Some("ecocash".into()), "EcoCash".into(), true),
                (Some("onemoney".into()), "OneMoney".into(), true),
            ]
        );
        assert_eq!(
            labels("bank-transfer", "Bank transfer"),
            vec![(None, "Bank transfer".into(), false)]
        );
        assert_eq!(
            labels("stripe", "Stripe"),
            vec![(None, "Pay with Stripe".into(), false)]
        );
    }

    #[test]
    fn only_keels_reference_shapes_are_looked_up() {
        assert!(plausible_reference("2026-000123-7K3QXZ"));
        assert!(plausible_reference("INV12-ABCDEF"));
        for bad in ["", "a b", "x/y", "%00", "ü", &"A".repeat(65)] {
            assert!(!plausible_reference(bad), "{bad}");
        }
    }
}
