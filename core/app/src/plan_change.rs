//! Upgrades and downgrades, prorated by days remaining (docs/billing.md, "Upgrades and
//! downgrades"; the arithmetic is [`keel_domain::proration::prorate_change`]).
//!
//! On day `on` of the service's current period (a period already invoiced), the client is
//! credited the unused part of the old price and charged the new price for the same days:
//!
//! - `net > 0` (an upgrade): an invoice is issued at once with two proration lines (the
//!   credit as a negative line, the charge as a positive one), both tagged with the period,
//!   taxed like the product; the wallet pays it when the client's terms say so.
//! - `net < 0` (a downgrade): the credit is taken back from the invoice lines that charged
//!   the period, as credit notes (docs/billing.md, "Credit for unused time"): the newest
//!   charge first, each line at the tax it was charged (never at the client's current
//!   terms), never more than those lines have left. A credit note first reduces what is still
//!   owed on its invoice (an unpaid upgrade is reduced or cancelled), and only money already
//!   paid reaches the wallet. With `downgrade_credit = "next_invoice"` that wallet part is
//!   also held for the service's next renewal, which the billing run pays from the wallet
//!   first even for a client whose wallet is not applied automatically.
//! - `net = 0`: only the plan changes.
//!
//! From the next period on, renewals bill the new price. The cycle and currency stay the
//! service's own. A service whose current period has not been invoiced yet (its renewal is
//! still to come) just changes price: there is nothing to credit.

use crate::audit::record;
use crate::billing::{ClientTerms, DowngradeCredit, Lookups};
use crate::invoices::{InvoiceView, Issue, issue_in};
use crate::ledger::Amount;
use crate::settlement::settle_new;
use crate::{App, AppError, Ctx};
use chrono::NaiveDate;
use keel_domain::Money;
use keel_domain::access::Permission;
use keel_domain::catalog::OptionChoice;
use keel_domain::cycle::{self, Period};
use keel_domain::ids::{ProductId, ServiceId};
use keel_domain::invoice::LineInput;
use keel_domain::lifecycle::{InvoiceKind, LineKind, ProductKind, ServiceStatus};
use keel_domain::proration;
use keel_store as store;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanChangeInput {
    /// The product to move to (the same product to change only its options).
    #[schema(minimum = 1)]
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
    options: Vec<keel_store::services::ChosenOption>,
    /// The period being prorated (with its index), when the current period was invoiced.
    prorated: Option<(Period, u32, proration::Proration)>,
}

async fn plan(
    tx: &mut keel_store::Tx,
    app: &App,
    ctx: &Ctx,
    s: &store::services::ServiceRecord,
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
    // Outside the host scope a product the key cannot see (retired, hidden group) does not
    // exist; the service's own product stays choosable (to change only its options).
    let visible_only = ctx.actor.scope() != keel_domain::tenancy::Scope::Host
        && ProductId(input.product_id) != s.product_id;
    let product = keel_store::catalog::product_seen(tx, ProductId(input.product_id), visible_only)
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
    let period = cycle::period_containing(s.anniversary, s.cycle, today);
    // Prorate only a period the client was invoiced for.
    let invoiced = period.and_then(|p| {
        let index = (0..=s.next_period)
            .rev()
            .find(|i| cycle::period_at(s.anniversary, s.cycle, *i) == Some(p))?;
        (index < s.next_period).then_some((p, index))
    });
    let prorated = match invoiced {
        Some((p, index)) => Some((
            p,
            index,
            proration::prorate_change(s.recurring, quote.recurring, p, today)
                .map_err(|e| AppError::invalid(e.code(), None, e.to_string()))?,
        )),
        None => None,
    };
    let zero = Money::zero(s.recurring.currency());
    let (credit, charge, net) = match &prorated {
        Some((_, _, pr)) => (pr.credit, pr.charge, pr.net),
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
        period_start: prorated.as_ref().map(|(p, _, _)| p.start),
        period_end: prorated.as_ref().map(|(p, _, _)| p.end),
        remaining_days: prorated.as_ref().map_or(0, |(_, _, pr)| pr.remaining_days),
        period_days: prorated.as_ref().map_or(0, |(_, _, pr)| pr.period_days),
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
    let s = store::services::service_for_update(&mut tx, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "service" })?;
    let p = plan(&mut tx, app, ctx, &s, input).await?;
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
    apply_answering(app, ctx, id, input, None).await
}

/// [`apply`], storing the API's answer in the same transaction ([`crate::Answer`]): a retry
/// after a crash gets the change it made (its invoice, its service), not `no_change`.
pub async fn apply_answering(
    app: &App,
    ctx: &Ctx,
    id: ServiceId,
    input: &PlanChangeInput,
    answer: Option<crate::Answer>,
) -> Result<PlanChangeResult, AppError> {
    check_actor(ctx)?;
    let mut tx = app.db.begin().await?;
    let s = store::services::service_for_update(&mut tx, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "service" })?;
    let p = plan(&mut tx, app, ctx, &s, input).await?;
    if p.product.id == s.product_id && p.new_recurring == s.recurring {
        let current = store::services::service_options(&mut tx, id).await?;
        if current == p.options {
            return Err(AppError::invalid(
                "no_change",
                Some("product_id"),
                "the service already has this plan",
            ));
        }
    }
    let client = store::billing_run::billing_client(&mut tx, s.client_id)
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
    if let Some((period, index, pr)) = &p.prorated {
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
                // Tagged with the period, so a later downgrade finds what this one charged.
                period: Some((*index, *period)),
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
                period: Some((*index, *period)),
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
            let reason = format!(
                "{}: unused {} days of {} after a change to {}",
                s.label,
                pr.remaining_days,
                period_name(period),
                p.product.name
            );
            let to_wallet =
                credit_unused(&mut tx, app, ctx, id, *period, -pr.net.minor(), &reason).await?;
            if app.billing.downgrade_credit == DowngradeCredit::NextInvoice {
                pending_credit = to_wallet;
            }
        }
    }
    store::services::change_plan(
        &mut tx,
        id,
        p.product.id,
        &s.label,
        p.new_recurring.minor(),
        pending_credit,
        now,
    )
    .await?;
    store::services::set_service_options(&mut tx, id, &p.options).await?;
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
    let changed = PlanChangeResult {
        preview: p.preview,
        service: crate::services::view_in(&mut tx, id).await?,
        invoice: match invoice_id {
            Some(i) => Some(crate::invoices::view_in(&mut tx, i).await?),
            None => None,
        },
    };
    if let Some(a) = answer {
        a.store(&mut tx, app, &changed).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

fn period_name(p: &Period) -> String {
    format!("{} to {}", p.start, p.end.pred_opt().unwrap_or(p.end))
}

/// Credits `wanted` (the downgrade's credit at list prices) of a service's period back from
/// the invoice lines that charged that period, as credit notes (docs/billing.md, "Credit
/// for unused time"): newest charge first, so an upgrade's own invoice is settled before the
/// renewal; each line at the tax it was charged; never more than the lines have left. Each
/// credit note takes what is still owed on its invoice first (an unpaid upgrade is reduced or
/// cancelled, never turned into credit) and returns only money already paid to the wallet.
/// Returns what went to the wallet.
async fn credit_unused(
    tx: &mut keel_store::Tx,
    app: &App,
    ctx: &Ctx,
    service: ServiceId,
    period: Period,
    wanted: i64,
    reason: &str,
) -> Result<i64, AppError> {
    let found = store::invoices::period_charges(tx, service, period.start).await?;
    let mut invoices: Vec<keel_domain::ids::InvoiceId> = Vec::new();
    for (invoice, _) in &found {
        if !invoices.contains(invoice) {
            invoices.push(*invoice);
        }
    }
    let mut groups = Vec::with_capacity(invoices.len());
    for invoice in invoices {
        let inv =
            store::invoices::invoice_for_update(tx, keel_domain::tenancy::Scope::Host, invoice)
                .await?
                .ok_or(AppError::NotFound { what: "invoice" })?;
        let mut lines: Vec<store::invoices::LineRecord> =
            store::invoices::invoice_lines_tx(tx, invoice, inv.currency)
                .await?
                .into_iter()
                .filter(|l| found.contains(&(invoice, l.id)))
                .collect();
        lines.sort_by_key(|l| std::cmp::Reverse(l.id));
        groups.push((inv, lines));
    }
    let creditable: Vec<(i64, Vec<proration::Creditable>)> = groups
        .iter()
        .map(|(inv, lines)| {
            (
                inv.total.minor() - inv.credited.minor() - inv.refunded.minor(),
                lines
                    .iter()
                    .map(|l| proration::Creditable {
                        total: l.total.minor(),
                        tax: l.tax1.minor() + l.tax2.minor(),
                        left: l.total.minor() - l.credited.minor(),
                    })
                    .collect(),
            )
        })
        .collect();
    let inclusive = app.billing.tax_mode == keel_domain::tax::TaxMode::Inclusive;
    let taken = proration::allocate_credit(wanted, inclusive, &creditable);
    let mut to_wallet = 0;
    for ((inv, lines), grosses) in groups.iter().zip(taken) {
        let chosen: Vec<(store::invoices::LineRecord, Money)> = lines
            .iter()
            .zip(grosses)
            .filter(|(_, g)| *g > 0)
            .map(|(l, g)| (l.clone(), Money::new(g, inv.currency)))
            .collect();
        if chosen.is_empty() {
            continue;
        }
        let (_, wallet) =
            crate::credit_notes::credit_in(tx, app, ctx, inv, &chosen, reason, None).await?;
        to_wallet += wallet;
    }
    Ok(to_wallet)
}
