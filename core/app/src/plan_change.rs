//! Upgrades and downgrades, prorated by days remaining (docs/billing.md, "Upgrades and
//! downgrades"; the arithmetic is [`keel_domain::proration::prorate_change`]).
//!
//! On day `on` of the service's current period (a period already invoiced), the client is
//! credited the unused part of the old price and charged the new price for the same days:
//!
//! - `net > 0` (an upgrade): an invoice is issued at once with two proration lines (the
//!   credit as a negative line, the charge as a positive one), taxed like the product;
//!   the wallet pays it when the client's terms say so.
//! - `net < 0` (a downgrade): with `downgrade_credit = "wallet"` the credit (with the tax it
//!   carried) goes to the client's wallet at once: revenue Dr, tax payable Dr / wallet Cr.
//!   With `"next_invoice"` nothing is posted now; the next renewal invoice carries a credit
//!   line (taken from the service's pending credit, never below zero).
//! - `net = 0`: only the plan changes.
//!
//! From the next period on, renewals bill the new price. The cycle and currency stay the
//! service's own. A service whose current period has not been invoiced yet (its renewal is
//! still to come) just changes price: there is nothing to credit.

use crate::audit::record;
use crate::billing::{ClientTerms, DowngradeCredit, Lookups, wallet_account};
use crate::invoices::{InvoiceView, Issue, issue_in, settle_new};
use crate::ledger::{Amount, SystemAccount};
use crate::{App, AppError, Ctx};
use chrono::NaiveDate;
use keel_domain::Money;
use keel_domain::access::Permission;
use keel_domain::billing::{self, Period};
use keel_domain::catalog::OptionChoice;
use keel_domain::ids::{ProductId, ServiceId};
use keel_domain::invoice::{self, LineInput};
use keel_domain::ledger::EntryBuilder;
use keel_domain::lifecycle::{InvoiceKind, LineKind, ProductKind, ServiceStatus};
use keel_domain::proration;
use keel_store::billing as store;
use keel_store::ledger as ledger_store;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanChangeInput {
    /// The product to move to (the same product to change only its options).
    pub product_id: i64,
    #[serde(default)]
    pub options: Vec<OptionChoice>,
}

/// What a plan change costs, before it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PlanChangePreview {
    pub service_id: ServiceId,
    pub on: NaiveDate,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    /// Days left in the period, counting `on`.
    pub remaining_days: i64,
    pub period_days: i64,
    pub old_recurring: Amount,
    pub new_recurring: Amount,
    /// The unused part of the old price.
    pub credit: Amount,
    /// The new price for the same days.
    pub charge: Amount,
    /// `charge - credit`, before tax: positive is invoiced now, negative is credited.
    pub net: Amount,
    /// `invoice`, `wallet`, `next_invoice` or `none`.
    pub settlement: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PlanChangeResult {
    pub preview: PlanChangePreview,
    pub service: crate::services::ServiceView,
    /// The upgrade's invoice, when one was issued.
    pub invoice: Option<InvoiceView>,
}

struct Plan {
    preview: PlanChangePreview,
    product: keel_domain::catalog::Product,
    new_recurring: Money,
    options: Vec<keel_store::billing::ChosenOption>,
    /// The period being prorated, when the current period was invoiced.
    prorated: Option<(Period, proration::Proration)>,
}

async fn plan(
    tx: &mut keel_store::Tx,
    app: &App,
    s: &store::ServiceRecord,
    input: &PlanChangeInput,
) -> Result<Plan, AppError> {
    if s.status != ServiceStatus::Active {
        return Err(AppError::conflict(
            "service_not_active",
            format!(
                "only an active service can change plan; this one is {}",
                s.status
            ),
        ));
    }
    if !s.cycle.is_recurring() {
        return Err(AppError::conflict(
            "service_not_recurring",
            format!("a {} service has no period to prorate", s.cycle),
        ));
    }
    let product = keel_store::catalog::product(tx, ProductId(input.product_id))
        .await?
        .ok_or_else(|| {
            AppError::invalid(
                "unknown_product",
                Some("product_id"),
                format!("there is no product {}", input.product_id),
            )
        })?;
    if product.id != s.product_id {
        product
            .check_orderable(1)
            .map_err(|e| AppError::invalid(e.code(), Some("product_id"), e.to_string()))?;
    }
    if product.kind == ProductKind::Addon {
        return Err(AppError::invalid(
            "addon_alone",
            Some("product_id"),
            "a service cannot become an add-on",
        ));
    }
    let quote = product
        .quote(s.recurring.currency(), s.cycle, &input.options)
        .map_err(|e| AppError::invalid(e.code(), Some(e.field()), e.to_string()))?;
    let today = app.today();
    let period = billing::period_containing(s.anniversary, s.cycle, today);
    // Prorate only a period the client was invoiced for.
    let invoiced = period.and_then(|p| {
        let index = (0..=s.next_period)
            .rev()
            .find(|i| billing::period_at(s.anniversary, s.cycle, *i) == Some(p))?;
        (index < s.next_period).then_some(p)
    });
    let prorated = match invoiced {
        Some(p) => Some((
            p,
            proration::prorate_change(s.recurring, quote.recurring, p, today)
                .map_err(|e| AppError::invalid(e.code(), None, e.to_string()))?,
        )),
        None => None,
    };
    let zero = Money::zero(s.recurring.currency());
    let (credit, charge, net) = match &prorated {
        Some((_, pr)) => (pr.credit, pr.charge, pr.net),
        None => (zero, zero, zero),
    };
    let settlement = if net.is_positive() {
        "invoice"
    } else if net.is_negative() {
        match app.billing.downgrade_credit {
            DowngradeCredit::Wallet => "wallet",
            DowngradeCredit::NextInvoice => "next_invoice",
        }
    } else {
        "none"
    };
    let preview = PlanChangePreview {
        service_id: s.id,
        on: today,
        period_start: prorated.as_ref().map(|(p, _)| p.start),
        period_end: prorated.as_ref().map(|(p, _)| p.end),
        remaining_days: prorated.as_ref().map_or(0, |(_, pr)| pr.remaining_days),
        period_days: prorated.as_ref().map_or(0, |(_, pr)| pr.period_days),
        old_recurring: s.recurring.into(),
        new_recurring: quote.recurring.into(),
        credit: credit.into(),
        charge: charge.into(),
        net: net.into(),
        settlement: settlement.to_string(),
    };
    Ok(Plan {
        preview,
        new_recurring: quote.recurring,
        options: quote
            .options
            .iter()
            .map(|o| (o.option_id, o.value_id, o.quantity))
            .collect(),
        product,
        prorated,
    })
}

fn check_actor(ctx: &Ctx) -> Result<(), AppError> {
    if ctx.actor.can(Permission::BillingWrite) {
        Ok(())
    } else {
        ctx.require(Permission::Order)
    }
}

/// What changing the service's plan would cost today; changes nothing.
pub async fn preview(
    app: &App,
    ctx: &Ctx,
    id: ServiceId,
    input: &PlanChangeInput,
) -> Result<PlanChangePreview, AppError> {
    check_actor(ctx)?;
    let mut tx = app.db.begin().await?;
    let s = store::service_for_update(&mut tx, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "service" })?;
    let p = plan(&mut tx, app, &s, input).await?;
    // Read only: the transaction is dropped, not committed.
    Ok(p.preview)
}

/// Changes the plan: see the module docs for what is invoiced or credited.
pub async fn apply(
    app: &App,
    ctx: &Ctx,
    id: ServiceId,
    input: &PlanChangeInput,
) -> Result<PlanChangeResult, AppError> {
    check_actor(ctx)?;
    let mut tx = app.db.begin().await?;
    let s = store::service_for_update(&mut tx, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "service" })?;
    let p = plan(&mut tx, app, &s, input).await?;
    if p.product.id == s.product_id && p.new_recurring == s.recurring {
        let current = store::service_options(&mut tx, id).await?;
        if current == p.options {
            return Err(AppError::invalid(
                "no_change",
                Some("product_id"),
                "the service already has this plan",
            ));
        }
    }
    let client = store::billing_client(&mut tx, s.client_id)
        .await?
        .ok_or(AppError::NotFound { what: "client" })?;
    let terms = ClientTerms::of(&client, &app.billing);
    let mut lookups = Lookups::default();
    let now = app.now();
    let currency = s.recurring.currency();
    let taxes = lookups
        .taxes(
            &mut tx,
            p.product.tax_class.as_deref(),
            &client.country,
            client.region.as_deref(),
        )
        .await?;
    let mut invoice_id = None;
    let mut pending_credit = 0;
    if let Some((period, pr)) = &p.prorated {
        let until = period.end.pred_opt().unwrap_or(period.end);
        let lines = vec![
            LineInput {
                kind: LineKind::Proration,
                description: format!(
                    "{}: unused {} days of the old plan ({} to {until})",
                    s.label, pr.remaining_days, p.preview.on
                ),
                quantity: 1,
                unit: pr.credit.checked_neg()?,
                discount: Money::zero(currency),
                service: Some(id),
                period: None,
                taxes: taxes.clone(),
            },
            LineInput {
                kind: LineKind::Proration,
                description: format!(
                    "{}: {} for {} days ({} to {until})",
                    s.label, p.product.name, pr.remaining_days, p.preview.on
                ),
                quantity: 1,
                unit: pr.charge,
                discount: Money::zero(currency),
                service: Some(id),
                period: None,
                taxes: taxes.clone(),
            },
        ];
        if pr.net.is_positive() {
            let inv = issue_in(
                &mut tx,
                app,
                &mut lookups,
                Issue {
                    client: client.clone(),
                    reseller: s.reseller_id,
                    kind: InvoiceKind::Standard,
                    currency,
                    lines,
                    issue_date: p.preview.on,
                    due_date: p.preview.on,
                },
            )
            .await?;
            let inv = settle_new(
                &mut tx,
                app,
                ctx,
                &mut lookups,
                inv,
                terms.wallet_auto_apply,
            )
            .await?;
            invoice_id = Some(inv.id);
        } else if pr.net.is_negative() {
            match app.billing.downgrade_credit {
                DowngradeCredit::NextInvoice => pending_credit = -pr.net.minor(),
                DowngradeCredit::Wallet => {
                    // The credit carries back the tax the old price was charged.
                    let computed = invoice::compute(
                        currency,
                        app.billing.tax_mode,
                        terms.tax_exempt,
                        vec![LineInput {
                            unit: pr.net.checked_neg()?,
                            ..lines[0].clone()
                        }],
                    )
                    .map_err(|e| AppError::invalid(e.code(), None, e.to_string()))?;
                    let wallet = wallet_account(&mut tx, app, s.client_id, currency).await?;
                    let revenue = lookups
                        .account(&mut tx, app, SystemAccount::Revenue, currency)
                        .await?;
                    let mut b = EntryBuilder::new(
                        // A retry of the same change is refused as `no_change` before it
                        // gets here, so the key only has to be unique: a random nonce.
                        format!("plan:credit:{id}:{:016x}", rand::random::<u64>()),
                        format!("Downgrade credit for {}", s.label),
                    )
                    .debit(revenue, computed.subtotal);
                    if computed.tax.is_positive() {
                        let tax = lookups
                            .account(&mut tx, app, SystemAccount::TaxPayable, currency)
                            .await?;
                        b = b.debit(tax, computed.tax);
                    }
                    let entry = b.credit(wallet, computed.total).build()?;
                    ledger_store::post(&mut tx, &entry, now).await?;
                }
            }
        }
    }
    store::change_plan(
        &mut tx,
        id,
        p.product.id,
        &s.label,
        p.new_recurring.minor(),
        pending_credit,
        now,
    )
    .await?;
    store::set_service_options(&mut tx, id, &p.options).await?;
    record(
        &mut tx,
        app,
        ctx,
        "service.plan_change",
        "service",
        id,
        json!({ "from": s.product_id, "to": p.product.id, "net": p.preview.net, "settlement": p.preview.settlement }),
    )
    .await?;
    tx.commit().await?;
    let read = Ctx::system("read-back");
    Ok(PlanChangeResult {
        preview: p.preview,
        service: crate::services::get(app, &read, id).await?,
        invoice: match invoice_id {
            Some(i) => Some(crate::invoices::get(app, &read, i).await?),
            None => None,
        },
    })
}
